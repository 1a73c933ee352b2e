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
  // Setup pushes, retried on a 503 as ICC would (the first push of a fresh runtime creates the
  // stream's inbox and directory entry; on a busy machine that may outlast the deadline).
  for (let i = 0; i < 4; i++) {
    let res = await w.push("bot", null, [vcN(i)]);
    for (let retry = 0; res.status === 503 && retry < 3; retry++) res = await w.push("bot", null, [vcN(i)]);
    assertSuccess(res);
  }
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

// Long-poll timings are measured from the test side on a possibly busy machine: the object is
// warmed first, and each limit sits well below the wait, so it still fails when a poll is not
// woken at all (it would then answer only when its wait runs out).
const settled = (promise) => {
  const state = { done: false };
  promise.then(() => { state.done = true; }, () => { state.done = true; });
  return state;
};

test("long poll", T, async (t) => {
  const w = await startWorker({ MAX_WAIT_S: "3" });
  t.after(() => w.dispose());
  assertSuccess(await w.push("bot", null, [vcN(100)])); // also warms the object
  const head0 = (await w.fetchReceipts("default")).json.head_seq;

  await t.test("wait=3 returns soon after a push made during the wait (well before the wait ends)", async () => {
    const t0 = performance.now();
    const poll = w.fetchReceipts("default", { after: head0, wait: 3 });
    const state = settled(poll);
    await sleep(300); // let the poll start waiting
    assert.equal(state.done, false, "the poll answered before anything was pushed");
    const pushed = await w.push("bot", null, [vcN(101)]);
    const tPushed = performance.now();
    assertSuccess(pushed);
    const res = await poll;
    const tDone = performance.now();
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts.map((r) => r.raw), [vcN(101)]);
    assert.ok(tDone - t0 < 2500, `the poll answered after ${Math.round(tDone - t0)} ms: its wait ran out, it was not woken`);
    assert.ok(tDone - tPushed < 1000, `woke ${Math.round(tDone - tPushed)} ms after the push was answered`);
  });

  await t.test("an empty wait returns 200 with an empty page after the wait passes", async () => {
    const head = (await w.fetchReceipts("default")).json.head_seq;
    const t0 = performance.now();
    const res = await w.fetchReceipts("default", { after: head, wait: 1 });
    const ms = performance.now() - t0;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts, []);
    assert.equal(res.json.next_after, head);
    assert.ok(ms >= 900 && ms < 2900, `waited ${Math.round(ms)} ms for wait=1`);
  });

  await t.test("a non-matching push does not end a filtered wait; a matching one does", async () => {
    const head = (await w.fetchReceipts("default")).json.head_seq;
    const t0 = performance.now();
    const poll = w.fetchReceipts("default", { after: head, wait: 3, type: "LlmSmartCallReport" });
    const state = settled(poll);
    await sleep(300); // let the poll start waiting
    assertSuccess(await w.push("bot", null, [vcN(102)]));
    await sleep(300); // a wrong wake-up would answer meanwhile
    assert.equal(state.done, false, "the non-matching push ended the filtered wait");
    assertSuccess(await w.push("llm", null, fixture("LlmSmartCallReport")));
    const tPushed = performance.now();
    const res = await poll;
    const tDone = performance.now();
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts.map((r) => r.type), ["LlmSmartCallReport"]);
    assert.ok(tDone - t0 < 2500, `the poll answered after ${Math.round(tDone - t0)} ms: its wait ran out, it was not woken`);
    assert.ok(tDone - tPushed < 1000, `woke ${Math.round(tDone - tPushed)} ms after the matching push was answered`);
  });

  await t.test("wait is capped by MAX_WAIT_S", async () => {
    const head = (await w.fetchReceipts("default")).json.head_seq;
    const t0 = performance.now();
    const res = await w.fetchReceipts("default", { after: head, wait: 20 });
    const ms = performance.now() - t0;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts, []);
    assert.ok(ms >= 2800 && ms < 8000, `waited ${Math.round(ms)} ms for wait=20 with MAX_WAIT_S=3`);
  });

  await t.test("a read with data does not wait", async () => {
    const t0 = performance.now();
    const res = await w.fetchReceipts("default", { after: 0, wait: 3 });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.receipts.length, (await w.allReceipts("default")).length);
    assert.ok(performance.now() - t0 < 2000, `a read with data took ${Math.round(performance.now() - t0)} ms with wait=3`);
  });

  await t.test("a long poll with a consumer cursor wakes too", async () => {
    const head = (await w.fetchReceipts("default")).json.head_seq;
    assert.ok((await w.api("PUT", "/v1/streams/default/consumers/poller", { body: { after: head } })).status < 300);
    const t0 = performance.now();
    const poll = w.fetchReceipts("default", { consumer: "poller", wait: 3 });
    const state = settled(poll);
    await sleep(300); // let the poll start waiting
    assert.equal(state.done, false, "the poll answered before anything was pushed");
    assertSuccess(await w.push("bot", null, [vcN(103)]));
    const res = await poll;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts.map((r) => r.raw), [vcN(103)]);
    assert.ok(performance.now() - t0 < 2500, `the poll answered after ${Math.round(performance.now() - t0)} ms: it was not woken`);
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
    assertApiError(over, 409, "too_many_consumers");
    // moving an existing one is still fine
    assert.ok((await w.api("PUT", "/v1/streams/default/consumers/c7", { body: { after: 1 } })).status < 300);
  } finally {
    await w.dispose();
  }
});

