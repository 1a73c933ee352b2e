#!/usr/bin/env bash
# Fuzzes the pure core with cargo-fuzz (libFuzzer). Not part of `npm test` or CI: it needs a
# nightly toolchain and cargo-fuzz, which this script installs when missing.
#
#   bash scripts/fuzz.sh              # push_body (FUZZ_RUNS executions), then mns_body
#   bash scripts/fuzz.sh push_body    # one target only (push_body | mns_body)
#
# Environment:
#   FUZZ_RUNS=10000000      executions of push_body
#   FUZZ_MNS_RUNS=2000000   executions of mns_body
#   FUZZ_MAX_LEN=65536      largest input libFuzzer generates (bytes)
#   FUZZ_TIMEOUT=30         seconds one input may take before libFuzzer calls it a hang
#   FUZZ_SANITIZER=none     core has no `unsafe`; `address` is available but about 2x slower
#   FUZZ_EXTRA=""           more libFuzzer flags, e.g. "-max_total_time=600"
#
# Seeds come from tests/fixtures/icc (copied into fuzz/corpus/<target>/ at run time; the corpus,
# fuzz/artifacts and fuzz/target are git-ignored). A crash leaves its input in
# fuzz/artifacts/<target>/crash-*; reproduce with
#   cargo +nightly fuzz run -s none <target> fuzz/artifacts/<target>/crash-…
# and turn it into a native test in core/tests/fuzz_regressions.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

FUZZ_RUNS=${FUZZ_RUNS:-10000000}
FUZZ_MNS_RUNS=${FUZZ_MNS_RUNS:-2000000}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-65536}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-30}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-none}
FUZZ_EXTRA=${FUZZ_EXTRA:-}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(push_body mns_body)

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

FIX=tests/fixtures/icc
LOGS=fuzz/artifacts/logs
mkdir -p "$LOGS"

# One byte: the selector push_body reads first (product = b % 3, pin = b / 3 % 5,
# offset = b / 15 % 8).
selector() { printf "\\x$(printf %02x "$1")"; }
product_index() { case "$1" in llm) echo 0 ;; agent) echo 1 ;; bot) echo 2 ;; esac; }

seed_push_body() {
  local dir=fuzz/corpus/push_body f product p pin off name
  mkdir -p "$dir"
  for f in "$FIX"/*/*.json; do
    product=$(basename "$(dirname "$f")")
    p=$(product_index "$product")
    name=$(basename "$f" .json)
    # Every pin of the product (inference, LlmSmartCall, each exact type), vendor offset +08:00.
    for pin in 0 1 2 3 4; do
      { selector $((p + 3 * pin)); cat "$f"; } >"$dir/seed-$name-pin$pin"
    done
    # Inference under each other vendor offset.
    for off in 1 2 3 4 5 6 7; do
      { selector $((p + 15 * off)); cat "$f"; } >"$dir/seed-$name-off$off"
    done
    # With a UTF-8 BOM, and as a bare object (the first element).
    { selector "$p"; printf '\xef\xbb\xbf'; cat "$f"; } >"$dir/seed-$name-bom"
    if command -v jq >/dev/null 2>&1; then
      { selector "$p"; jq -c '.[0]' "$f"; } >"$dir/seed-$name-object"
    fi
  done
  { selector 0; printf '[]'; } >"$dir/seed-empty-array"
  { selector 1; printf 'not json'; } >"$dir/seed-not-json"
  { selector 2; printf '[1,{"call_id":"1"},"x",null,[]]'; } >"$dir/seed-mixed"
}

seed_mns_body() {
  local dir=fuzz/corpus/mns_body f name b64
  mkdir -p "$dir"
  for f in "$FIX"/*/*.json; do
    name=$(basename "$f" .json)
    b64=$(base64 -w0 "$f")
    cp "$f" "$dir/seed-$name-raw"
    printf '%s' "$b64" >"$dir/seed-$name-base64"
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<Messages xmlns="http://mns.aliyuncs.com/doc/v1/"><Message><MessageId>5F290C926D472878-2-14D9529A8FA-200000001</MessageId><ReceiptHandle>1-ODU4OTkzNDU5My0xNDMyNzI3ODI3LTItOA==</ReceiptHandle><MessageBodyMD5>C5DD56A39F5F7BB8B3337C6D11B6D8C7</MessageBodyMD5><MessageBody>%s</MessageBody><EnqueueTime>1250700979248</EnqueueTime><NextVisibleTime>1250700799348</NextVisibleTime><FirstDequeueTime>1250700779318</FirstDequeueTime><DequeueCount>1</DequeueCount><Priority>8</Priority></Message></Messages>' \
      "$b64" >"$dir/seed-$name-xml"
  done
  printf '<?xml version="1.0" encoding="UTF-8"?>\n<Error xmlns="http://mns.aliyuncs.com/doc/v1/"><Code>MessageNotExist</Code><Message>Message not exist.</Message><RequestId>5F2A</RequestId><HostId>http://1.mns.cn-hangzhou.aliyuncs.com</HostId></Error>' \
    >"$dir/seed-error"
  printf '<?xml version="1.0" encoding="UTF-8"?>\n<Errors xmlns="http://mns.aliyuncs.com/doc/v1/"><Error><ErrorCode>ReceiptHandleError</ErrorCode><ErrorMessage>The receipt handle you provide is not valid.</ErrorMessage><ReceiptHandle>1-ODU4OTkzNDU5My0xNDMyNzI3ODI3LTItOA==</ReceiptHandle></Error></Errors>' \
    >"$dir/seed-errors"
  printf '{"RequestId":"B6B2","Code":"OK","Message":"OK","MessageTokenDTO":{"AccessKeyId":"STS.x","AccessKeySecret":"s","SecurityToken":"t","CreateTime":"2026-01-01 10:00:00","ExpireTime":"2026-01-01 11:00:00"}}' \
    >"$dir/seed-token"
}

# Runs one target; prints its figures; returns libFuzzer's status.
run_target() {
  local target=$1 runs=$2 log="$LOGS/$1.log" status=0
  "seed_$target"
  mkdir -p "fuzz/artifacts/$target"
  echo "== fuzz: $target, $runs executions (max_len $FUZZ_MAX_LEN), log $log"
  # shellcheck disable=SC2086
  cargo +nightly fuzz run -s "$FUZZ_SANITIZER" "$target" "fuzz/corpus/$target" -- \
    -runs="$runs" -max_len="$FUZZ_MAX_LEN" -timeout="$FUZZ_TIMEOUT" \
    -dict="fuzz/dict/$target.dict" -print_final_stats=1 $FUZZ_EXTRA 2>&1 | tee "$log" || status=$?
  local execs rate cov crashes
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 || true)
  crashes=$(find "fuzz/artifacts/$target" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  echo "== fuzz result: $target"
  echo "   executions: ${execs:-unknown}   exec/s: ${rate:-unknown}   ${cov:-}"
  if [ "$status" -eq 0 ]; then
    echo "   result: no crash"
  else
    echo "   result: FAILED (status $status); inputs in $ROOT/fuzz/artifacts/$target/ ($crashes files)"
  fi
  return "$status"
}

overall=0
for t in "${TARGETS[@]}"; do
  case "$t" in
    push_body) run_target push_body "$FUZZ_RUNS" || overall=1 ;;
    mns_body) run_target mns_body "$FUZZ_MNS_RUNS" || overall=1 ;;
    *) echo "fuzz: unknown target $t (push_body | mns_body)" >&2; exit 2 ;;
  esac
done
exit "$overall"
