#!/usr/bin/env bash
# Every test: lints first (fmt, clippy with warnings as errors), then native (pure core and
# worker crate), then end-to-end on workerd (Miniflare and wrangler dev).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== lints (cargo fmt --check, cargo clippy -D warnings: native workspace and the worker for wasm32)"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p icc-edge-inbox --target wasm32-unknown-unknown -- -D warnings
echo "== API description lint (redocly lint openapi/openapi.yaml)"
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true node_modules/.bin/redocly lint openapi/openapi.yaml
echo "== native tests (cargo test --workspace)"
cargo test --workspace
echo "== building the worker"
bash scripts/build.sh
echo "== end-to-end tests on workerd (node --test)"
node --test --test-concurrency=1 --test-timeout=300000 tests/e2e/
