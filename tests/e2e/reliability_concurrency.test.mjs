// Promises: "nothing acked before it is durable" and "nothing lost", under concurrency.
// 200 distinct pushes (three products, one and two message batches) fired at once at one stream
// while a long-polling follower reads the stream as it grows. Every push answered 200 must be
// readable at once (queried by its call id right after the answer); a 503 is retried like ICC
// would. Afterwards every receipt is present exactly once with strictly increasing seq, and the
// follower, reading concurrently with the commits, saw exactly the same sequence: no receipt
// skipped, none delivered twice.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startWorker, sampleWithCallId, sleep, SUCCESS } from "./harness.mjs";

const N = 200;
const TYPES = [
  ["llm", "LlmSmartCallReport"], ["llm", "LlmSmartCallRecord"],
  ["agent", "AlicomAgentCallReport"], ["agent", "AlicomAgentCallRecord"], ["agent", "AlicomAgentCallNote"],
  ["bot", "VoiceReportAiccs"], ["bot", "VoiceCallReportAiccs"], ["bot", "VoiceRecordReportAiccs"], ["bot", "RobotCallReportAiccs"],
];

test(`${N} distinct pushes in parallel: every acked receipt readable at once, all present once, seq strictly increasing, a concurrent follower misses nothing`, { timeout: 60_000 }, async () => {
  const w = await startWorker();
  try {
    const pushes = Array.from({ length: N }, (_, i) => {
      const [product, type] = TYPES[i % TYPES.length];
      const msgs = [sampleWithCallId(type, `conc-${i}^a`)];
      if (i % 4 === 0) msgs.push(sampleWithCallId(type, `conc-${i}^b`));
      return { i, product, type, msgs };
    });
    const expectedCount = pushes.reduce((n, p) => n + p.msgs.length, 0);

    // The follower: long polls after its last next_after until it has seen everything.
    const followed = [];
    let stopFollower = false;
    const follower = (async () => {
      let after = 0;
      const deadline = Date.now() + 40_000;
      while (!stopFollower && followed.length < expectedCount && Date.now() < deadline) {
        const res = await w.fetchReceipts("default", { after, wait: 2, limit: 50 });
        assert.equal(res.status, 200, `follower read: ${res.status} ${res.text}`);
        followed.push(...res.json.receipts);
        assert.ok(res.json.next_after >= after, "next_after went back");
        after = res.json.next_after;
      }
    })();

    let retried = 0;
    const answers = await Promise.all(pushes.map(async (p) => {
      for (let attempt = 0; attempt < 8; attempt++) {
        const res = await w.push(p.product, null, p.msgs);
        if (res.status === 200) {
          assert.deepEqual(res.json, SUCCESS);
          // Acked ⇒ durable and readable now, by every message's call id.
          for (const m of p.msgs) {
            const callId = m.call_id ?? m.callId;
            const r = await w.fetchReceipts("default", { call_id: callId });
            assert.equal(r.status, 200, r.text);
            assert.equal(r.json.receipts.length, 1, `acked ${callId} but reading it gives ${r.json.receipts.length} receipts`);
            assert.deepEqual(r.json.receipts[0].raw, m);
            assert.equal(r.json.receipts[0].type, p.type);
          }
          return res;
        }
        assert.equal(res.status, 503, `only 200 or 503 are acceptable: ${res.status} ${res.text}`);
        retried++;
        await sleep(100 * (attempt + 1));
      }
      throw new Error(`push ${p.i} never succeeded`);
    }));
    assert.equal(answers.length, N);

    const all = await w.allReceipts("default");
    assert.equal(all.length, expectedCount, `stored ${all.length}, want ${expectedCount}`);
    assert.equal(new Set(all.map((r) => r.id)).size, expectedCount, "an id is stored twice");
    const byCall = new Map(all.map((r) => [r.call_id, r]));
    for (const p of pushes) {
      for (const m of p.msgs) {
        const r = byCall.get(m.call_id ?? m.callId);
        assert.ok(r, `lost: ${m.call_id ?? m.callId}`);
        assert.deepEqual(r.raw, m);
      }
    }
    for (let k = 1; k < all.length; k++) assert.ok(all[k].seq > all[k - 1].seq, `seq ${all[k].seq} after ${all[k - 1].seq}`);

    let timer;
    await Promise.race([follower, new Promise((r) => { timer = setTimeout(r, 10_000); })]);
    clearTimeout(timer);
    stopFollower = true;
    await follower;
    assert.deepEqual(followed.map((r) => r.seq), all.map((r) => r.seq), "the concurrent follower skipped or repeated receipts");
    assert.deepEqual(followed.map((r) => r.id), all.map((r) => r.id));

    const st = await w.stats("default");
    const s = st.json.streams.default;
    assert.equal(s.head_seq, all.at(-1).seq);
    const stored = Object.values(s.types).reduce((n, t) => n + t.stored, 0);
    assert.equal(stored, expectedCount, st.text);
    for (const [type, t] of Object.entries(s.types)) {
      assert.equal(t.conflict, 0, `${type}: ${JSON.stringify(t)}`);
      assert.equal(t.quarantined, 0, `${type}: ${JSON.stringify(t)}`);
      if (retried === 0) assert.equal(t.duplicate, 0, `${type}: duplicates without any resend: ${JSON.stringify(t)}`);
    }
    if (retried) console.log(`# concurrency: ${retried} pushes answered 503 and were retried`);
  } finally {
    await w.dispose();
  }
});
