// The live tail (GET /v1/streams/{stream}/tail, a WebSocket) against `wrangler dev` over real
// HTTP, with the `ws` client: replay from `after` then live frames in seq order, no gap across a
// reconnect, the type filter, the lag notice and close, auth by header or by subprotocol (never
// echoed), refusals before the upgrade, and the close handshake answered by the inbox.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { sampleWithCallId, sleep } from "./harness.mjs";
import { startWranglerDev, PUSH_TOKEN, FETCH_TOKEN } from "./wrangler_dev.mjs";

let dev;
before(async () => {
  dev = await startWranglerDev();
});
after(async () => {
  await dev?.stop();
});

const b64url = (s) => Buffer.from(s, "utf8").toString("base64url");
let nextCall = 0;

/** Pushes `n` LLM receipts of `type` to `app`'s stream in batches of 100; returns their call ids. */
async function push(app, n, type = "LlmSmartCallReport") {
  const ids = [];
  for (let done = 0; done < n; ) {
    const k = Math.min(100, n - done);
    const batch = [];
    for (let i = 0; i < k; i++) {
      const id = `tail-${process.pid}-${nextCall++}`;
      ids.push(id);
      batch.push(sampleWithCallId(type, id));
    }
    const res = await fetch(`${dev.url}/icc/llm/${app}?token=${PUSH_TOKEN}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(batch),
    });
    assert.equal(res.status, 200, await res.text());
    done += k;
  }
  return ids;
}

/** Opens a tail; resolves once open with {ws, frames, closed, protocol}. */
function openTail(stream, query = "", { headers, protocols } = {}) {
  const url = `${dev.url.replace("http", "ws")}/v1/streams/${stream}/tail${query ? `?${query}` : ""}`;
  const ws = new WebSocket(url, protocols, {
    headers: headers ?? { authorization: `Bearer ${FETCH_TOKEN}` },
  });
  const frames = [];
  const t = { ws, frames, close: null };
  t.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve((t.close = { code, reason: String(reason) }))));
  ws.on("message", (data) => frames.push(JSON.parse(String(data))));
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(t));
    ws.once("unexpected-response", (_req, res) => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode })));
    ws.once("error", reject);
  });
}

/** Waits (bounded) until `cond()` holds. */
async function until(cond, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

const seqs = (frames) => frames.filter((f) => f.receipt).map((f) => f.receipt.seq);
const callIds = (frames) => frames.filter((f) => f.receipt).map((f) => f.receipt.call_id);

test("replay from after, then live frames in seq order; no gap across a reconnect", async () => {
  const app = "replay";
  const first = await push(app, 5);
  const t = await openTail(app, "after=2");
  await until(() => t.frames.length >= 3, "replay");
  assert.deepEqual(seqs(t.frames), [3, 4, 5]);
  assert.deepEqual(callIds(t.frames), first.slice(2));
  const r = t.frames[0].receipt;
  assert.equal(r.stream, app);
  assert.equal(r.type, "LlmSmartCallReport");
  assert.ok(r.raw && typeof r.raw === "object", "raw travels with the receipt");
  const live = await push(app, 3);
  await until(() => t.frames.length >= 6, "live frames");
  assert.deepEqual(seqs(t.frames), [3, 4, 5, 6, 7, 8]);
  assert.deepEqual(callIds(t.frames).slice(3), live);
  t.ws.close(1000);
  await t.closed;
  // Pushed while disconnected: a reconnect with the last seen seq gets exactly the rest.
  await push(app, 2);
  const t2 = await openTail(app, "after=8");
  await until(() => t2.frames.length >= 2, "replay after reconnect");
  await push(app, 1);
  await until(() => t2.frames.length >= 3, "live after reconnect");
  assert.deepEqual(seqs(t2.frames), [9, 10, 11]);
  t2.ws.close(1000);
  await t2.closed;
});

test("without after the tail starts at the head (live only)", async () => {
  const app = "headonly";
  await push(app, 3);
  const t = await openTail(app);
  await push(app, 1);
  await until(() => t.frames.length >= 1, "live frame");
  await sleep(200);
  assert.deepEqual(seqs(t.frames), [4]);
  t.ws.close(1000);
  await t.closed;
});

test("type filter: replay and live carry only the chosen types", async () => {
  const app = "filter";
  await push(app, 2, "LlmSmartCallReport");
  await push(app, 2, "LlmSmartCallRecord");
  const t = await openTail(app, "after=0&type=LlmSmartCallRecord");
  await until(() => t.frames.length >= 2, "filtered replay");
  await push(app, 3, "LlmSmartCallReport");
  const rec = await push(app, 1, "LlmSmartCallRecord");
  await until(() => t.frames.length >= 3, "filtered live frame");
  await sleep(200);
  assert.deepEqual(seqs(t.frames), [3, 4, 8]);
  assert.ok(t.frames.every((f) => f.receipt.type === "LlmSmartCallRecord"));
  assert.equal(t.frames[2].receipt.call_id, rec[0]);
  t.ws.close(1000);
  await t.closed;
});

test("lag rule: more than 1,000 behind gets {lagged, resume_after} and a close; resuming loses nothing", async () => {
  const app = "lag";
  await push(app, 1_150);
  const t = await openTail(app, "after=0");
  const close = await Promise.race([t.closed, sleep(20_000).then(() => null)]);
  assert.ok(close, "a lagging tail is closed");
  const last = t.frames.at(-1);
  assert.equal(last.lagged, true);
  const got = seqs(t.frames);
  assert.equal(got.length, 1_000);
  assert.deepEqual(got, Array.from({ length: 1_000 }, (_, i) => i + 1));
  assert.equal(last.resume_after, 1_000);
  const t2 = await openTail(app, `after=${last.resume_after}`);
  await until(() => t2.frames.length >= 150, "the rest after resuming");
  assert.deepEqual(seqs(t2.frames), Array.from({ length: 150 }, (_, i) => i + 1_001));
  // Live commits of 100 each keep a tail within the limit: 1,001 more arrive with no gap.
  await push(app, 1_001);
  await until(() => t2.frames.length >= 1_151, "1,001 live frames", 30_000);
  assert.deepEqual(seqs(t2.frames), Array.from({ length: 1_151 }, (_, i) => i + 1_001));
  assert.equal(t2.close, null, "not closed");
  t2.ws.close(1000);
  await t2.closed;
});

test("auth: 401 without or with a wrong token, before any upgrade", async () => {
  for (const headers of [{}, { authorization: "Bearer wrong" }]) {
    await assert.rejects(openTail("replay", "", { headers }), (e) => e.status === 401);
  }
  await assert.rejects(
    openTail("replay", "", { headers: {}, protocols: ["icc-tail.v1", `bearer.${b64url("wrong")}`] }),
    (e) => e.status === 401,
  );
  // Plain GET without Upgrade, with the token: a clear 400, not a hang.
  const res = await fetch(`${dev.url}/v1/streams/replay/tail`, { headers: { authorization: `Bearer ${FETCH_TOKEN}` } });
  assert.equal(res.status, 400);
  // Bad query refused before the upgrade.
  await assert.rejects(openTail("replay", "type=Nope"), (e) => e.status === 400);
  await assert.rejects(openTail("replay", "after=999999"), (e) => e.status >= 400 && e.status < 500);
});

test("subprotocol auth: the server selects icc-tail.v1 only, never the token", async () => {
  const app = "proto";
  await push(app, 2);
  const t = await openTail(app, "after=0", {
    headers: {},
    protocols: ["icc-tail.v1", `bearer.${b64url(FETCH_TOKEN)}`],
  });
  assert.equal(t.ws.protocol, "icc-tail.v1");
  await until(() => t.frames.length >= 2, "replay over subprotocol auth");
  t.ws.close(1000);
  await t.closed;
});

test("close handshake: the inbox answers a client's close with its code", async () => {
  const app = "close";
  await push(app, 1);
  const t = await openTail(app, "after=0");
  await until(() => t.frames.length >= 1, "replay");
  const started = Date.now();
  t.ws.close(4001, "bye");
  const c = await Promise.race([t.closed, sleep(10_000).then(() => null)]);
  assert.ok(c, "closed");
  assert.equal(c.code, 4001, "the server's close frame echoes the client's code");
  assert.ok(Date.now() - started < 5_000, "answered, not timed out");
  // The object survives: a new tail works and commits still succeed.
  const t2 = await openTail(app, "after=0");
  await until(() => t2.frames.length >= 1, "replay after close");
  t2.ws.close(1000);
  await t2.closed;
});
