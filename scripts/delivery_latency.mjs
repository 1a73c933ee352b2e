// Push-to-webhook latency and delivery rate on Miniflare with local Queues and a loopback
// destination: `bash scripts/build.sh && N=200 node scripts/delivery_latency.mjs`.
import http from "node:http";
import { randomBytes } from "node:crypto";
import { startQueueWorker, sampleWithCallId } from "../tests/e2e/harness.mjs";
const SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const arrived = new Map();
const server = http.createServer((req, res) => { req.resume(); req.on("end", () => { arrived.set(req.headers["webhook-id"], performance.now()); res.end("ok"); }); });
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const w = await startQueueWorker({ FORWARD_QUEUE: "true", WEBHOOK_URL: `http://127.0.0.1:${server.address().port}/h`, WEBHOOK_SECRET: SECRET });
const N = Number(process.env.N ?? 200);
const sent = [];
const t0 = performance.now();
for (let i = 0; i < N; i++) { const t = performance.now(); await w.push("llm", null, [sampleWithCallId("LlmSmartCallReport", `lat-${i}`)]); sent.push(t); }
const deadline = Date.now() + 60000;
while (arrived.size < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
const t1 = performance.now();
const recs = await w.allReceipts("default");
const lat = recs.map((r) => arrived.get(r.id) - sent[Number(r.call_id.slice(4))]).filter(Number.isFinite).sort((a, b) => a - b);
const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(0);
console.log(`delivered ${arrived.size}/${N}; push→webhook p50 ${q(0.5)} ms p99 ${q(0.99)} ms; throughput ${(arrived.size / ((t1 - t0) / 1000)).toFixed(0)} deliveries/s (sequential pushes)`);
await w.dispose(); server.close();
