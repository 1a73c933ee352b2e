// Promise: a body that has been fully received is always committed, whatever the time. The ack
// deadline counts from the request's arrival and decides only the answer (200 or 503), never
// whether the work is done: a body sent with a pause longer than the deadline is readable
// afterwards exactly once, and its retry stores nothing new. Real HTTP to the runtime's socket
// (node:http), the body streamed with a pause.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startWorker, PUSH_TOKEN, assertSuccess, sleep } from "./harness.mjs";

const T = { timeout: 120_000 };

/** POSTs `body` in two halves with `pauseMs` between them; `{status, json}`. */
async function slowPush(base, pathAndQuery, body, { pauseMs, contentLength }) {
  const url = new URL(pathAndQuery, base);
  const bytes = Buffer.from(body);
  const headers = { "content-type": "application/json" };
  if (contentLength) headers["content-length"] = String(bytes.length);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { text += c; });
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("error", reject);
    const half = Math.floor(bytes.length / 2);
    req.write(bytes.subarray(0, half));
    setTimeout(() => req.end(bytes.subarray(half)), pauseMs);
  });
}

async function readAll(w, stream) {
  const out = [];
  let after = 0;
  for (let page = 0; page < 100; page++) {
    const res = await w.api("GET", `/v1/streams/${stream}/receipts?after=${after}&limit=1000`);
    assert.equal(res.status, 200, res.text);
    out.push(...res.json.receipts);
    if (!res.json.has_more) return out;
    after = res.json.next_after;
  }
  throw new Error("too many pages");
}

/** Polls (deadline) until the stream holds `n` receipts and its spool is empty. */
async function until(w, stream, n, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await w.api("GET", `/v1/streams/${stream}/stats`);
    if (s.status === 200 && s.json.streams[stream].spool_pending === 0) {
      const got = await readAll(w, stream);
      if (got.length >= n) return got;
    }
    assert.ok(Date.now() < end, `${stream}: ${n} receipts not there after ${timeoutMs} ms`);
    await sleep(100);
  }
}

for (const [label, n, contentLength] of [
  ["small body, chunked", 3, false],
  ["small body, with Content-Length", 3, true],
  ["spooled body (over the threshold), with Content-Length", 12_000, true],
]) {
  test(`slow upload (${label}): paused past the deadline, stored exactly once; its retry stores nothing`, T, async (t) => {
    const w = await startWorker();
    t.after(() => w.dispose());
    const base = await w.mf.ready;
    const app = `slow${n}${contentLength ? "cl" : "ch"}`;
    const msgs = Array.from({ length: n }, (_, i) => ({ call_id: `s${i}`, caller: "1" }));
    const body = JSON.stringify(msgs);
    const q = `/icc/llm/${app}?token=${PUSH_TOKEN}`;
    const res = await slowPush(base, q, body, { pauseMs: 900, contentLength });
    assert.ok([200, 503].includes(res.status), `${res.status} ${res.text}`);
    t.diagnostic(`answered ${res.status}`);
    const got = await until(w, app, n);
    assert.deepEqual(got.map((r) => r.call_id), msgs.map((m) => m.call_id));
    // ICC's retry: a duplicate, nothing new.
    assertSuccess(await w.push("llm", app, body));
    await sleep(300);
    assert.equal((await until(w, app, n)).length, n);
    const stats = await w.api("GET", `/v1/streams/${app}/stats`);
    assert.equal(stats.json.streams[app].types.LlmSmartCallReport.stored, n);
  });
}

test("a body over MAX_BODY_BYTES sent slowly: its too_large stub is quarantined once", T, async (t) => {
  const w = await startWorker({ MAX_BODY_BYTES: "1000" });
  t.after(() => w.dispose());
  const base = await w.mf.ready;
  const body = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ call_id: `t${i}`, caller: "1" })));
  const res = await slowPush(base, `/icc/llm/slowbig?token=${PUSH_TOKEN}`, body, { pauseMs: 900, contentLength: false });
  assert.equal(res.status, 413, res.text);
  const end = Date.now() + 15_000;
  for (;;) {
    const q = await w.quarantine("slowbig", { limit: 100 });
    if (q.status === 200 && q.json.items?.length) {
      assert.equal(q.json.items.length, 1);
      assert.equal(q.json.items[0].reason, "too_large");
      break;
    }
    assert.ok(Date.now() < end, `no too_large stub: ${q.status} ${q.text}`);
    await sleep(100);
  }
});
