// What cannot be stored as a receipt is quarantined, never dropped: the push still answers
// success (a retry would fail the same way), valid siblings are stored, and the quarantine
// lists each item with its reason, address, received_at and raw body.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import {
  startWorker, fixture, assertSuccess, assertApiError, RFC3339, PUSH_TOKEN,
} from "./harness.mjs";

const T = { timeout: 30_000 };
let w;
afterEach(async () => {
  await w?.dispose();
  w = undefined;
});

function assertItem(item, reason, addressPart) {
  assert.equal(item.reason, reason);
  assert.ok(Number.isInteger(item.seq) && item.seq >= 1, JSON.stringify(item));
  assert.match(item.received_at, RFC3339);
  const text = JSON.stringify(item);
  assert.ok(!text.includes(PUSH_TOKEN), "quarantine must not keep the push token");
  assert.ok(text.includes(addressPart), `item should name the address ${addressPart}: ${text}`);
  assert.ok(typeof item.raw === "string" || typeof item.raw_base64 === "string", text);
}

test("a body that is not JSON: success, one not_json item with the body as text", T, async () => {
  w = await startWorker();
  const body = '{"call_id": "x", oops not json';
  assertSuccess(await w.push("llm", null, body));
  const q = await w.quarantine("default");
  assert.equal(q.status, 200, q.text);
  assert.equal(q.json.items.length, 1, q.text);
  assertItem(q.json.items[0], "not_json", "/icc/llm");
  assert.equal(q.json.items[0].raw, body);
  assert.equal(q.json.next_after, q.json.items[0].seq);
  const r = await w.fetchReceipts("default");
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.receipts, []);
});

test("quarantine is deduplicated by (address, body)", T, async () => {
  w = await startWorker({ KV_FAST_PATH: "false" });
  const body = "<xml>not json</xml>";
  assertSuccess(await w.push("bot", null, body));
  assertSuccess(await w.push("bot", null, body));
  const q = await w.quarantine("default");
  assert.equal(q.json.items.length, 1, q.text);
  // another address is another item
  assertSuccess(await w.push("agent", null, body));
  const q2 = await w.quarantine("default");
  assert.equal(q2.json.items.length, 2, q2.text);
});

test("a body that is not UTF-8 is kept as raw_base64", T, async () => {
  w = await startWorker();
  const bytes = new Uint8Array([0xff, 0xfe, 0x5b, 0x00, 0xc3, 0x28, 0x5d]);
  assertSuccess(await w.push("bot", null, bytes));
  const q = await w.quarantine("default");
  assert.equal(q.json.items.length, 1, q.text);
  const item = q.json.items[0];
  assert.equal(item.reason, "not_json");
  assert.equal(item.raw, undefined);
  assert.deepEqual(new Uint8Array(Buffer.from(item.raw_base64, "base64")), bytes);
});

test("non-object elements are quarantined one by one; object siblings are stored", T, async () => {
  w = await startWorker();
  const rep = fixture("LlmSmartCallReport")[0];
  const rec = fixture("LlmSmartCallRecord")[0];
  assertSuccess(await w.push("llm", null, JSON.stringify([42, rep, "a string", null, rec, [1, 2]])));
  const all = await w.allReceipts("default");
  assert.deepEqual(all.map((r) => r.raw), [rep, rec]);
  const q = await w.quarantine("default");
  const items = q.json.items.filter((i) => i.reason === "not_object");
  assert.equal(items.length, 4, q.text);
  for (const i of items) assertItem(i, "not_object", "/icc/llm");
  assert.deepEqual(items.map((i) => JSON.parse(i.raw)), [42, "a string", null, [1, 2]]);
});

