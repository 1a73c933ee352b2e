// Promise: "no duplicate reaches a consumer". A duplicate storm: 50 distinct batches, each sent
// 10 times concurrently to its general address (half byte-identical, half re-serialized so the
// KV fast path cannot answer and the inbox's unique index must), 10 of them also 10 times to an
// app address. Answers are 200 (a 503 is retried like ICC would). Read back through the public
// API, including a consumer walking the stream in small pages: each receipt exactly once per
// stream, raw as pushed, seq strictly increasing, and the stats agree with what was sent.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startWorker, sampleWithCallId, mapLimit, sleep, SUCCESS, PRODUCT_TYPES } from "./harness.mjs";

const BATCHES = 50;
const SENDS = 10;
const APP = "storm";
const PAIRS = { llm: ["LlmSmartCallReport", "LlmSmartCallRecord"], agent: ["AlicomAgentCallReport", "AlicomAgentCallNote"], bot: ["VoiceReportAiccs", "RobotCallReportAiccs"] };

/** Another serialization of the same content: keys reversed, indented (defeats the KV fast path). */
function reserialize(batch, variant) {
  const rev = (o) => Object.fromEntries(Object.entries(o).reverse());
  return JSON.stringify(batch.map(rev), null, variant % 3 === 0 ? 1 : variant);
}

async function pushLikeIcc(w, product, app, body, tally) {
  for (let attempt = 0; attempt < 6; attempt++) {
    const res = await w.push(product, app, body);
    if (res.status === 200) {
      assert.deepEqual(res.json, SUCCESS);
      return res;
    }
    assert.equal(res.status, 503, `only 200 or 503 are acceptable: ${res.status} ${res.text}`);
    tally.retries++;
    await sleep(50 * (attempt + 1));
  }
  throw new Error(`push never succeeded: ${product}/${app}`);
}

