#!/usr/bin/env bash
# Every test: native (pure core and worker crate) then end-to-end on workerd (Miniflare).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== native tests (cargo test --workspace)"
cargo test --workspace
echo "== building the worker"
bash scripts/build.sh
echo "== end-to-end tests on workerd (node --test)"
node --test --test-concurrency=1 --test-timeout=120000 tests/e2e/
