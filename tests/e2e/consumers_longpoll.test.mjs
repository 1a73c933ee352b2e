// Named consumer cursors (PUT/GET/DELETE, ?consumer=) and long polling (wait=).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startWorker, fixture, assertSuccess, assertApiError, sleep, PUSH_TOKEN,
} from "./harness.mjs";

const T = { timeout: 30_000 };
const vc = fixture("VoiceCallReportAiccs")[0];
const vcN = (i) => ({ ...vc, call_id: `lp-${i}^${i}` });

test("consumers", T, async (t) => {
  const w = await startWorker();
  t.after(() => w.dispose());
  for (let i = 0; i < 4; i++) assertSuccess(await w.push("bot", null, [vcN(i)]));
  const seqs = (await w.allReceipts("default")).map((r) => r.seq);
  const head = seqs.at(-1);
  const base = "/v1/streams/default/consumers";

  await t.test("an unknown consumer reads from 0", async () => {
    const res = await w.fetchReceipts("default", { consumer: "never-made" });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts.map((r) => r.seq), seqs);
  });

  await t.test("PUT creates a cursor; GET returns after and lag", async () => {
    const put = await w.api("PUT", `${base}/billing`, { body: { after: seqs[1] } });
    assert.ok(put.status >= 200 && put.status < 300, `${put.status} ${put.text}`);
    const get = await w.api("GET", `${base}/billing`);
    assert.equal(get.status, 200, get.text);
    assert.equal(get.json.after, seqs[1]);
    assert.equal(get.json.lag, 2, `two receipts after the cursor: ${get.text}`);
  });

  await t.test("?consumer= reads after its cursor, and reading does not move it", async () => {
    const res = await w.fetchReceipts("default", { consumer: "billing" });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts.map((r) => r.seq), seqs.slice(2));
    const get = await w.api("GET", `${base}/billing`);
    assert.equal(get.json.after, seqs[1]);
  });

  await t.test("two consumers are independent", async () => {
    assert.ok((await w.api("PUT", `${base}/crm.sync_2`, { body: { after: seqs[2] } })).status < 300);
    const a = await w.fetchReceipts("default", { consumer: "billing" });
    const b = await w.fetchReceipts("default", { consumer: "crm.sync_2" });
    assert.deepEqual(a.json.receipts.map((r) => r.seq), seqs.slice(2));
    assert.deepEqual(b.json.receipts.map((r) => r.seq), seqs.slice(3));
    // moving one leaves the other
    assert.ok((await w.api("PUT", `${base}/billing`, { body: { after: head } })).status < 300);
    assert.deepEqual((await w.fetchReceipts("default", { consumer: "billing" })).json.receipts, []);
    assert.deepEqual((await w.fetchReceipts("default", { consumer: "crm.sync_2" })).json.receipts.map((r) => r.seq), seqs.slice(3));
    assert.deepEqual(await w.api("GET", `${base}/billing`).then((r) => r.json), { after: head, lag: 0 });
    // replay = any older after
    assert.ok((await w.api("PUT", `${base}/billing`, { body: { after: 0 } })).status < 300);
    assert.deepEqual((await w.fetchReceipts("default", { consumer: "billing" })).json.receipts.map((r) => r.seq), seqs);
  });

  await t.test("consumers show in stats", async () => {
    const st = await w.stats("default");
    const c = st.json.streams.default.consumers;
    assert.deepEqual(c["crm.sync_2"], { after: seqs[2], lag: 1 });
    assert.equal(c.billing.after, 0);
  });

  await t.test("PUT beyond head → 409", async () => {
    assertApiError(await w.api("PUT", `${base}/billing`, { body: { after: head + 1 } }), 409);
    assert.equal((await w.api("GET", `${base}/billing`)).json.after, 0, "a refused PUT must not move the cursor");
  });

  await t.test("bad PUT bodies and names → 400", async () => {
    for (const body of ['{"after":-1}', '{"after":"x"}', "not json", "{}"]) {
      assertApiError(await w.api("PUT", `${base}/billing`, { body }), 400);
    }
    for (const name of ["bad%20name", "a".repeat(65), "sem%3Bcolon"]) {
      assertApiError(await w.api("PUT", `${base}/${name}`, { body: { after: 0 } }), 400);
    }
  });

  await t.test("?consumer= together with after= → 400", async () => {
    assertApiError(await w.fetchReceipts("default", { consumer: "billing", after: 1 }), 400);
  });

  await t.test("DELETE removes it; it then reads from 0 again", async () => {
    const del = await w.api("DELETE", `${base}/crm.sync_2`);
    assert.ok(del.status >= 200 && del.status < 300, `${del.status} ${del.text}`);
    const res = await w.fetchReceipts("default", { consumer: "crm.sync_2" });
    assert.deepEqual(res.json.receipts.map((r) => r.seq), seqs);
    const st = await w.stats("default");
    assert.equal(st.json.streams.default.consumers["crm.sync_2"], undefined);
  });

  await t.test("consumers need the fetch token", async () => {
    assertApiError(await w.api("GET", `${base}/billing`, { bearer: PUSH_TOKEN }), 401);
    assertApiError(await w.api("PUT", `${base}/billing`, { bearer: null, body: { after: 0 } }), 401);
    assertApiError(await w.api("DELETE", `${base}/billing`, { bearer: null }), 401);
  });
});