test("at most 100 long-poll waiters per stream, then 429", { timeout: 60_000 }, async () => {
  const w = await startWorker({ MAX_WAIT_S: "30" });
  try {
    // Warm the object: the long polls below measure waiting, not its first start.
    assertSuccess(await w.push("bot", null, [vcN(200)]));
    const head = (await w.fetchReceipts("default")).json.head_seq;
    // 101 long polls on an empty range: 100 become waiters, exactly one is refused. The waits
    // (30 s) outlast the test's deadlines below, so no slot frees up by itself meanwhile.
    const answered = [];
    const polls = Array.from({ length: 101 }, (_, i) =>
      w.fetchReceipts("default", { after: head, wait: 30 }).then((res) => {
        answered.push(i);
        return res;
      }));
    // if the test fails early, the polls cut off by dispose() must not hide its message
    for (const p of polls) p.catch(() => {});
    const deadline = Date.now() + 15_000;
    while (answered.length === 0) {
      assert.ok(Date.now() < deadline, "no long poll was refused within 15 s: the 101st waiter was accepted");
      await sleep(20);
    }
    assert.equal(answered.length, 1, `only the refused poll answers before a push (answered: ${answered.length})`);
    const refused = await polls[answered[0]];
    assertApiError(refused, 429, "too_many_waiters");
    assert.ok(refused.ms < 10_000, `the refused waiter is answered at once, not after its wait (${Math.round(refused.ms)} ms)`);
    // The 100 others are waiters: a push wakes every one of them with the new receipt.
    assertSuccess(await w.push("bot", null, [vcN(201)]));
    const woken = await Promise.all(polls.filter((_, i) => i !== answered[0]));
    assert.equal(woken.length, 100);
    for (const r of woken) {
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.receipts.map((x) => x.raw), [vcN(201)]);
      // a waiter that is not woken returns the receipt too, but only when its 30 s have passed
      assert.ok(r.ms < 25_000, `a waiter returned only after ${Math.round(r.ms)} ms: not woken by the push`);
    }
    // The waiters are gone: a new long poll is accepted as a waiter again (it waits its full
    // second and answers an empty 200; a full stream would refuse it with 429 at once).
    const head2 = (await w.fetchReceipts("default")).json.head_seq;
    const again = await w.fetchReceipts("default", { after: head2, wait: 1 });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json.receipts, []);
    assert.ok(again.ms >= 900, `a new waiter answered after ${Math.round(again.ms)} ms, before its wait=1 passed`);
  } finally {
    await w.dispose();
  }
});
