#!/usr/bin/env bash
# Instruction counts (valgrind callgrind, repeatable on a busy machine) of the pure core's push
# planning, per stage, for one push body: `bash scripts/profile_core.sh <body.json> [n]`.
# Each stage runs `n` times (default 3) on inputs prepared once; the preparation-only run is
# subtracted. Prints instructions per body and per message.
set -euo pipefail
cd "$(dirname "$0")/.."
body="${1:?usage: profile_core.sh <body.json> [n]}"
n="${2:-3}"
cargo build --quiet --release -p icc-core --example plan_profile
bin=target/release/examples/plan_profile
msgs=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).length)' "$body")
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
base=$(count "$bin" "$body" "$n" prep)
printf '%-10s %14s %14s\n' stage "instr/body" "instr/msg"
for stage in key parse type fields id hash normalize wire; do
  c=$(count "$bin" "$body" "$n" "$stage")
  d=$(( (c - base) / n ))
  printf '%-10s %14d %14d\n' "$stage" "$d" $(( d / msgs ))
done
# The whole Worker-side planning (key + plan + wire) as the Worker runs it, once per round.
zero=$(count "$bin" "$body" 0)
all=$(count "$bin" "$body" "$n")
d=$(( (all - zero) / n ))
printf '%-10s %14d %14d\n' total "$d" $(( d / msgs ))
