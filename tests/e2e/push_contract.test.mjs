// The push contract around the body and the address: [] and bare objects, BOM, type pinning,
// unknown products/apps/types, methods, app streams, and the body size limit.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  startWorker, fixture, fixtureText, assertSuccess, assertIccAnswer, assertApiError, assertStreamEmpty, PUSH_TOKEN,
} from "./harness.mjs";

const T = { timeout: 30_000 };
let w;
afterEach(async () => {
  await w?.dispose();
  w = undefined;
});

test("[] is a valid push (the console's Test button) and stores nothing", T, async () => {
  w = await startWorker();
  for (const product of ["llm", "agent", "bot"]) assertSuccess(await w.push(product, null, "[]"));
  await assertStreamEmpty(w, "default");
});

test("a bare object counts as a one-element array", T, async () => {
  w = await startWorker();
  const msg = fixture("AlicomAgentCallRecord")[0];
  assertSuccess(await w.push("agent", null, JSON.stringify(msg)));
  const all = await w.allReceipts("default");
  assert.equal(all.length, 1);
  assert.equal(all[0].type, "AlicomAgentCallRecord");
  assert.deepEqual(all[0].raw, msg);
});

test("a leading UTF-8 BOM is ignored; Content-Type is not required", T, async () => {
  w = await startWorker();
  const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(fixtureText("VoiceReportAiccs"), "utf8")]);
  assertSuccess(await w.push("bot", null, new Uint8Array(bytes)));
  assertSuccess(await w.push("llm", null, fixtureText("LlmSmartCallReport"), { headers: { "content-type": "text/plain; charset=utf-8" } }));
  const all = await w.allReceipts("default");
  assert.deepEqual(all.map((r) => r.type), ["VoiceReportAiccs", "LlmSmartCallReport"]);
  assert.deepEqual(all[0].raw, fixture("VoiceReportAiccs")[0]);
});

test("several messages of several types in one batch", T, async () => {
  w = await startWorker();
  const batch = ["VoiceReportAiccs", "VoiceCallReportAiccs", "VoiceRecordReportAiccs", "RobotCallReportAiccs"].map((t) => fixture(t)[0]);
  assertSuccess(await w.push("bot", null, batch));
  const all = await w.allReceipts("default");
  assert.deepEqual(all.map((r) => r.type), ["VoiceReportAiccs", "VoiceCallReportAiccs", "VoiceRecordReportAiccs", "RobotCallReportAiccs"]);
  assert.deepEqual(all.map((r) => r.raw), batch);
});

test("type= pins the type of every message", T, async () => {
  w = await startWorker();
  // A shape inference would not recognize (no voice_type, b_start_time, status_msg or callee):
  const msg = { call_id: "pin-1^1", status_code: "200000", duration: "7" };
  assertSuccess(await w.push("bot", null, [msg], { type: "VoiceReportAiccs" }));
  const all = await w.allReceipts("default");
  assert.equal(all.length, 1);
  assert.equal(all[0].type, "VoiceReportAiccs");
  assert.equal(all[0].call_id, "pin-1^1");
  assert.equal(all[0].duration_s, 7);
  assert.equal(all[0].status_code, "200000");
  // without the pin, the same keys less the status field fit two bot types (report and
  // recording): an unknown shape, quarantined, not stored
  assertSuccess(await w.push("bot", null, [{ call_id: "pin-2^2", duration: "7" }]));
  assert.equal((await w.allReceipts("default")).length, 1);
  const q = await w.quarantine("default");
  assert.ok(q.json.items.some((i) => i.reason === "unknown_shape"), q.text);
});

test("type=LlmSmartCall means Report or Record, decided by record_file", T, async () => {
  w = await startWorker();
  const rep = fixture("LlmSmartCallReport")[0];
  const rec = fixture("LlmSmartCallRecord")[0];
  assertSuccess(await w.push("llm", null, [rep, rec], { type: "LlmSmartCall" }));
  const all = await w.allReceipts("default");
  assert.deepEqual(all.map((r) => r.type), ["LlmSmartCallReport", "LlmSmartCallRecord"]);
});

