#!/usr/bin/env bash
# Serves the receiver locally on 127.0.0.1:8787 with `wrangler dev` (local KV and Durable Object
# state under .wrangler/), creating a .dev.vars with fresh random tokens on first run, and prints
# the callback URLs to paste into the ICC console.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
if [ ! -f .dev.vars ]; then
  gen() { node -e 'console.log(require("crypto").randomBytes(24).toString("base64url"))'; }
  printf 'PUSH_TOKEN=%s\nFETCH_TOKEN=%s\n' "$(gen)" "$(gen)" > .dev.vars
  echo "start: wrote .dev.vars with new PUSH_TOKEN and FETCH_TOKEN"
fi
PUSH_TOKEN=$(grep '^PUSH_TOKEN=' .dev.vars | cut -d= -f2- | cut -d, -f1)
PORT="${PORT:-8787}"
BASE="${PUBLIC_URL:-http://127.0.0.1:$PORT}"
cat <<MSG

ICC callback URLs (console > 通用设置 > 订阅回执消息, HTTP批量推送模式):
  Communication Intelligence Engine (LlmSmartCall):   $BASE/icc/llm?token=$PUSH_TOKEN
  Communication Agent (AlicomAgentCall*):             $BASE/icc/agent?token=$PUSH_TOKEN
  Intelligent Communication Bot (Voice*/Robot*):      $BASE/icc/bot?token=$PUSH_TOKEN
  Per application: add /<app> after the product, e.g. $BASE/icc/llm/shop1?token=...
Fetch API: curl -H "Authorization: Bearer \$FETCH_TOKEN" $BASE/v1/streams/default/receipts
(ICC needs a public https address: deploy with 'npx wrangler deploy', or tunnel this port.)

MSG
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
exec npx wrangler dev --ip 127.0.0.1 --port "$PORT" --local --persist-to .wrangler/state
