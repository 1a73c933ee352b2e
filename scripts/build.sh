#!/usr/bin/env bash
# Builds the worker into build/ (release: opt-level 3 and wasm-opt -O3, for speed; wasm-opt from the npm package binaryen).
# worker-build would download wasm-bindgen and wasm-opt; both are pointed at local copies.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Up to date? (wrangler runs this as its [build] command, after `npm start` already built.)
if [ -f build/index.js ] && [ -z "${FORCE_BUILD:-}" ] && [ "$#" -eq 0 ] && \
   [ -z "$(find src core/src assets openapi schema Cargo.toml Cargo.lock core/Cargo.toml -newer build/index.js -print -quit)" ]; then
  echo "build: build/ is up to date"
  exit 0
fi
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
worker-build --release "$@"
features=(--enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory
          --enable-multivalue --enable-reference-types --enable-exception-handling)
"$WASM_OPT_BIN" -O3 "${features[@]}" --strip-debug --strip-producers build/index_bg.wasm -o build/index_bg.wasm
echo "build: wasm $(wc -c < build/index_bg.wasm) bytes, $(gzip -9 -c build/index_bg.wasm | wc -c) gzip"
