// Promises: a big body is never refused for its size (the spool). A body over
// SPOOL_THRESHOLD_BYTES is stored as received and answered 200 at once, then drained by the
// inbox in bounded chunks under its alarm: every message readable exactly once, in order, with
// the same typing, identity and dedup as a direct push. Also: three concurrent sends of one body
// store it once; a runtime restarted mid-drain resumes without loss or duplicates; a long poll
// wakes as chunks land; a failing inbox still answers 503 (nothing acked that is not durable).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  startWorker, startFaultyWorker, startPersistentWorker, assertSuccess, sleep,
} from "./harness.mjs";

const T = { timeout: 300_000 };
const ANSWER_MS = 700;

/** `n` tiny llm messages `{"call_id":"<prefix><i>","caller":"1"}` as one JSON array. */
function tiny(n, prefix) {
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(`{"call_id":"${prefix}${i}","caller":"1"}`);
  return `[${parts.join(",")}]`;
}

/** `n` realistic ~460-byte LlmSmartCallReport messages (the documented report's fields). */
function realistic(n, prefix) {
  const parts = [];
  for (let i = 0; i < n; i++) {
    parts.push(JSON.stringify({
      call_id: `${prefix}${i}`, start_time: "2025-01-06 17:33:37", end_time: "2025-01-06 17:36:45",
      duration: 189, status_code: "200000", status_msg: "用户听完语音，通话正常结束，客户表示稍后回电确认续约事宜",
      out_id: `order-${prefix}${i}-renewal`, caller: "020*****843",
      callee: "15*****0614", hangup_direction: "用户", toll_type: "PROVINCE",
      originate_time: "2025-01-06 17:33:05", ring_time: "2025-01-06 17:33:15", smart_status_code: "ANSWERED",
    }));
  }
  return `[${parts.join(",")}]`;
}

/** Reads the whole stream page by page; returns the call ids in seq order (bounded). */
async function callIds(w, stream) {
  const ids = [];
  let after = 0;
  for (let page = 0; page < 400; page++) {
    const res = await w.api("GET", `/v1/streams/${stream}/receipts?after=${after}&limit=1000`);
    assert.equal(res.status, 200, res.text);
    for (const r of res.json.receipts) ids.push(r.call_id);
    if (!res.json.has_more) return ids;
    after = res.json.next_after;
  }
  throw new Error("too many pages");
}

async function streamStats(w, stream) {
  const res = await w.api("GET", `/v1/streams/${stream}/stats`);
  assert.equal(res.status, 200, res.text);
  return res.json.streams[stream];
}

/** Polls until the stream's spool is empty (deadline), then returns its call ids. */
async function drained(w, stream, { timeoutMs = 240_000 } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await streamStats(w, stream);
    if (s.spool_pending === 0) return callIds(w, stream);
    assert.ok(Date.now() < end, `${stream}: spool not drained after ${timeoutMs} ms: ${JSON.stringify(s)}`);
    await sleep(200);
  }
}

function expectInOrder(ids, n, prefix) {
  assert.equal(ids.length, n, "every message exactly once");
  for (let i = 0; i < n; i++) if (ids[i] !== `${prefix}${i}`) assert.fail(`position ${i}: ${ids[i]}`);
}

for (const [name, n, make] of [
  ["44,000 tiny messages", 44_000, tiny],
  ["100,000 tiny messages", 100_000, tiny],
  ["9,000 realistic messages just under MAX_BODY_BYTES", 9_000, realistic],
]) {
  test(`${name}: 200 well inside ${ANSWER_MS} ms, then readable exactly once, in order`, T, async (t) => {
    const w = await startWorker();
    t.after(() => w.dispose());
    const app = `big${n}`;
    const body = make(n, "m");
    const bytes = Buffer.byteLength(body);
    assert.ok(bytes <= 4 * 1024 * 1024, `${bytes} bytes`);
    const res = await w.push("llm", app, body);
    assertSuccess(res);
    assert.ok(res.ms < ANSWER_MS, `answered in ${Math.round(res.ms)} ms`);
    const t0 = performance.now();
    const ids = await drained(w, app);
    const s = (performance.now() - t0) / 1000;
    t.diagnostic(`${bytes} bytes, ${n} messages: answered in ${Math.round(res.ms)} ms; drained in ${s.toFixed(1)} s (${Math.round(n / s)} msg/s)`);
    expectInOrder(ids, n, "m");
    const st = await streamStats(w, app);
    assert.equal(st.spool_bytes, 0);
    assert.equal(st.types.LlmSmartCallReport.stored, n);
    // A resend is a duplicate: nothing new.
    assertSuccess(await w.push("llm", app, body));
    await sleep(300);
    assert.equal((await drained(w, app)).length, n);
  });
}

