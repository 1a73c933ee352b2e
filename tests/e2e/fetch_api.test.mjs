// The pull API: paging with after/limit, filters (type list, call_id), next_after/head_seq/
// has_more, cursor_ahead, the stream list and the stats counters.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startWorker, fixture, assertSuccess, assertApiError, RFC3339_UTC,
} from "./harness.mjs";

const T = { timeout: 30_000 };
let w;
let seqs; // seq of each pushed receipt, in push order
const rep = fixture("LlmSmartCallReport")[0];
const rec = fixture("LlmSmartCallRecord")[0];
const vcA = fixture("VoiceCallReportAiccs")[0];
const vcB = { ...vcA, status_code: "200201", status_time: "2021-04-28 09:55:05" };
const vcC = { ...vcA, call_id: "other-call^2", status_time: "2021-04-28 10:00:00" };
const robot = fixture("RobotCallReportAiccs")[0];
const ORDER = [
  ["llm", rep, "LlmSmartCallReport"],
  ["bot", vcA, "VoiceCallReportAiccs"],
  ["bot", vcB, "VoiceCallReportAiccs"],
  ["llm", rec, "LlmSmartCallRecord"],
  ["bot", vcC, "VoiceCallReportAiccs"],
  ["bot", robot, "RobotCallReportAiccs"],
];

before(async () => {
  w = await startWorker();
  for (const [product, msg] of ORDER) assertSuccess(await w.push(product, null, [msg]));
  assertSuccess(await w.push("agent", "shop1", fixture("AlicomAgentCallNote")));
  const res = await w.fetchReceipts("default");
  assert.equal(res.status, 200, res.text);
  seqs = res.json.receipts.map((r) => r.seq);
});
after(async () => {
  await w?.dispose();
});

test("default page: everything in seq order, after=0, limit 100", T, async () => {
  const res = await w.fetchReceipts("default");
  const j = res.json;
  assert.deepEqual(j.receipts.map((r) => r.raw), ORDER.map(([, m]) => m));
  assert.deepEqual(j.receipts.map((r) => r.type), ORDER.map(([, , t]) => t));
  assert.equal(seqs.length, 6);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1]);
  assert.equal(j.head_seq, seqs.at(-1));
  assert.equal(j.next_after, seqs.at(-1));
  assert.equal(j.has_more, false);
  assert.ok(Number.isInteger(j.oldest_seq) && j.oldest_seq <= seqs[0], `oldest_seq ${j.oldest_seq}`);
  const explicit = await w.fetchReceipts("default", { after: 0 });
  assert.deepEqual(explicit.json, j);
});

test("after/limit pages through the stream without gaps or repeats", T, async () => {
  const seen = [];
  let after = 0;
  for (let page = 0; page < 10; page++) {
    const res = await w.fetchReceipts("default", { after, limit: 2 });
    assert.equal(res.status, 200, res.text);
    const j = res.json;
    assert.ok(j.receipts.length <= 2);
    seen.push(...j.receipts.map((r) => r.seq));
    assert.equal(j.head_seq, seqs.at(-1));
    if (j.receipts.length) assert.equal(j.next_after, j.receipts.at(-1).seq);
    if (!j.has_more) break;
    assert.equal(j.receipts.length, 2);
    after = j.next_after;
  }
  assert.deepEqual(seen, seqs);

  const mid = await w.fetchReceipts("default", { after: seqs[2], limit: 1 });
  assert.deepEqual(mid.json.receipts.map((r) => r.seq), [seqs[3]]);
  assert.equal(mid.json.has_more, true);
  assert.equal(mid.json.next_after, seqs[3]);
});

test("after = head → empty page, has_more false, next_after = head", T, async () => {
  const res = await w.fetchReceipts("default", { after: seqs.at(-1) });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.receipts, []);
  assert.equal(res.json.has_more, false);
  assert.equal(res.json.next_after, seqs.at(-1));
  assert.equal(res.json.head_seq, seqs.at(-1));
});

test("after above head → 409 cursor_ahead", T, async () => {
  assertApiError(await w.fetchReceipts("default", { after: seqs.at(-1) + 1 }), 409, "cursor_ahead");
  assertApiError(await w.fetchReceipts("default", { after: 1_000_000 }), 409, "cursor_ahead");
});

test("invalid paging parameters → 400", T, async () => {
  for (const q of [{ limit: 0 }, { limit: 1001 }, { limit: "x" }, { after: "abc" }, { after: -1 }]) {
    const res = await w.fetchReceipts("default", q);
    assertApiError(res, 400);
  }
  const ok = await w.fetchReceipts("default", { limit: 1000 });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.receipts.length, 6);
});

