// Dedup and identity: one receipt identity is stored once per stream; a repeated id with other
// content is quarantined as conflicting_duplicate and never overwrites the stored receipt.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startWorker, fixture, fixtureText, assertSuccess, expectedId } from "./harness.mjs";

const T = { timeout: 30_000 };
let w;
afterEach(async () => {
  await w?.dispose();
  w = undefined;
});

function typeStats(statsJson, stream, type) {
  const s = statsJson?.streams?.[stream]?.types?.[type];
  assert.ok(s, `stats lack streams.${stream}.types.${type}: ${JSON.stringify(statsJson)}`);
  return s;
}

for (const fastPath of ["true", "false"]) {
  test(`the same batch pushed twice is stored once (KV_FAST_PATH=${fastPath})`, T, async () => {
    w = await startWorker({ KV_FAST_PATH: fastPath });
    const body = fixtureText("LlmSmartCallReport");
    assertSuccess(await w.push("llm", null, body));
    assertSuccess(await w.push("llm", null, body));
    assertSuccess(await w.push("llm", null, body));
    const all = await w.allReceipts("default");
    assert.equal(all.length, 1);
    assert.deepEqual(all[0].raw, fixture("LlmSmartCallReport")[0]);
    if (fastPath === "false") {
      // Every repeat reached the Durable Object, which counted it as a duplicate.
      const st = await w.stats("default");
      assert.equal(st.status, 200, st.text);
      const s = typeStats(st.json, "default", "LlmSmartCallReport");
      assert.equal(s.stored, 1);
      assert.equal(s.duplicate, 2);
      assert.equal(s.conflict, 0);
    }
  });
}

test("same receipt with other whitespace and key order is a duplicate", T, async () => {
  w = await startWorker();
  const msg = fixture("AlicomAgentCallReport")[0];
  assertSuccess(await w.push("agent", null, [msg]));
  const reordered = Object.fromEntries(Object.entries(msg).reverse());
  const spaced = "[\n  " + JSON.stringify(reordered, null, 4) + "\r\n]\n";
  assertSuccess(await w.push("agent", null, spaced));
  const all = await w.allReceipts("default");
  assert.equal(all.length, 1);
  assert.equal(all[0].id, expectedId("AlicomAgentCallReport", [msg.callId]));
  const q = await w.quarantine("default");
  assert.equal(q.status, 200, q.text);
  assert.deepEqual(q.json.items, [], "a duplicate is not a conflict");
  const s = typeStats((await w.stats("default")).json, "default", "AlicomAgentCallReport");
  assert.equal(s.stored, 1);
  assert.equal(s.duplicate, 1);
  assert.equal(s.conflict, 0);
});

test("a receipt repeated inside a different batch is stored once; its new siblings are stored", T, async () => {
  w = await startWorker();
  const a = fixture("VoiceCallReportAiccs")[0];
  const b = { ...a, status_code: "200201", status_time: "2021-04-28 09:55:09" }; // another state of the call: another id
  const c = { ...a, status_code: "200102", status_time: "2021-04-28 09:55:12" };
  assertSuccess(await w.push("bot", null, [a]));
  assertSuccess(await w.push("bot", null, [b, a, c]));
  const all = await w.allReceipts("default");
  assert.deepEqual(all.map((r) => r.raw), [a, b, c]);
  assert.equal(new Set(all.map((r) => r.id)).size, 3);
  assert.equal(all[1].id, expectedId("VoiceCallReportAiccs", [a.call_id, "200201", "2021-04-28 09:55:09", ""]));
});

test("a duplicate inside one batch is stored once", T, async () => {
  w = await startWorker();
  const a = fixture("LlmSmartCallRecord")[0];
  assertSuccess(await w.push("llm", null, [a, a, { ...a }]));
  assert.equal((await w.allReceipts("default")).length, 1);
});

test("identity scalars compare as text: call_times 1 and \"1\" are the same note", T, async () => {
  w = await startWorker();
  const note = fixture("AlicomAgentCallNote")[0];
  assertSuccess(await w.push("agent", null, [note]));
  const r = (await w.allReceipts("default"))[0];
  assert.equal(r.id, expectedId("AlicomAgentCallNote", [note.callId, "1"]));
  // a second attempt (call_times 2) is another identity
  assertSuccess(await w.push("agent", null, [{ ...note, call_times: 2 }]));
  const all = await w.allReceipts("default");
  assert.equal(all.length, 2);
  assert.equal(all[1].id, expectedId("AlicomAgentCallNote", [note.callId, "2"]));
});

test("same call id under two types is two receipts (the type is part of the id)", T, async () => {
  w = await startWorker();
  const rep = fixture("LlmSmartCallReport")[0];
  const rec = { ...fixture("LlmSmartCallRecord")[0], call_id: rep.call_id };
  assertSuccess(await w.push("llm", null, [rep, rec]));
  const all = await w.allReceipts("default");
  assert.deepEqual(all.map((r) => r.type), ["LlmSmartCallReport", "LlmSmartCallRecord"]);
});

test("a receipt pushed to two streams is stored once in each", T, async () => {
  w = await startWorker();
  const body = fixture("VoiceReportAiccs");
  assertSuccess(await w.push("bot", null, body));
  assertSuccess(await w.push("bot", "shop1", body));
  assertSuccess(await w.push("bot", "shop1", body));
  const d = await w.allReceipts("default");
  const s = await w.allReceipts("shop1");
  assert.equal(d.length, 1);
  assert.equal(s.length, 1);
  assert.equal(d[0].id, s[0].id);
  assert.equal(s[0].stream, "shop1");
});

test("same id with different content is quarantined as conflicting_duplicate, never overwriting", T, async () => {
  w = await startWorker();
  const orig = fixture("LlmSmartCallReport")[0];
  const changed = { ...orig, duration: 190, status_msg: "changed-content-marker" };
  assertSuccess(await w.push("llm", null, [orig]));
  // ICC must not retry forever: a conflict is handled (quarantined), so the answer is success.
  assertSuccess(await w.push("llm", null, [changed]));
  const all = await w.allReceipts("default");
  assert.equal(all.length, 1);
  assert.deepEqual(all[0].raw, orig, "the stored receipt must not be overwritten");
  assert.equal(all[0].duration_s, 189);

  const q = await w.quarantine("default");
  assert.equal(q.status, 200, q.text);
  const items = q.json.items.filter((i) => i.reason === "conflicting_duplicate");
  assert.equal(items.length, 1, q.text);
  const item = items[0];
  assert.ok(Number.isInteger(item.seq));
  assert.equal(typeof item.raw, "string", "the conflicting body is kept as text");
  assert.ok(item.raw.includes("changed-content-marker"), `quarantined raw should hold the conflicting message: ${item.raw}`);

  const s = typeStats((await w.stats("default")).json, "default", "LlmSmartCallReport");
  assert.equal(s.stored, 1);
  assert.equal(s.conflict, 1);

  // pushing the same conflicting batch again neither stores nor adds a second quarantine item
  assertSuccess(await w.push("llm", null, [changed]));
  assert.equal((await w.allReceipts("default")).length, 1);
  const q2 = await w.quarantine("default");
  assert.equal(q2.json.items.filter((i) => i.reason === "conflicting_duplicate").length, 1, q2.text);
});
