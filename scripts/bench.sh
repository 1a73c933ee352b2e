#!/usr/bin/env bash
# `npm run bench` (not part of `npm test`): builds the release worker, builds the native normalize
# benchmark, then runs bench/run.mjs, which starts workerd (Miniflare) on 127.0.0.1, measures, prints
# a table and writes bench-results/bench-<timestamp>.json and bench-results/latest.json.
# Environment: BENCH_QUICK=1 (small counts, smoke run), BENCH_MAX_S (overall limit, default 480),
# BENCH_SUSTAIN_S (seconds per sustained-load level, default 10), BENCH_PEER=<folder of a peer Worker>
# (side-by-side rows against it under wrangler dev, see bench/README.md), BENCH_ONLY=side (only those),
# BENCH_ROUNDS (side-by-side rounds, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# Never build while another build runs (it would race on build/); wait up to 5 minutes.
for _ in $(seq 1 60); do
  pgrep -f worker-build >/dev/null || break
  echo "bench: another worker-build is running, waiting"
  sleep 5
done
if pgrep -f worker-build >/dev/null; then
  echo "bench: another worker-build is still running after 5 minutes; try again later" >&2
  exit 1
fi
echo "== building the worker (release)"
bash scripts/build.sh

echo "== building the native normalize benchmark (release)"
cargo build --quiet --release -p icc-core --example normalize_bench

echo "== benchmark (bounded: about ${BENCH_MAX_S:-480} s at most)"
exec node bench/run.mjs