test("a type that does not belong to the product → 400 unknown type, nothing stored", T, async () => {
  w = await startWorker();
  const cases = [
    ["llm", "VoiceReportAiccs", fixture("LlmSmartCallReport")],
    ["bot", "LlmSmartCall", fixture("VoiceReportAiccs")],
    ["agent", "RobotCallReportAiccs", fixture("AlicomAgentCallNote")],
    ["bot", "NoSuchType", fixture("VoiceReportAiccs")],
  ];
  for (const [product, type, body] of cases) {
    const res = await w.push(product, null, body, { type });
    assert.equal(res.status, 400, `${product} type=${type}: ${res.status} ${res.text}`);
    assert.deepEqual(res.json, { code: 400, msg: "unknown type" });
  }
  // even the console's empty Test body fails visibly on a wrong URL
  const res = await w.push("llm", null, "[]", { type: "AlicomAgentCallNote" });
  assert.deepEqual([res.status, res.json], [400, { code: 400, msg: "unknown type" }]);
  await assertStreamEmpty(w, "default");
});

test("unknown product → 404 with the {code,msg} shape", T, async () => {
  w = await startWorker();
  for (const product of ["sms", "LLM", "vms", ""]) {
    const res = await w.push(product, null, fixture("LlmSmartCallReport"));
    assertIccAnswer(res, 404);
  }
  assertIccAnswer(await w.request("POST", `/icc?token=${PUSH_TOKEN}`, { body: "[]" }), 404);
  await assertStreamEmpty(w, "default");
});

test("other methods on /icc → 405 with Allow, {code,msg} shape", T, async () => {
  w = await startWorker();
  for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
    const res = await w.push("llm", null, method === "GET" || method === "DELETE" ? undefined : "[]", { method });
    assertIccAnswer(res, 405);
    const allow = res.headers.get("allow");
    assert.ok(allow && /\bPOST\b/.test(allow), `Allow header: ${allow}`);
  }
  const res = await w.push("bot", "shop1", undefined, { method: "GET" });
  assertIccAnswer(res, 405);
  assert.match(res.headers.get("allow") ?? "", /\bPOST\b/);
});

test("an app address writes only its own stream, shared by products", T, async () => {
  w = await startWorker();
  assertSuccess(await w.push("llm", "shop1", fixture("LlmSmartCallReport")));
  assertSuccess(await w.push("bot", "shop1", fixture("RobotCallReportAiccs")));
  assertSuccess(await w.push("agent", "shop-2_B", fixture("AlicomAgentCallNote")));
  await assertStreamEmpty(w, "default");
  const s1 = await w.allReceipts("shop1");
  assert.deepEqual(s1.map((r) => [r.stream, r.product, r.type]), [
    ["shop1", "llm", "LlmSmartCallReport"],
    ["shop1", "bot", "RobotCallReportAiccs"],
  ]);
  const s2 = await w.allReceipts("shop-2_B");
  assert.deepEqual(s2.map((r) => [r.stream, r.type]), [["shop-2_B", "AlicomAgentCallNote"]]);
});

test("invalid app names → 404, nothing stored", T, async () => {
  w = await startWorker();
  const bad = ["bad.app", "a".repeat(65), "with%20space", "default", "DEFAULT", "Default", "a/b", "%C3%A9t%C3%A9"];
  for (const app of bad) {
    const res = await w.push("llm", app, fixture("LlmSmartCallReport"));
    assertIccAnswer(res, 404);
  }
  const ok = await w.push("llm", "a".repeat(64), fixture("LlmSmartCallReport"));
  assertSuccess(ok);
  await assertStreamEmpty(w, "default");
  // `default` in another letter case is no second stream
  const streams = await w.api("GET", "/v1/streams");
  assert.deepEqual(streams.json.streams, ["a".repeat(64)], streams.text);
  assertApiError(await w.api("GET", "/v1/streams/DEFAULT/receipts"), 404, "not_found");
});

test("APPS lists the allowed apps; any other app → 404", T, async () => {
  w = await startWorker({ APPS: "shop1,shop2" });
  assertSuccess(await w.push("llm", "shop1", fixture("LlmSmartCallReport")));
  assertSuccess(await w.push("llm", "shop2", fixture("LlmSmartCallReport")));
  assertIccAnswer(await w.push("llm", "shop3", fixture("LlmSmartCallReport")), 404);
  assertSuccess(await w.push("llm", null, fixture("LlmSmartCallReport")));
  await assertStreamEmpty(w, "shop3");
});