test("duplicate storm: 50 batches × 10 concurrent sends (+ an app address) → one copy per receipt per stream, stats agree", { timeout: 60_000 }, async () => {
  const w = await startWorker();
  try {
    const products = Object.keys(PAIRS);
    const batches = Array.from({ length: BATCHES }, (_, i) => {
      const product = products[i % 3];
      const msgs = PAIRS[product].map((t, k) => sampleWithCallId(t, `storm-${i}-${k}^${1000 + i}`));
      return { i, product, msgs, toApp: i % 5 === 0 };
    });
    const tally = { retries: 0, sends: 0 };
    await mapLimit(batches, 6, async (b) => {
      const exact = JSON.stringify(b.msgs);
      const sends = [];
      for (let s = 0; s < SENDS; s++) {
        const body = s % 2 === 0 ? exact : reserialize(b.msgs, s);
        sends.push(pushLikeIcc(w, b.product, null, body, tally));
        if (b.toApp) sends.push(pushLikeIcc(w, b.product, APP, body, tally));
      }
      tally.sends += sends.length;
      await Promise.all(sends);
    });
    assert.equal(tally.sends, BATCHES * SENDS + (BATCHES / 5) * SENDS);

    for (const [stream, expected] of [
      ["default", batches],
      [APP, batches.filter((b) => b.toApp)],
    ]) {
      const all = await w.allReceipts(stream);
      const want = expected.flatMap((b) => b.msgs.map((m) => ({ product: b.product, m })));
      assert.equal(all.length, want.length, `${stream}: ${all.length} receipts, want ${want.length}`);
      assert.equal(new Set(all.map((r) => r.id)).size, all.length, `${stream}: an id is stored twice`);
      const key = (type, callId) => `${type}|${callId}`;
      const got = new Map(all.map((r) => [key(r.type, r.call_id), r]));
      assert.equal(got.size, all.length, `${stream}: a (type, call_id) is stored twice`);
      for (const { product, m } of want) {
        const type = PAIRS[product][b2k(m)];
        const r = got.get(key(type, m.call_id ?? m.callId));
        assert.ok(r, `${stream}: missing ${type} ${m.call_id ?? m.callId}`);
        assert.deepEqual(r.raw, m, "raw must be the message as pushed");
        assert.equal(r.product, product);
      }
      for (let k = 1; k < all.length; k++) assert.ok(all[k].seq > all[k - 1].seq, `${stream}: seq not strictly increasing`);

      // A consumer walking the stream in small pages (cursor stored in the inbox) sees each once.
      const consumer = `storm-reader`;
      let put = await w.api("PUT", `/v1/streams/${stream}/consumers/${consumer}`, { body: { after: 0 } });
      assert.equal(put.status, 200, put.text);
      const seen = [];
      for (let page = 0; page < 100; page++) {
        const res = await w.fetchReceipts(stream, { consumer, limit: 7 });
        assert.equal(res.status, 200, res.text);
        seen.push(...res.json.receipts.map((r) => r.id));
        if (res.json.receipts.length === 0) break;
        put = await w.api("PUT", `/v1/streams/${stream}/consumers/${consumer}`, { body: { after: res.json.next_after } });
        assert.equal(put.status, 200, put.text);
      }
      assert.deepEqual(seen, all.map((r) => r.id), `${stream}: the consumer saw a different sequence`);
      const cur = await w.api("GET", `/v1/streams/${stream}/consumers/${consumer}`);
      assert.deepEqual(cur.json, { after: all.at(-1).seq, lag: 0 });

      // Stats: stored = distinct, no conflict or quarantine, every other arrival a duplicate.
      const st = await w.stats(stream);
      assert.equal(st.status, 200, st.text);
      const s = st.json.streams[stream];
      let received = 0;
      for (const type of Object.values(PAIRS).flat()) {
        const n = want.filter(({ product, m }) => PAIRS[product][b2k(m)] === type).length;
        const t = s.types[type];
        if (n === 0) {
          assert.equal(t, undefined, `${stream}: unexpected stats for ${type}`);
          continue;
        }
        assert.ok(t, `${stream}: no stats for ${type}: ${st.text}`);
        assert.equal(t.stored, n, `${stream} ${type} stored: ${JSON.stringify(t)}`);
        assert.equal(t.conflict, 0, `${stream} ${type}: ${JSON.stringify(t)}`);
        assert.equal(t.quarantined, 0, `${stream} ${type}: ${JSON.stringify(t)}`);
        assert.equal(t.received, t.stored + t.duplicate, `${stream} ${type}: received ≠ stored + duplicate: ${JSON.stringify(t)}`);
        received += t.received;
      }
      assert.deepEqual(Object.keys(s.types).sort(), [...new Set(want.map(({ product, m }) => PAIRS[product][b2k(m)]))].sort(),
        `${stream}: stats name other types: ${st.text}`);
      assert.equal(s.head_seq, all.at(-1).seq);
      // Every send (2 messages) either reached the inbox or was answered from KV; kv_answered is
      // counted after the answer (best effort), so give it a moment to settle.
      const sendsHere = expected.length * SENDS;
      let kv = s.kv_answered;
      for (let k = 0; k < 20 && received / 2 + kv < sendsHere; k++) {
        await sleep(100);
        kv = (await w.stats(stream)).json.streams[stream].kv_answered;
      }
      if (tally.retries === 0) {
        assert.equal(received / 2 + kv, sendsHere, `${stream}: inbox arrivals (${received / 2}) + KV answers (${kv}) ≠ sends (${sendsHere})`);
      } else {
        assert.ok(received / 2 + kv >= sendsHere, `${stream}: fewer arrivals than acknowledged sends`);
      }
      // The reserialized half cannot be answered from KV: at least that many reached the inbox.
      assert.ok(received / 2 >= expected.length * (SENDS / 2), `${stream}: only ${received / 2} sends reached the inbox`);
    }
    if (tally.retries) console.log(`# duplicate storm: ${tally.retries} pushes answered 503 and were retried`);
  } finally {
    await w.dispose();
  }
});

// Which of its batch's two types a message is (by the sample's distinguishing fields).
function b2k(m) {
  if ("record_file" in m) return 1; // LlmSmartCallRecord
  if ("majorIntent" in m) return 1; // AlicomAgentCallNote
  if ("data" in m) return 1; // RobotCallReportAiccs
  return 0;
}

// Sanity: the pairs belong to their product (so the type lookups above are meaningful).
for (const [p, ts] of Object.entries(PAIRS)) for (const t of ts) assert.ok(PRODUCT_TYPES[p].includes(t));
