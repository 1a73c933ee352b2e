#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test the worker, skipping what is present:
# the wasm32 target, worker-build 0.8.7, the wasm-bindgen CLI matching the pinned crate, and the
# npm packages (wrangler, miniflare, binaryen, ajv, ws, playwright-core, @redocly/cli), Debian's
# chromium, and schemathesis (PyPI 4.x) in the git-ignored virtual environment .venv-schemathesis.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130
WORKER_BUILD_VERSION=0.8.7

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
for component in clippy rustfmt; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    echo "setup: adding rust component $component"
    rustup component add "$component"
  fi
done
if ! worker-build --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION"; then
  echo "setup: installing worker-build $WORKER_BUILD_VERSION"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  echo "setup: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
if [ ! -x node_modules/.bin/wrangler ] || [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/miniflare ] || [ ! -d node_modules/ws ] || [ ! -x node_modules/.bin/redocly ] || [ ! -d node_modules/playwright-core ]; then
  echo "setup: installing npm packages"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi
# The console page's browser tests drive Debian's chromium (playwright-core cannot download one).
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing chromium (apt) for the console page's browser tests"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium \
    || echo "setup: chromium could not be installed; tests/e2e/console_page.test.mjs will be skipped"
fi
SCHEMATHESIS_SPEC='schemathesis>=4,<5'
if [ ! -x .venv-schemathesis/bin/st ]; then
  echo "setup: installing $SCHEMATHESIS_SPEC into .venv-schemathesis"
  python3 -m venv .venv-schemathesis
  .venv-schemathesis/bin/pip install --quiet --disable-pip-version-check "$SCHEMATHESIS_SPEC"
fi
