// Promises: "nothing lost" and "no duplicate reaches a consumer" across a restart of the runtime.
// The worker runs with KV and Durable Object state persisted in a temporary directory
// (harness startPersistentWorker); the runtime is disposed and a new one started on the same
// directory. Receipts (with their seq and received_at), quarantine (exact bytes), consumer
// cursors, stats, the stream directory and dedup (both the inbox's index and the KV fast path)
// are intact; seq continues above the old head. A second test stops the runtime while pushes are
// in flight: every push that was answered 200 is there after the restart, exactly once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  startPersistentWorker, fixture, fixtureText, sampleWithCallId, assertSuccess, sleep, ALL_TYPES, productOf, SUCCESS,
} from "./harness.mjs";

const T = { timeout: 60_000 };

/** What a request to a runtime that is being disposed fails with (the connection goes away). */
function isConnectionError(e) {
  if (e instanceof assert.AssertionError) return false;
  const codes = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CLOSED", "UND_ERR_ABORTED"]);
  for (let x = e; x; x = x.cause) if (codes.has(x.code)) return true;
  return false;
}

function tempDir(t) {
  const dir = mkdtempSync(path.join(tmpdir(), "icc-e2e-restart-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function snapshot(w) {
  const get = async (p) => {
    const res = await w.api("GET", p);
    assert.equal(res.status, 200, `${p}: ${res.status} ${res.text}`);
    return res.json;
  };
  const stats = await get("/v1/stats");
  for (const s of Object.values(stats.streams)) delete s.db_bytes; // file size may change on reopen
  return {
    default: await w.allReceipts("default"),
    shop1: await w.allReceipts("shop1"),
    qDefault: await get("/v1/streams/default/quarantine?limit=1000"),
    qShop1: await get("/v1/streams/shop1/quarantine?limit=1000"),
    billing: await get("/v1/streams/default/consumers/billing"),
    etl: await get("/v1/streams/shop1/consumers/etl"),
    streams: await get("/v1/streams"),
    stats,
  };
}

test("restart on persisted state: receipts, quarantine, consumer cursors, stats and dedup intact; seq continues", T, async (t) => {
  const dir = tempDir(t);
  const notJson = "restart: <xml>not json</xml>";
  const badUtf8 = new Uint8Array([0x5b, 0x22, 0xff, 0xfe, 0x22, 0x5d]);
  const conflict = JSON.stringify([{ ...fixture("LlmSmartCallReport")[0], duration: 190 }]);
  const shopBatch = JSON.stringify([sampleWithCallId("VoiceReportAiccs", "r-1^1"), sampleWithCallId("RobotCallReportAiccs", "r-2^1")]);

  let w = await startPersistentWorker(dir);
  let before;
  try {
    for (const type of ALL_TYPES) assertSuccess(await w.push(productOf(type), null, fixtureText(type)));
    assertSuccess(await w.push("bot", "shop1", shopBatch));
    assertSuccess(await w.push("llm", null, notJson));
    assertSuccess(await w.push("bot", "shop1", badUtf8));
    assertSuccess(await w.push("agent", null, [{ unknown: "shape" }, 7]));
    assertSuccess(await w.push("llm", null, conflict));
    assert.equal((await w.api("PUT", "/v1/streams/default/consumers/billing", { body: { after: 3 } })).status, 200);
    assert.equal((await w.api("PUT", "/v1/streams/shop1/consumers/etl", { body: { after: 1 } })).status, 200);
    before = await snapshot(w);
    assert.equal(before.default.length, 9);
    assert.equal(before.shop1.length, 2);
    assert.equal(before.qDefault.items.length, 4, JSON.stringify(before.qDefault)); // not_json, unknown_shape, not_object, conflict
    assert.equal(before.qShop1.items.length, 1);
    assert.deepEqual(before.billing, { after: 3, lag: before.default.at(-1).seq - 3 });
  } finally {
    await w.dispose();
  }

  w = await startPersistentWorker(dir);
  try {
    const after = await snapshot(w);
    assert.deepEqual(after.default, before.default, "receipts changed across the restart");
    assert.deepEqual(after.shop1, before.shop1);
    assert.deepEqual(after.qDefault, before.qDefault, "quarantine changed across the restart");
    assert.deepEqual(after.qShop1, before.qShop1);
    assert.equal(after.qDefault.items.find((i) => i.reason === "not_json").raw, notJson);
    assert.deepEqual(new Uint8Array(Buffer.from(after.qShop1.items[0].raw_base64, "base64")), badUtf8);
    assert.deepEqual(after.billing, before.billing, "consumer cursor changed");
    assert.deepEqual(after.etl, before.etl);
    assert.deepEqual(after.streams, before.streams);
    assert.deepEqual(after.stats, before.stats, "stats changed across the restart");

    // The consumer reads after its stored cursor.
    const page = await w.fetchReceipts("default", { consumer: "billing" });
    assert.deepEqual(page.json.receipts.map((r) => r.seq), before.default.filter((r) => r.seq > 3).map((r) => r.seq));

    // Dedup survives: byte-identical resends (KV fast path), reserialized resends (inbox index),
    // the conflicting body and the quarantined bodies again: nothing new.
    const kvBefore = after.stats.streams.default.kv_answered;
    for (const type of ALL_TYPES) assertSuccess(await w.push(productOf(type), null, fixtureText(type)));
    for (const type of ALL_TYPES) assertSuccess(await w.push(productOf(type), null, JSON.stringify(fixture(type), null, 3)));
    assertSuccess(await w.push("bot", "shop1", JSON.stringify(JSON.parse(shopBatch), null, 1)));
    assertSuccess(await w.push("llm", null, notJson));
    assertSuccess(await w.push("bot", "shop1", badUtf8));
    assertSuccess(await w.push("llm", null, JSON.stringify(JSON.parse(conflict), null, 2)));
    assert.deepEqual(await w.allReceipts("default"), before.default, "a resend after the restart created a copy");
    assert.deepEqual(await w.allReceipts("shop1"), before.shop1);
    const q = await w.quarantine("default", { limit: 1000 });
    assert.deepEqual(q.json.items.filter((i) => i.reason !== "conflicting_duplicate"),
      before.qDefault.items.filter((i) => i.reason !== "conflicting_duplicate"), "a quarantined body was kept twice");
    assert.deepEqual((await w.quarantine("shop1")).json.items, before.qShop1.items);
    const st = (await w.stats("default")).json.streams.default;
    assert.equal(Object.values(st.types).reduce((n, x) => n + x.stored, 0), 9);
    // the KV fast path kept its memory too (best-effort counter: let it settle)
    let kv = st.kv_answered;
    for (const end = Date.now() + 10_000; kv < kvBefore + ALL_TYPES.length && Date.now() < end;) {
      await sleep(100);
      kv = (await w.stats("default")).json.streams.default.kv_answered;
    }
    assert.ok(kv >= kvBefore + ALL_TYPES.length, `KV answered ${kv - kvBefore} of ${ALL_TYPES.length} identical resends after the restart`);

    // seq continues above the old head.
    const fresh = [sampleWithCallId("VoiceReportAiccs", "after-restart^1")];
    assertSuccess(await w.push("bot", null, fresh));
    const all = await w.allReceipts("default");
    assert.equal(all.length, 10);
    assert.ok(all.at(-1).seq > before.default.at(-1).seq);
    assert.ok(all.at(-1).seq > before.stats.streams.default.head_seq);
    assert.deepEqual(all.at(-1).raw, fresh[0]);
  } finally {
    await w.dispose();
  }
});

test("stopping the runtime with pushes in flight: every push answered 200 is there after the restart, exactly once", T, async (t) => {
  const dir = tempDir(t);
  const N = 60;
  const bodies = Array.from({ length: N }, (_, i) => [sampleWithCallId(i % 2 ? "VoiceReportAiccs" : "VoiceCallReportAiccs", `crash-${i}^1`)]);
  let w = await startPersistentWorker(dir);
  const acked = new Set();
  const sent = new Set(); // dispatched to the runtime
  const settled = new Set(); // answered or failed
  let stopped = false;
  let stopping;
  let inFlightAtStop = -1;
  const stop = () => {
    stopped = true;
    inFlightAtStop = [...sent].filter((i) => !settled.has(i)).length;
    stopping = w.dispose();
  };
  try {
    // Pushes go out in waves; the runtime is stopped as soon as half have been acknowledged.
    const inFlight = bodies.map(async (b, i) => {
      await sleep((i % 10) * 5);
      if (stopped) return;
      sent.add(i);
      let res;
      try {
        res = await w.push("bot", null, b);
      } catch (e) {
        // The runtime went away under this request: not acknowledged. Anything else is a failure.
        if (!stopped || !isConnectionError(e)) throw e;
      } finally {
        settled.add(i);
      }
      if (res?.status === 200) {
        assert.deepEqual(res.json, SUCCESS);
        if (!stopped) acked.add(i);
      }
      if (acked.size >= N / 2 && !stopped) stop();
    });
    let timer;
    const outcome = await Promise.race([Promise.allSettled(inFlight), new Promise((r) => { timer = setTimeout(r, 20_000); })]);
    clearTimeout(timer);
    assert.ok(outcome, "pushes still unanswered 20 s after the stop");
    const failed = outcome.find((o) => o.status === "rejected");
    if (failed) throw failed.reason;
  } finally {
    if (!stopped) stop();
    await stopping;
  }
  assert.ok(acked.size >= N / 2, `only ${acked.size} acknowledged before the stop`);
  assert.ok(inFlightAtStop >= 1, `no push was in flight when the runtime stopped (sent ${sent.size}, acknowledged ${acked.size})`);
  if (process.env.E2E_LOG) console.log(`# acknowledged before the stop: ${acked.size} of ${N}, in flight: ${inFlightAtStop}`);

  w = await startPersistentWorker(dir);
  try {
    const all = await w.allReceipts("default");
    const byCall = new Map(all.map((r) => [r.call_id, r]));
    assert.equal(byCall.size, all.length, "a receipt is stored twice");
    for (const i of acked) {
      const r = byCall.get(`crash-${i}^1`);
      assert.ok(r, `push ${i} was answered 200 before the stop but is gone after the restart`);
      assert.deepEqual(r.raw, bodies[i][0]);
    }
    // ICC retries whatever it did not see acknowledged (here: everything again): one copy each.
    for (const b of bodies) assertSuccess(await w.push("bot", null, b));
    const again = await w.allReceipts("default");
    assert.equal(again.length, N);
    assert.equal(new Set(again.map((r) => r.call_id)).size, N);
    for (let k = 1; k < again.length; k++) assert.ok(again[k].seq > again[k - 1].seq);
    // receipts seen before the restart kept their seq
    const seqAfter = new Map(again.map((r) => [r.call_id, r.seq]));
    for (const r of all) assert.equal(seqAfter.get(r.call_id), r.seq);
  } finally {
    await w.dispose();
  }
});