test("type filter: one type, a list of types; next_after is the highest seq examined", T, async () => {
  const one = await w.fetchReceipts("default", { type: "VoiceCallReportAiccs" });
  assert.equal(one.status, 200, one.text);
  assert.deepEqual(one.json.receipts.map((r) => r.raw), [vcA, vcB, vcC]);
  assert.equal(one.json.has_more, false);
  assert.equal(one.json.next_after, seqs.at(-1), "a filtered reader must not rescan: next_after = head when all was examined");

  const paged = await w.fetchReceipts("default", { type: "VoiceCallReportAiccs", limit: 2 });
  assert.deepEqual(paged.json.receipts.map((r) => r.raw), [vcA, vcB]);
  assert.equal(paged.json.has_more, true);
  assert.ok(paged.json.next_after >= seqs[2] && paged.json.next_after < seqs[4], `next_after ${paged.json.next_after}`);
  const rest = await w.fetchReceipts("default", { type: "VoiceCallReportAiccs", after: paged.json.next_after });
  assert.deepEqual(rest.json.receipts.map((r) => r.raw), [vcC]);

  const list = await w.fetchReceipts("default", { type: "LlmSmartCallReport,RobotCallReportAiccs" });
  assert.deepEqual(list.json.receipts.map((r) => r.type), ["LlmSmartCallReport", "RobotCallReportAiccs"]);

  const none = await w.fetchReceipts("default", { type: "AlicomAgentCallNote" });
  assert.equal(none.status, 200);
  assert.deepEqual(none.json.receipts, []);
  assert.equal(none.json.next_after, seqs.at(-1));
  assert.equal(none.json.has_more, false);
});

test("unknown or repeated query parameters → 400 on every /v1 route", T, async () => {
  const routes = [
    ["GET", "/v1/streams"],
    ["GET", "/v1/stats"],
    ["GET", "/v1/streams/default/receipts"],
    ["GET", "/v1/streams/default/quarantine"],
    ["GET", "/v1/streams/default/stats"],
    ["GET", "/v1/streams/default/consumers/q400"],
    ["DELETE", "/v1/streams/default/consumers/q400"],
  ];
  for (const [method, p] of routes) {
    const plain = await w.api(method, p);
    assert.equal(plain.status, 200, `${method} ${p}: ${plain.text.slice(0, 200)}`);
    assertApiError(await w.api(method, `${p}?nope=1`), 400, "bad_request");
  }
  for (const p of ["/v1/streams", "/v1/stats", "/v1/streams/default/receipts", "/v1/streams/default/quarantine"]) {
    assertApiError(await w.api("GET", `${p}?after=0&after=0`), 400, "bad_request");
  }
  const put = await w.api("PUT", "/v1/streams/default/consumers/q400?after=1", { body: { after: 1 } });
  assertApiError(put, 400, "bad_request");
  assert.equal((await w.api("GET", "/v1/streams/default/consumers/q400")).json.after, 0, "a refused PUT moves nothing");
  assertApiError(await w.api("GET", "/v1/streams?after=bad%20name"), 400, "bad_request");
});

test("unknown type in the filter → 400", T, async () => {
  assertApiError(await w.fetchReceipts("default", { type: "NoSuchType" }), 400);
});

test("call_id filter", T, async () => {
  const res = await w.fetchReceipts("default", { call_id: vcA.call_id });
  assert.deepEqual(res.json.receipts.map((r) => r.raw), [vcA, vcB]);
  const both = await w.fetchReceipts("default", { call_id: vcA.call_id, type: "LlmSmartCallReport" });
  assert.deepEqual(both.json.receipts, []);
  const robotRes = await w.fetchReceipts("default", { call_id: robot.callId });
  assert.deepEqual(robotRes.json.receipts.map((r) => r.type), ["RobotCallReportAiccs"]);
  const missing = await w.fetchReceipts("default", { call_id: "no-such-call" });
  assert.deepEqual(missing.json.receipts, []);
});

test("GET /v1/streams lists every stream written", T, async () => {
  const res = await w.api("GET", "/v1/streams");
  assert.equal(res.status, 200, res.text);
  const list = res.json.streams;
  assert.ok(Array.isArray(list) || (list && typeof list === "object"), res.text);
  const names = Array.isArray(list) ? list.map((s) => (typeof s === "string" ? s : s.name ?? s.stream)) : Object.keys(list);
  assert.deepEqual([...names].sort(), ["default", "shop1"]);
});

test("stream stats count what happened", T, async () => {
  // force one duplicate through the Durable Object (other bytes, so KV cannot answer)
  assertSuccess(await w.push("llm", null, JSON.stringify([rep], null, 2)));
  const res = await w.stats("default");
  assert.equal(res.status, 200, res.text);
  const s = res.json.streams?.default;
  assert.ok(s, res.text);
  const vc = s.types.VoiceCallReportAiccs;
  assert.equal(vc.received, 3);
  assert.equal(vc.stored, 3);
  assert.equal(vc.duplicate, 0);
  assert.equal(vc.quarantined, 0);
  assert.equal(vc.conflict, 0);
  assert.match(vc.last_received_at, RFC3339_UTC);
  const lr = s.types.LlmSmartCallReport;
  assert.equal(lr.received, 2);
  assert.equal(lr.stored, 1);
  assert.equal(lr.duplicate, 1);
  assert.equal(s.types.AlicomAgentCallNote, undefined, "shop1's note is not in default's stats");
  assert.equal(s.head_seq, seqs.at(-1));
  assert.ok(Number.isInteger(s.oldest_seq) && s.oldest_seq <= seqs[0]);
  assert.ok(Number.isInteger(s.db_bytes) && s.db_bytes > 0);
  assert.equal(typeof s.kv_answered, "number");
  assert.equal(typeof s.consumers, "object");
  assert.deepEqual(Object.keys(res.json.streams), ["default"]);
});