test("a body over MAX_BODY_BYTES → 413, and a too_large stub is quarantined", T, async () => {
  w = await startWorker({ MAX_BODY_BYTES: "1000" });
  const msg = fixture("LlmSmartCallReport")[0];
  const body = JSON.stringify([msg, { ...msg, call_id: "big^1", pad: "x".repeat(1200) }]);
  assert.ok(Buffer.byteLength(body) > 1000);
  const res = await w.push("llm", null, body);
  assertIccAnswer(res, 413);
  await assertStreamEmpty(w, "default");
  const q = await w.quarantine("default");
  assert.equal(q.status, 200, q.text);
  const items = q.json.items.filter((i) => i.reason === "too_large");
  assert.equal(items.length, 1, q.text);
  const itemText = JSON.stringify(items[0]);
  assert.ok(!itemText.includes(PUSH_TOKEN), "the quarantined address must not carry the push token");
  // the stub: address, size, the first 64 KiB (here: the whole body) and their SHA-256
  assert.equal(items[0].address, "/icc/llm");
  assert.equal(items[0].size, Buffer.byteLength(body));
  assert.equal(items[0].sha256, createHash("sha256").update(body).digest("hex"));
  assert.equal(items[0].raw, body);
  // a body at the limit is fine
  const small = JSON.stringify([msg]);
  assert.ok(Buffer.byteLength(small) <= 1000);
  assertSuccess(await w.push("llm", null, small));
});

test("every /icc answer is JSON {code:number,msg:string}", T, async () => {
  w = await startWorker();
  const answers = [
    await w.push("llm", null, "[]"),
    await w.push("llm", null, "[]", { token: null }),
    await w.push("nope", null, "[]"),
    await w.push("llm", null, undefined, { method: "GET" }),
    await w.push("llm", null, "[]", { type: "X" }),
    await w.push("llm", null, "not json"),
  ];
  for (const a of answers) {
    assert.equal(typeof a.json?.code, "number", a.text);
    assert.equal(typeof a.json?.msg, "string", a.text);
    assert.match(a.headers.get("content-type") ?? "", /application\/json/);
  }
});

test("an oversized body keeps only its first 64 KiB in the stub", T, async () => {
  w = await startWorker({ MAX_BODY_BYTES: "100000" });
  const body = "Z".repeat(200_000);
  assertIccAnswer(await w.push("bot", "shop1", body), 413);
  const q = await w.quarantine("shop1");
  const item = q.json.items.find((i) => i.reason === "too_large");
  assert.ok(item, q.text);
  assert.equal(item.raw, "Z".repeat(64 * 1024));
  // the declared size, or (when the runtime passes no Content-Length) the bytes read before stopping
  assert.ok(item.size > 100_000 && item.size <= 200_000, `size ${item.size}`);
  assert.equal(item.sha256, createHash("sha256").update("Z".repeat(64 * 1024)).digest("hex"), "SHA-256 of the kept head");
});

test("a body without Content-Length is read only up to MAX_BODY_BYTES: 413 and a stub, the rest never read", { timeout: 60_000 }, async () => {
  w = await startWorker({ MAX_BODY_BYTES: "100000" });
  const CHUNK = 16 * 1024;
  const TOTAL = 64 * 1024 * 1024; // far more than the worker may read
  let sent = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (sent >= TOTAL) return controller.close();
      controller.enqueue(new Uint8Array(CHUNK).fill(0x41));
      sent += CHUNK;
    },
  });
  const res = await w.mf.dispatchFetch(`http://inbox.test/icc/bot/shop1?token=${PUSH_TOKEN}`, { method: "POST", body, duplex: "half" });
  const text = await res.text();
  assert.equal(res.status, 413, text);
  assert.deepEqual(JSON.parse(text), { code: 413, msg: "body too large" });
  assert.ok(sent < TOTAL, `the client was made to send all ${sent} bytes`);
  const q = await w.quarantine("shop1");
  const item = q.json.items.find((i) => i.reason === "too_large");
  assert.ok(item, q.text);
  assert.equal(item.raw, "A".repeat(64 * 1024));
  assert.equal(item.sha256, createHash("sha256").update("A".repeat(64 * 1024)).digest("hex"));
  assert.ok(item.size > 100_000 && item.size < TOTAL, `read size ${item.size}: over the limit, not the whole body`);
  await assertStreamEmpty(w, "shop1");
});

test("a normal push is answered well inside ICC's 700 ms", T, async () => {
  w = await startWorker();
  for (let i = 0; i < 5; i++) {
    const res = await w.push("bot", null, [{ ...fixture("VoiceReportAiccs")[0], call_id: `fast-${i}^1` }]);
    assertSuccess(res);
    assert.ok(res.ms < 500, `push took ${Math.round(res.ms)} ms`);
  }
});
