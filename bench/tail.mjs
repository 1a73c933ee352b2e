// Commit latency with 0 and with 50 open live tails on the same stream.
//
//   node bench/tail.mjs            # after `bash scripts/build.sh`; ≈ 1 minute
//   TAIL_PUSHES=100 TAIL_SOCKETS=50 node bench/tail.mjs
//
// The built worker runs under `wrangler dev` (local, loopback, throwaway state; the same start
// as the end-to-end tests). Rounds alternate "0 tails" and "N tails" so drift on a shared machine
// hits both. Each round: TAIL_PUSHES sequential 10-message all-new pushes to one stream, each
// push's wall time measured (the push is answered after the inbox's commit, which includes the
// broadcast). With tails open, every tail must receive every receipt in order before the round
// counts. Prints p50/p95/p99 per mode; bounded by TAIL_MAX_S (default 240 s).

import WebSocket from "ws";
import { startWranglerDev, PUSH_TOKEN, FETCH_TOKEN } from "../tests/e2e/wrangler_dev.mjs";
import { sampleWithCallId } from "../tests/e2e/harness.mjs";

const PUSHES = Number(process.env.TAIL_PUSHES ?? 150);
const SOCKETS = Number(process.env.TAIL_SOCKETS ?? 50);
const ROUNDS = Number(process.env.TAIL_ROUNDS ?? 2);
const BATCH = 10;
const MAX_S = Number(process.env.TAIL_MAX_S ?? 240);
const started = Date.now();
const left = () => MAX_S * 1000 - (Date.now() - started);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };

const dev = await startWranglerDev();
let n = 0;
async function push(stream) {
  const body = JSON.stringify(Array.from({ length: BATCH }, () => sampleWithCallId("LlmSmartCallReport", `bench-tail-${n++}`)));
  const t0 = performance.now();
  const res = await fetch(`${dev.url}/icc/llm/${stream}?token=${PUSH_TOKEN}`, { method: "POST", body, headers: { "content-type": "application/json" } });
  await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`push answered ${res.status}`);
  return ms;
}

function openTail(stream, after) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${dev.url.replace("http", "ws")}/v1/streams/${stream}/tail?after=${after}`, { headers: { authorization: `Bearer ${FETCH_TOKEN}` } });
    const t = { ws, last: after, gaps: 0 };
    ws.on("message", (d) => {
      const m = JSON.parse(String(d));
      if (m.receipt) { if (m.receipt.seq !== t.last + 1) t.gaps++; t.last = m.receipt.seq; }
    });
    ws.once("open", () => resolve(t));
    ws.once("error", reject);
  });
}

const results = { 0: [], [SOCKETS]: [] };
try {
  for (let round = 0; round < ROUNDS && left() > 0; round++) {
    for (const tails of round % 2 ? [SOCKETS, 0] : [0, SOCKETS]) {
      const stream = `benchtail-${round}-${tails}`;
      await push(stream); // the stream exists, the object is warm
      const head = BATCH;
      const sockets = [];
      for (let i = 0; i < tails; i++) sockets.push(await openTail(stream, head));
      for (let i = 0; i < PUSHES && left() > 0; i++) results[tails].push(await push(stream));
      const want = head + PUSHES * BATCH;
      while (sockets.some((s) => s.last < want) && left() > 0) await sleep(20);
      const short = sockets.filter((s) => s.last !== want || s.gaps).length;
      if (short) throw new Error(`${short} of ${tails} tails missed receipts`);
      for (const s of sockets) s.ws.close(1000);
    }
  }
} finally {
  await dev.stop();
}
console.log(`sequential ${BATCH}-message pushes to one stream, wall time per push (ms), ${ROUNDS} rounds:`);
console.log("open tails | pushes | p50 | p95 | p99");
for (const [k, xs] of Object.entries(results)) {
  console.log(`${k.padStart(10)} | ${String(xs.length).padStart(6)} | ${pct(xs, 50).toFixed(2)} | ${pct(xs, 95).toFixed(2)} | ${pct(xs, 99).toFixed(2)}`);
}