test("the same big body sent 3× concurrently (KV fast path off) is stored once", T, async (t) => {
  const w = await startWorker({ KV_FAST_PATH: "false" });
  t.after(() => w.dispose());
  const body = tiny(20_000, "c");
  const answers = await Promise.all([1, 2, 3].map(() => w.push("llm", "conc", body)));
  for (const a of answers) assertSuccess(a);
  expectInOrder(await drained(w, "conc"), 20_000, "c");
  // And once more after the drain: the spool remembers the body.
  assertSuccess(await w.push("llm", "conc", body));
  assert.equal((await streamStats(w, "conc")).spool_pending, 0);
  await sleep(300);
  assert.equal((await drained(w, "conc")).length, 20_000);
});

test("a runtime restarted mid-drain resumes: nothing lost, nothing twice", T, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "icc-e2e-spool-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let w = await startPersistentWorker(dir);
  const n = 100_000;
  assertSuccess(await w.push("llm", "restart", tiny(n, "r")));
  // Wait until the drain has started but not finished, then stop the runtime.
  const end = Date.now() + 60_000;
  for (;;) {
    const s = await streamStats(w, "restart");
    const head = s.head_seq;
    if (head > 0 && s.spool_pending === 1) break;
    assert.ok(s.spool_pending === 1 && Date.now() < end, `drain did not start or ended too soon: ${JSON.stringify(s)}`);
    await sleep(20);
  }
  await w.dispose();
  w = await startPersistentWorker(dir);
  t.after(() => w.dispose());
  expectInOrder(await drained(w, "restart"), n, "r");
});

test("a long poll wakes as spooled chunks land", T, async (t) => {
  const w = await startWorker();
  t.after(() => w.dispose());
  // The stream exists (a long poll on an unknown stream is another matter).
  assertSuccess(await w.push("llm", "lp", [{ call_id: "first", caller: "1" }]));
  const poll = w.api("GET", "/v1/streams/lp/receipts?after=1&limit=1000&wait=20");
  await sleep(200);
  assertSuccess(await w.push("llm", "lp", tiny(30_000, "p")));
  const t0 = performance.now();
  const res = await poll;
  assert.equal(res.status, 200, res.text);
  assert.ok(res.json.receipts.length > 0, "woken with receipts");
  assert.equal(res.json.receipts[0].call_id, "p0");
  assert.ok(performance.now() - t0 < 10_000, "woken before the wait ended");
  expectInOrder((await drained(w, "lp")).slice(1), 30_000, "p");
});

test("a failing inbox: a big body answers 503, nothing is acked", T, async (t) => {
  for (const mode of ["throw", 500]) {
    const w = await startFaultyWorker(mode);
    try {
      const res = await w.push("llm", "faulty", tiny(44_000, "f"));
      assert.equal(res.status, 503, `${mode}: ${res.status} ${res.text}`);
    } finally {
      await w.dispose();
    }
  }
});

test("a direct push just under the threshold answers well inside the deadline", T, async (t) => {
  const w = await startWorker();
  t.after(() => w.dispose());
  // Largest tiny-message body not over the default SPOOL_THRESHOLD_BYTES (128 KiB).
  let n = 1_000;
  while (tiny(n + 1, "d").length <= 128 * 1024) n++;
  const body = tiny(n, "d");
  const res = await w.push("llm", "direct", body);
  assertSuccess(res);
  t.diagnostic(`direct push of ${body.length} bytes, ${n} messages: ${Math.round(res.ms)} ms`);
  assert.ok(res.ms < 450, `answered in ${Math.round(res.ms)} ms`);
  // Committed on the push path, not spooled: readable at once.
  assert.equal((await streamStats(w, "direct")).spool_pending, 0);
  expectInOrder(await callIds(w, "direct"), n, "d");
});