test("unknown_shape: an object no type matches is quarantined; siblings are stored", T, async () => {
  w = await startWorker();
  const note = fixture("AlicomAgentCallNote")[0];
  const odd = { foo: 1, bar: "baz" };
  const botish = { call_id: "c^1", duration: "7" }; // bot keys of two types (report, recording), no status field
  assertSuccess(await w.push("agent", "shop1", [odd, note]));
  assertSuccess(await w.push("bot", "shop1", [botish]));
  const all = await w.allReceipts("shop1");
  assert.deepEqual(all.map((r) => r.type), ["AlicomAgentCallNote"]);
  const q = await w.quarantine("shop1");
  assert.equal(q.status, 200, q.text);
  const items = q.json.items.filter((i) => i.reason === "unknown_shape");
  assert.equal(items.length, 2, q.text);
  assertItem(items[0], "unknown_shape", "/icc/agent/shop1");
  assertItem(items[1], "unknown_shape", "/icc/bot/shop1");
  assert.deepEqual(JSON.parse(items[0].raw), odd);
  assert.deepEqual(JSON.parse(items[1].raw), botish);
  // a message of another product's shape at the wrong product address is not guessed into that type
  assertSuccess(await w.push("llm", "shop1", fixture("AlicomAgentCallRecord")));
  const q2 = await w.quarantine("shop1");
  assert.equal(q2.json.items.filter((i) => i.reason === "unknown_shape").length, 3, q2.text);
  assert.equal((await w.allReceipts("shop1")).length, 1);
  // default saw nothing
  const qd = await w.quarantine("default");
  assert.equal(qd.status, 200, qd.text);
  assert.deepEqual(qd.json.items, []);
});

test("quarantine paging: after/limit, next_after", T, async () => {
  w = await startWorker();
  for (let i = 0; i < 5; i++) assertSuccess(await w.push("llm", null, `not json ${i}`));
  const p1 = await w.quarantine("default", { limit: 2 });
  assert.equal(p1.json.items.length, 2);
  assert.equal(p1.json.has_more, true, "three more items follow");
  assert.deepEqual(p1.json.items.map((i) => i.raw), ["not json 0", "not json 1"]);
  const p2 = await w.quarantine("default", { after: p1.json.next_after, limit: 10 });
  assert.deepEqual(p2.json.items.map((i) => i.raw), ["not json 2", "not json 3", "not json 4"]);
  assert.ok(p2.json.items[0].seq > p1.json.items[1].seq);
  assert.equal(p2.json.has_more, false, "the last item was on this page");
  const exact = await w.quarantine("default", { after: p1.json.next_after, limit: 3 });
  assert.equal(exact.json.items.length, 3);
  assert.equal(exact.json.has_more, false, "a full page at the end has no more");
  const p3 = await w.quarantine("default", { after: p2.json.next_after });
  assert.deepEqual(p3.json.items, []);
  assert.equal(p3.json.has_more, false);
  // quarantine needs the fetch token like everything under /v1
  assertApiError(await w.api("GET", "/v1/streams/default/quarantine", { bearer: PUSH_TOKEN }), 401);
});

test("quarantined messages are counted in stats", T, async () => {
  w = await startWorker();
  assertSuccess(await w.push("llm", null, [{ nothing: "known" }, fixture("LlmSmartCallReport")[0]]));
  const st = await w.stats("default");
  assert.equal(st.status, 200, st.text);
  const types = st.json.streams.default.types;
  assert.equal(types.LlmSmartCallReport.stored, 1);
  const quarantined = Object.values(types).reduce((n, t) => n + (t.quarantined ?? 0), 0);
  assert.equal(quarantined, 1, `one message quarantined: ${st.text}`);
});

test("a large not-JSON body (over 1 MiB, stored in chunks) comes back whole", { timeout: 60_000 }, async () => {
  w = await startWorker();
  const body = "not json " + "0123456789abcdef".repeat(200 * 1024); // ~3.1 MiB
  assertSuccess(await w.push("llm", null, body));
  // Over the spool threshold: acked once stored as received, quarantined when the inbox drains it.
  let q;
  for (const deadline = Date.now() + 30_000; ; ) {
    q = await w.quarantine("default");
    assert.equal(q.status, 200);
    if (q.json.items.length > 0) break;
    assert.ok(Date.now() < deadline, "the spooled body was not drained into quarantine in 30 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(q.json.items.length, 1);
  assert.equal(q.json.items[0].reason, "not_json");
  assert.equal(q.json.items[0].raw.length, body.length);
  assert.ok(q.json.items[0].raw === body, "raw must be the body byte for byte");
});