test("GET /v1/stats covers every stream", T, async () => {
  const res = await w.stats();
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.json.streams).sort(), ["default", "shop1"]);
  assert.equal(res.json.streams.shop1.types.AlicomAgentCallNote.stored, 1);
  assert.equal(res.json.streams.default.types.VoiceCallReportAiccs.stored, 3);
});

test("a page stops at 4 MiB and still holds at least one receipt", { timeout: 60_000 }, async () => {
  const big = await startWorker();
  try {
    // 12 messages of ~450 KiB (under the worker's per-message limit): ~5.3 MiB in all
    const pad = "p".repeat(450 * 1024);
    for (let i = 0; i < 12; i++) {
      assertSuccess(await big.push("llm", null, [{ ...rep, call_id: `big-${i}^${i}`, pad }]));
    }
    // Each body is over the spool threshold: wait (with a deadline) until the inbox drained them.
    for (const deadline = Date.now() + 30_000; ; ) {
      const st = await big.api("GET", "/v1/streams/default/stats");
      assert.equal(st.status, 200, st.text.slice(0, 200));
      if (!(st.json.streams.default?.spool_pending > 0)) break;
      assert.ok(Date.now() < deadline, "the spool did not drain in 30 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    const first = await big.fetchReceipts("default", { limit: 100 });
    assert.equal(first.status, 200, first.text.slice(0, 200));
    const n = first.json.receipts.length;
    assert.ok(n >= 1 && n < 12, `page of ${n} receipts of ~450 KiB each`);
    assert.ok(Buffer.byteLength(first.text) <= 4 * 1024 * 1024 + 64 * 1024, `page is ${Buffer.byteLength(first.text)} bytes`);
    assert.equal(first.json.has_more, true);
    assert.equal(first.json.next_after, first.json.receipts.at(-1).seq);
    const all = await big.allReceipts("default");
    assert.deepEqual(all.map((r) => r.call_id), Array.from({ length: 12 }, (_, i) => `big-${i}^${i}`));
    assert.ok(all.every((r) => r.raw.pad === pad));
  } finally {
    await big.dispose();
  }
});

test("limit defaults to 100", T, async () => {
  const many = await startWorker();
  try {
    const batch = Array.from({ length: 150 }, (_, i) => ({ ...vcA, call_id: `m-${i}^1` }));
    assertSuccess(await many.push("bot", null, batch));
    const page = await many.fetchReceipts("default");
    assert.equal(page.json.receipts.length, 100);
    assert.equal(page.json.has_more, true);
    assert.equal(page.json.next_after, page.json.receipts[99].seq);
    const rest = await many.fetchReceipts("default", { after: page.json.next_after });
    assert.equal(rest.json.receipts.length, 50);
    assert.equal(rest.json.has_more, false);
  } finally {
    await many.dispose();
  }
});

test("GET /v1/stats and /v1/streams page by 50 streams (continuation: next_stream → after)", { timeout: 60_000 }, async () => {
  const many = await startWorker();
  try {
    const names = Array.from({ length: 55 }, (_, i) => `app${String(i).padStart(2, "0")}`);
    for (const app of names) assertSuccess(await many.push("bot", app, [vcA]));
    for (const path of ["/v1/stats", "/v1/streams"]) {
      const seen = [];
      let after;
      for (let page = 0; page < 5; page++) {
        const res = await many.api("GET", after === undefined ? path : `${path}?after=${encodeURIComponent(after)}`);
        assert.equal(res.status, 200, res.text.slice(0, 300));
        const s = res.json.streams;
        const got = Array.isArray(s) ? s.map((x) => (typeof x === "string" ? x : x.name ?? x.stream)) : Object.keys(s);
        assert.ok(got.length <= 50, `${path}: page of ${got.length} streams`);
        seen.push(...got);
        assert.equal(res.json.next_after, undefined, `${path}: the continuation is next_stream, not next_after`);
        assert.ok("next_stream" in res.json, `${path}: next_stream missing: ${res.text.slice(0, 300)}`);
        if (res.json.next_stream === null) break;
        assert.equal(typeof res.json.next_stream, "string");
        after = res.json.next_stream;
      }
      assert.deepEqual([...seen].sort(), names, path);
    }
  } finally {
    await many.dispose();
  }
});
