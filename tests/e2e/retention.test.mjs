// Retention (SPEC.md "Retention"): the inbox's own alarm removes receipts, identities and
// quarantine older than RETENTION_DAYS (decimals allowed, so a test uses seconds); seq never goes
// back; a cursor below the removed range → 410 cursor_expired; after expiry the same receipt is
// stored again (its identity expired too), even though a KV entry for the same bytes still exists.
// workerd has no clock control: this test really waits for the alarm (a few seconds).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startWorker, fixture, assertSuccess, assertApiError, sleep } from "./harness.mjs";

const RETENTION_S = 2.592; // RETENTION_DAYS 0.00003

test("expired receipts and quarantine are removed by the alarm; seq never goes back", { timeout: 40_000 }, async () => {
  const w = await startWorker({ RETENTION_DAYS: "0.00003" });
  try {
    const a = fixture("LlmSmartCallReport");
    assertSuccess(await w.push("llm", null, a));
    assertSuccess(await w.push("bot", null, fixture("VoiceReportAiccs")));
    assertSuccess(await w.push("llm", null, "not json, to be expired"));
    const before = await w.fetchReceipts("default");
    assert.equal(before.json.receipts.length, 2);
    const head = before.json.head_seq;
    assert.equal((await w.quarantine("default")).json.items.length, 1);

    // wait for the alarm to remove everything (retention 2.6 s, GC every ≥1 s)
    const deadline = Date.now() + 15_000;
    let page;
    await sleep(RETENTION_S * 1000);
    for (;;) {
      const expired = await w.fetchReceipts("default", { after: head - 1 });
      const q = await w.quarantine("default");
      assert.equal(q.status, 200, q.text);
      if (expired.status === 410 && q.json.items.length === 0) break;
      if (Date.now() > deadline) assert.fail(`not removed in time: ${expired.status} ${expired.text} quarantine ${q.text}`);
      await sleep(250);
    }
    page = await w.fetchReceipts("default", { after: head });
    assert.equal(page.status, 200, page.text);
    assert.deepEqual(page.json.receipts, []);
    assert.equal(page.json.head_seq, head, "head_seq never goes back");

    // a reader that had not read the removed receipts learns it missed data
    assertApiError(await w.fetchReceipts("default", { after: 0 }), 410, "cursor_expired");
    assertApiError(await w.fetchReceipts("default", { after: head - 1 }), 410, "cursor_expired");

    // the identity expired too: the same receipt (same bytes: KV still holds the key) is stored again, with a new seq
    assertSuccess(await w.push("llm", null, a));
    const again = await w.fetchReceipts("default", { after: head });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.receipts.length, 1);
    assert.ok(again.json.receipts[0].seq > head, "seq is never reused");
    assert.deepEqual(again.json.receipts[0].raw, a[0]);
  } finally {
    await w.dispose();
  }
});