test("long poll", T, async (t) => {
  const w = await startWorker({ MAX_WAIT_S: "3" });
  t.after(() => w.dispose());
  assertSuccess(await w.push("bot", null, [vcN(100)]));
  const head0 = (await w.fetchReceipts("default")).json.head_seq;

  await t.test("wait=2 returns within ~100 ms after a push made during the wait", async () => {
    const t0 = performance.now();
    const poll = w.fetchReceipts("default", { after: head0, wait: 2 });
    await sleep(400);
    const pushed = await w.push("bot", null, [vcN(101)]);
    const tPushed = performance.now();
    assertSuccess(pushed);
    const res = await poll;
    const tDone = performance.now();
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts.map((r) => r.raw), [vcN(101)]);
    assert.ok(tDone - t0 >= 350, `the poll returned before the push (${Math.round(tDone - t0)} ms)`);
    assert.ok(tDone - tPushed < 150, `woke ${Math.round(tDone - tPushed)} ms after the push was answered`);
  });

  await t.test("an empty wait returns 200 with an empty page after the wait passes", async () => {
    const head = (await w.fetchReceipts("default")).json.head_seq;
    const t0 = performance.now();
    const res = await w.fetchReceipts("default", { after: head, wait: 1 });
    const ms = performance.now() - t0;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts, []);
    assert.equal(res.json.next_after, head);
    assert.ok(ms >= 900 && ms < 1800, `waited ${Math.round(ms)} ms for wait=1`);
  });

  await t.test("a non-matching push does not end a filtered wait; a matching one does", async () => {
    const head = (await w.fetchReceipts("default")).json.head_seq;
    const t0 = performance.now();
    const poll = w.fetchReceipts("default", { after: head, wait: 2, type: "LlmSmartCallReport" });
    await sleep(300);
    assertSuccess(await w.push("bot", null, [vcN(102)]));
    await sleep(400);
    assertSuccess(await w.push("llm", null, fixture("LlmSmartCallReport")));
    const res = await poll;
    const ms = performance.now() - t0;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts.map((r) => r.type), ["LlmSmartCallReport"]);
    assert.ok(ms >= 650 && ms < 1500, `returned after ${Math.round(ms)} ms`);
  });

  await t.test("wait is capped by MAX_WAIT_S", async () => {
    const head = (await w.fetchReceipts("default")).json.head_seq;
    const t0 = performance.now();
    const res = await w.fetchReceipts("default", { after: head, wait: 20 });
    const ms = performance.now() - t0;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts, []);
    assert.ok(ms >= 2800 && ms < 4500, `waited ${Math.round(ms)} ms with MAX_WAIT_S=3`);
  });

  await t.test("a read with data does not wait", async () => {
    const t0 = performance.now();
    const res = await w.fetchReceipts("default", { after: 0, wait: 2 });
    assert.ok(res.json.receipts.length >= 1);
    assert.ok(performance.now() - t0 < 500);
  });

  await t.test("a long poll with a consumer cursor wakes too", async () => {
    const head = (await w.fetchReceipts("default")).json.head_seq;
    assert.ok((await w.api("PUT", "/v1/streams/default/consumers/poller", { body: { after: head } })).status < 300);
    const poll = w.fetchReceipts("default", { consumer: "poller", wait: 2 });
    await sleep(300);
    assertSuccess(await w.push("bot", null, [vcN(103)]));
    const res = await poll;
    assert.deepEqual(res.json.receipts.map((r) => r.raw), [vcN(103)]);
  });
});

test("at most 100 consumers per stream", T, async () => {
  const w = await startWorker();
  try {
    assertSuccess(await w.push("bot", null, [vcN(1)]));
    for (let i = 0; i < 100; i++) {
      const res = await w.api("PUT", `/v1/streams/default/consumers/c${i}`, { body: { after: 0 } });
      assert.ok(res.status < 300, `consumer ${i}: ${res.status} ${res.text}`);
    }
    const over = await w.api("PUT", "/v1/streams/default/consumers/c100", { body: { after: 0 } });
    assert.ok(over.status >= 400 && over.status < 500, `101st consumer: ${over.status} ${over.text}`);
    assert.ok(over.json?.error, over.text);
    // moving an existing one is still fine
    assert.ok((await w.api("PUT", "/v1/streams/default/consumers/c7", { body: { after: 1 } })).status < 300);
  } finally {
    await w.dispose();
  }
});

test("at most 100 long-poll waiters per stream, then 429", { timeout: 30_000 }, async () => {
  const w = await startWorker({ MAX_WAIT_S: "2" });
  try {
    const polls = [];
    for (let i = 0; i < 100; i++) polls.push(w.fetchReceipts("default", { after: 0, wait: 2 }));
    await sleep(500);
    const extra = await w.fetchReceipts("default", { after: 0, wait: 2 });
    assertApiError(extra, 429);
    assert.ok(extra.ms < 1000, "the refused waiter is answered at once");
    const results = await Promise.all(polls);
    assert.ok(results.every((r) => r.status === 200), results.map((r) => r.status).join(","));
    // the waiters are gone: a new one is accepted
    const again = await w.fetchReceipts("default", { after: 0, wait: 0 });
    assert.equal(again.status, 200);
  } finally {
    await w.dispose();
  }
});
