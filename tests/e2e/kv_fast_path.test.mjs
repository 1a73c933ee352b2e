// SPEC "Dedup and identity", KV part: the KV fast path is written once per push (never per
// message), only after the Durable Object committed, with TTL max(60 s, retention); a repeat of
// the same bytes may be answered from KV (counted as kv_answered); a stale hit is not trusted.
// KV is inspected through Miniflare's own DEDUP namespace handle (test-side only).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startWorker, startFaultyWorker, fixture, assertSuccess, sleep } from "./harness.mjs";

const T = { timeout: 30_000 };
const batch = JSON.stringify(["VoiceReportAiccs", "VoiceCallReportAiccs", "RobotCallReportAiccs"].map((t) => fixture(t)[0]));

async function kvKeys(w, workerName) {
  const kv = await w.mf.getKVNamespace("DEDUP", workerName);
  return (await kv.list()).keys;
}

async function waitFor(fn, ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > end) return v;
    await sleep(50);
  }
}

test("one KV key per committed push (not per message), TTL = retention, value = commit time", T, async () => {
  const w = await startWorker();
  try {
    const t0 = Date.now();
    assertSuccess(await w.push("bot", null, batch));
    const keys = await waitFor(async () => { const k = await kvKeys(w); return k.length ? k : null; });
    assert.equal(keys?.length, 1, `KV keys after a 3-message push: ${JSON.stringify(keys)}`);
    const exp = keys[0].expiration * 1000;
    const week = 7 * 86400 * 1000;
    assert.ok(Math.abs(exp - (t0 + week)) < 3600_000, `expiration ${new Date(exp).toISOString()} is not now + 7 days`);
    const kv = await w.mf.getKVNamespace("DEDUP");
    const value = await kv.get(keys[0].name);
    const commit = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
    assert.ok(commit >= t0 - 1000 && commit <= Date.now() + 1000, `value ${value} is not the commit time`);
    // a repeat of the same bytes: no second key; answered (from KV or the inbox) with success
    assertSuccess(await w.push("bot", null, batch));
    await sleep(200);
    assert.equal((await kvKeys(w)).length, 1);
    const answered = await waitFor(async () => {
      const st = await w.stats("default");
      assert.equal(st.status, 200, st.text);
      return st.json.streams.default.kv_answered === 1;
    });
    assert.ok(answered, "a repeat of the same bytes should be answered from KV and counted once (kv_answered = 1)");
    assert.equal((await w.allReceipts("default")).length, 3);
  } finally {
    await w.dispose();
  }
});

test("TTL is at least 60 s when retention is shorter", T, async () => {
  const w = await startWorker({ RETENTION_DAYS: "0.0001" }); // 8.64 s
  try {
    const t0 = Date.now();
    assertSuccess(await w.push("bot", null, batch));
    const keys = await waitFor(async () => { const k = await kvKeys(w); return k.length ? k : null; });
    assert.equal(keys?.length, 1);
    const exp = keys[0].expiration * 1000;
    assert.ok(exp >= t0 + 59_000 && exp <= Date.now() + 62_000, `expiration in ${exp - t0} ms, want ~60 s`);
  } finally {
    await w.dispose();
  }
});

test("the KV key, the address and the pinned type are part of the key", T, async () => {
  const w = await startWorker();
  try {
    assertSuccess(await w.push("bot", null, batch));
    assertSuccess(await w.push("bot", "shop1", batch));
    assertSuccess(await w.push("bot", null, JSON.stringify([fixture("VoiceReportAiccs")[0]]), { type: "VoiceReportAiccs" }));
    assertSuccess(await w.push("bot", null, JSON.stringify([fixture("VoiceReportAiccs")[0]])));
    const keys = await waitFor(async () => { const k = await kvKeys(w); return k.length >= 4 ? k : null; });
    assert.equal(keys?.length, 4, JSON.stringify(keys));
    // shop1 got its own copy although default had the same bytes
    assert.equal((await w.allReceipts("shop1")).length, 3);
  } finally {
    await w.dispose();
  }
});

test("a stale KV hit (commit time + retention in the past) is not trusted", T, async () => {
  const w = await startWorker({ RETENTION_DAYS: "1" });
  try {
    assertSuccess(await w.push("bot", null, batch));
    const keys = await waitFor(async () => { const k = await kvKeys(w); return k.length ? k : null; });
    assert.equal(keys?.length, 1);
    const kv = await w.mf.getKVNamespace("DEDUP");
    const value = await kv.get(keys[0].name);
    const old = Date.now() - 2 * 86400_000;
    await kv.put(keys[0].name, /^\d+$/.test(value) ? String(old) : new Date(old).toISOString(), { expirationTtl: 3600 });
    assertSuccess(await w.push("bot", null, batch));
    // the repeat went to the inbox, which counted three duplicates
    const st = await w.stats("default");
    const types = st.json.streams.default.types;
    assert.equal(types.VoiceReportAiccs.duplicate, 1, st.text);
    assert.equal(types.RobotCallReportAiccs.duplicate, 1, st.text);
  } finally {
    await w.dispose();
  }
});

test("nothing is written to KV when the inbox failed, or for 401/400 answers", T, async () => {
  const f = await startFaultyWorker("throw");
  try {
    const res = await f.push("bot", null, batch);
    assert.equal(res.status, 503);
    await sleep(300);
    assert.deepEqual(await kvKeys(f, "icc-edge-inbox"), []);
  } finally {
    await f.dispose();
  }
  const w = await startWorker();
  try {
    assert.equal((await w.push("bot", null, batch, { token: "wrong" })).status, 401);
    assert.equal((await w.push("bot", null, batch, { type: "LlmSmartCall" })).status, 400);
    await sleep(300);
    assert.deepEqual(await kvKeys(w), []);
    // the inspection sees a write when there is one: a committed push leaves exactly its own key
    assertSuccess(await w.push("bot", null, JSON.stringify([fixture("VoiceReportAiccs")[0]])));
    const keys = await waitFor(async () => { const k = await kvKeys(w); return k.length ? k : null; });
    assert.equal(keys?.length, 1, JSON.stringify(keys));
  } finally {
    await w.dispose();
  }
});
