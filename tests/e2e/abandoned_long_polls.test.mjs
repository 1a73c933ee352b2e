// Long polls whose clients went away do not lock a stream out. The runtime does not tell the
// inbox that a waiting client disconnected, so an abandoned long poll keeps its slot until its
// wait ends; the slots are bounded per consumer instead: when a stream's 100 slots are full, a
// new long poll takes the slot of the oldest wait of its own consumer, or of the consumer
// holding the most. A stream full of distinct readers still answers 429 (consumers_longpoll).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startWorker, fixture, assertSuccess, FETCH_TOKEN } from "./harness.mjs";

const vc = fixture("VoiceCallReportAiccs")[0];
const vcN = (i) => ({ ...vc, call_id: `ab-${i}^${i}` });

/** Polls `check` until it returns true, failing after `ms`. */
async function until(what, check, ms = 15_000) {
  const deadline = performance.now() + ms;
  for (;;) {
    if (await check()) return;
    assert.ok(performance.now() < deadline, `timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("100 abandoned long polls of a consumer leave room for new ones", { timeout: 60_000 }, async () => {
  const w = await startWorker(); // MAX_WAIT_S 20
  try {
    assertSuccess(await w.push("bot", null, [vcN(1)]));
    const head = (await w.fetchReceipts("default")).json.head_seq;
    for (const c of ["etl", "crm"]) {
      assert.equal((await w.api("PUT", `/v1/streams/default/consumers/${c}`, { body: { after: head } })).status, 200);
    }
    const waiters = async () => (await w.stats("default")).json.streams.default.waiters;

    // A reader of consumer `etl` that drops its connection and retries, 100 times.
    const aborts = [];
    const dropped = [];
    for (let i = 0; i < 100; i++) {
      const ac = new AbortController();
      aborts.push(ac);
      dropped.push(
        w.mf.dispatchFetch("http://inbox.test/v1/streams/default/receipts?consumer=etl&wait=20", {
          headers: { authorization: `Bearer ${FETCH_TOKEN}` },
          signal: ac.signal,
        }).then((r) => r.text(), () => "aborted"),
      );
    }
    await until("100 long polls held by the inbox", async () => (await waiters()) === 100);
    for (const ac of aborts) ac.abort();
    assert.deepEqual(new Set(await Promise.all(dropped)), new Set(["aborted"]));

    // Every slot is held by an abandoned wait; new long polls are still taken in and held.
    const t0 = performance.now();
    const anonymous = w.fetchReceipts("default", { after: head, wait: 20 });
    const sameConsumer = w.fetchReceipts("default", { consumer: "etl", wait: 20 });
    const otherConsumer = w.fetchReceipts("default", { consumer: "crm", wait: 20 });
    assertSuccess(await w.push("bot", null, [vcN(2)]));
    for (const res of await Promise.all([anonymous, sameConsumer, otherConsumer])) {
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json.receipts.map((r) => r.raw), [vcN(2)]);
    }
    assert.ok(performance.now() - t0 < 10_000, "answered by the push, well before the 20 s wait");
    // The slots stay bounded.
    assert.ok((await waiters()) <= 100);
  } finally {
    await w.dispose();
  }
});
