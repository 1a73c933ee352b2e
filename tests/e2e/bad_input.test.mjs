// Promise: "nothing lost" (and no crash) on hostile or broken input. A corpus of bad pushes,
// each sent to its own app address so its outcome can be read back in isolation. Each gets its
// documented answer (README "What ICC gets back" and "Choices where the contract is silent"):
// the exact HTTP status and {code,msg}, JSON content type, no 500, no panic in the logs. Nothing
// is lost: what is stored reads back with `raw` exactly as pushed, what is quarantined reads back
// from the quarantine API with its reason and its exact bytes (`raw` or `raw_base64`), size and
// SHA-256. Refused requests (400/404) store nothing and create no stream.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  startWorker, fixture, sampleWithCallId, PUSH_TOKEN, SUCCESS, assertApiError,
} from "./harness.mjs";

const LIMIT = 4 * 1024 * 1024; // MAX_BODY_BYTES default
const MAX_MESSAGE = 512 * 1024;
const u8 = (s) => new Uint8Array(Buffer.from(s, "utf8"));
const json = (v) => JSON.stringify(v);
const rep = fixture("LlmSmartCallReport")[0];
const rec = fixture("LlmSmartCallRecord")[0];
const deepArray = "[".repeat(10_000) + "]".repeat(10_000);
const deepObject = '{"a":'.repeat(10_000) + "1" + "}".repeat(10_000);

/** A JSON array of `n` LlmSmartCallRecord messages of exactly `total` bytes (each under 512 KiB). */
function arrayOfSize(total, n, tag) {
  const head = (k) => `{"call_id":"${tag}-${k}^1","record_file":"http://x","pad":"`;
  const overhead = 2 + (n - 1);
  const per = Math.floor((total - overhead) / n);
  const msgs = [];
  for (let k = 0; k < n; k++) {
    const size = k === n - 1 ? total - overhead - per * (n - 1) : per;
    msgs.push(head(k) + "y".repeat(size - head(k).length - 2) + '"}');
  }
  const body = "[" + msgs.join(",") + "]";
  assert.equal(Buffer.byteLength(body), total);
  return { body, msgs };
}

// q(reason, text|bytes[, more]): one expected quarantine item with its exact bytes.
const q = (reason, raw, more = {}) => ({ reason, bytes: typeof raw === "string" ? Buffer.from(raw, "utf8") : Buffer.from(raw), ...more });

const truncated = json(fixture("VoiceReportAiccs")).slice(0, 97);
const trailing = json([rep]) + " trailing";
const badUtf8 = Buffer.concat([Buffer.from('[{"call_id":"u8^1","record_file":"caf'), Buffer.from([0xc3, 0x28]), Buffer.from('"}]')]);
const surrogateUtf8 = Buffer.concat([Buffer.from('[{"call_id":"sur^1","record_file":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}]')]);
const overlongUtf8 = Buffer.concat([Buffer.from('{"call_id":"ovl^1","record_file":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]);
const loneSurrogateEscape = '{"call_id":"esc^1","record_file":"\\ud800"}';
const huge = { call_id: "huge-1^1", record_file: "http://x", pad: "h".repeat(MAX_MESSAGE) }; // over 512 KiB
const nearHuge = { call_id: "huge-2^1", record_file: "http://x", pad: "€".repeat(170_000) }; // ~510 KB, multi-byte
const atLimit = arrayOfSize(LIMIT, 9, "lim");
const overLimit = arrayOfSize(LIMIT + 1, 9, "over");
const withUnknown = { ...rep, call_id: "unk^1", x_vendor_extension: { nested: [1, { deep: true }] }, "未知字段": "值", "": "" };
const dupKeys = '{"call_id":"dk^1","record_file":"http://a","call_id":"dk^2","record_file":"http://b"}';
const wrongTypes = { ...rep, call_id: "wt^1", duration: "abc", caller: { x: 1 }, callee: ["1"], start_time: [], end_time: 17, status_msg: 5, hangup_direction: null };

/**
 * Each case: product, body, optional headers/type/path; expected status and msg; the raws that
 * must be stored (in order) and the quarantine items (in order).
 */
const CASES = [
  // --- not JSON at all, or broken JSON: the whole body is one not_json item
  { name: "malformed JSON (trailing comma)", product: "llm", body: '[{"call_id":"m^1","record_file":"x",}]', quarantine: [q("not_json", '[{"call_id":"m^1","record_file":"x",}]')] },
  { name: "malformed JSON (single quotes)", product: "bot", body: "[{'call_id':'m^2'}]", quarantine: [q("not_json", "[{'call_id':'m^2'}]")] },
  { name: "truncated body", product: "bot", body: truncated, quarantine: [q("not_json", truncated)] },
  { name: "valid array followed by garbage", product: "llm", body: trailing, quarantine: [q("not_json", trailing)] },
  { name: "empty body", product: "agent", body: "", quarantine: [q("not_json", "")] },
  { name: "whitespace-only body", product: "agent", body: " \n\t\r ", quarantine: [q("not_json", " \n\t\r ")] },
  { name: "a BOM and nothing else", product: "llm", body: new Uint8Array([0xef, 0xbb, 0xbf]), quarantine: [q("not_json", [0xef, 0xbb, 0xbf])] },
  { name: "raw NUL byte inside a string", product: "llm", body: '[{"call_id":"z^1","record_file":"a\u0000b"}]', quarantine: [q("not_json", '[{"call_id":"z^1","record_file":"a\u0000b"}]')] },
  { name: "form-encoded body with a form content type", product: "bot", body: "call_id=1%5E2&status_code=200000", headers: { "content-type": "application/x-www-form-urlencoded" }, quarantine: [q("not_json", "call_id=1%5E2&status_code=200000")] },
  // --- invalid UTF-8: kept byte for byte as raw_base64
  { name: "invalid UTF-8 inside a string", product: "llm", body: new Uint8Array(badUtf8), quarantine: [q("not_json", badUtf8, { base64: true })] },
  { name: "UTF-8-encoded surrogate (ED A0 80)", product: "llm", body: new Uint8Array(surrogateUtf8), quarantine: [q("not_json", surrogateUtf8, { base64: true })] },
  { name: "overlong UTF-8 (C0 AF) in a bare object", product: "llm", body: new Uint8Array(overlongUtf8), quarantine: [q("not_json", overlongUtf8, { base64: true })] },
  // --- JSON, but not objects: not_object, one item per element
  { name: "scalar number", product: "llm", body: "42", quarantine: [q("not_object", "42")] },
  { name: "scalar string", product: "bot", body: '"hello"', quarantine: [q("not_object", '"hello"')] },
  { name: "scalar true", product: "agent", body: "true", quarantine: [q("not_object", "true")] },
  { name: "scalar null", product: "agent", body: "null", quarantine: [q("not_object", "null")] },
  { name: "array of scalars (a repeated element is kept once)", product: "bot", body: '[1,"two",null,true,3.5,1]', quarantine: ["1", '"two"', "null", "true", "3.5"].map((r) => q("not_object", r)) },
  { name: "array of arrays beside an object", product: "llm", body: `[[],${json(rep)},[${json(rec)}]]`, stored: [rep], quarantine: [q("not_object", "[]"), q("not_object", `[${json(rec)}]`)] },
  // --- deep nesting (10,000 levels)
  { name: "10,000 nested arrays", product: "llm", body: deepArray, quarantine: [q("not_object", deepArray.slice(1, -1))] },
  { name: "10,000 nested objects (bare)", product: "llm", body: deepObject, quarantine: [q("not_json", deepObject)] },
  { name: "10,000 nested arrays inside a message, beside a valid one", product: "llm", body: `[${json(rep)},{"call_id":"deep^1","record_file":${deepArray}}]`, stored: [rep], quarantine: [q("not_json", `{"call_id":"deep^1","record_file":${deepArray}}`)] },
  // --- JSON the parser cannot hold
  { name: "number out of range (1e999999)", product: "llm", body: '[{"call_id":"n^1","record_file":"x","duration":1e999999}]', quarantine: [q("not_json", '{"call_id":"n^1","record_file":"x","duration":1e999999}')] },
  { name: "lone surrogate escape (\\ud800)", product: "llm", body: `[${loneSurrogateEscape},${json(rec)}]`, stored: [rec], quarantine: [q("not_json", loneSurrogateEscape)] },
  // --- objects with wrong or odd content: stored as pushed, absent values not invented
  {
    name: "wrong field types (string duration, object caller, array times, number status_msg)", product: "llm", body: json([wrongTypes]), stored: [wrongTypes],
    check: (r) => {
      assert.equal(r.duration_s, undefined, "an unparseable duration must be omitted, not invented");
      assert.equal(r.started_at, undefined);
      assert.equal(r.call_id, "wt^1");
      assert.ok(typeof r.caller !== "object", "caller must not be an object");
    },
  },
  { name: "number and boolean identity fields", product: "bot", body: '[{"call_id":42,"status_code":200101,"status_time":1640759026000}]', stored: [{ call_id: 42, status_code: 200101, status_time: 1640759026000 }], check: (r) => { assert.equal(r.call_id, "42"); assert.equal(r.status_code, "200101"); assert.equal(r.type, "VoiceCallReportAiccs"); } },
  { name: "call_id as an object", product: "llm", body: '[{"call_id":{"a":1},"record_file":"x"}]', stored: [{ call_id: { a: 1 }, record_file: "x" }], check: (r) => assert.ok(r.call_id === undefined || typeof r.call_id === "string") },
  { name: "unknown fields (nested, non-ASCII, empty key)", product: "llm", body: json([withUnknown]), stored: [withUnknown], check: (r) => { assert.equal(r.x_vendor_extension, undefined); assert.equal(r.caller, rep.caller); } },
  { name: "duplicate keys (the raw text keeps both; normalized fields follow the last, as JSON.parse does)", product: "llm", body: `[${dupKeys}]`, stored: [JSON.parse(dupKeys)], rawText: [dupKeys], check: (r) => { assert.equal(r.call_id, "dk^2"); assert.equal(r.recording_url, "http://b"); } },
  { name: "an object no type matches", product: "bot", body: '[{"hello":"world"}]', quarantine: [q("unknown_shape", '{"hello":"world"}')] },
  // --- size
  { name: "one message over 512 KiB beside a valid one", product: "llm", body: json([huge, rec]), stored: [rec], quarantine: [q("too_large", json(huge))] },
  { name: "one message just under 512 KiB of multi-byte text", product: "llm", body: json([nearHuge]), stored: [nearHuge] },
  { name: "a body of exactly MAX_BODY_BYTES", product: "llm", body: atLimit.body, stored: atLimit.msgs.map((m) => JSON.parse(m)), slow: true },
  {
    name: "a body one byte over MAX_BODY_BYTES", product: "llm", body: overLimit.body, status: 413, msg: undefined, slow: true,
    quarantine: [q("too_large", overLimit.body.slice(0, 64 * 1024), { size: LIMIT + 1, sha256: createHash("sha256").update(overLimit.body.slice(0, 64 * 1024)).digest("hex") })],
  },
  // --- content types do not matter
  { name: "JSON with Content-Type application/x-www-form-urlencoded", product: "llm", body: json([rep]), headers: { "content-type": "application/x-www-form-urlencoded" }, stored: [rep] },
  { name: "JSON with Content-Type multipart/form-data", product: "llm", body: json([rec]), headers: { "content-type": "multipart/form-data; boundary=xyz" }, stored: [rec] },
  { name: "JSON with Content-Type application/xml and a bogus charset", product: "bot", body: json(fixture("VoiceReportAiccs")), headers: { "content-type": "application/xml; charset=ebcdic" }, stored: fixture("VoiceReportAiccs") },
  // --- query injection in app and type: refused, nothing stored anywhere
  ...[
    "shop1'%20OR%20'1'%3D'1", "shop1%3BDROP%20TABLE%20receipts", "..%2Fdefault", "shop1%00", "shop1%2F..%2F..%2Fv1",
    "shop1%3Ftoken%3Dx", "%2e%2e", "shop1%0d%0aX-Injected:%201", "shop1/receipts", "shop%E2%80%8B1",
  ].map((app) => ({ name: `app injection ${app}`, product: "llm", path: `/icc/llm/${app}`, body: json([rep]), status: 404, refused: true })),
  ...[
    "VoiceReportAiccs' OR '1'='1", "VoiceReportAiccs\u0000", "'; DROP TABLE receipts; --", "", "voicereportaiccs",
    "VoiceReportAiccs,LlmSmartCall", "../LlmSmartCall", "VoiceReportAiccs ",
  ].map((type) => ({ name: `type injection ${JSON.stringify(type)}`, product: "bot", type, body: json(fixture("VoiceReportAiccs")), status: 400, msg: "unknown type", refused: true })),
];

test(`bad input corpus (${CASES.length} cases): documented answers, no 5xx or panic, nothing lost`, { timeout: 90_000 }, async (t) => {
  assert.ok(CASES.length >= 25);
  const w = await startWorker();
  t.after(() => w.dispose());
  const wrote = new Set();

  for (const [n, c] of CASES.entries()) {
    await t.test(c.name, { timeout: 20_000 }, async () => {
      const app = `bad${n}`;
      const address = `/icc/${c.product}/${app}`;
      let res;
      if (c.path) {
        res = await w.request("POST", `${c.path}?token=${encodeURIComponent(PUSH_TOKEN)}`, { body: c.body, headers: c.headers });
      } else {
        res = await w.push(c.product, app, c.body, { type: c.type, headers: c.headers });
      }
      const status = c.status ?? 200;
      assert.equal(res.status, status, `HTTP ${res.status} ${res.text.slice(0, 200)}`);
      assert.match(res.headers.get("content-type") ?? "", /application\/json/);
      assert.ok(res.json && typeof res.json.code === "number" && typeof res.json.msg === "string", `not {code,msg}: ${res.text.slice(0, 200)}`);
      if (status === 200) assert.deepEqual(res.json, SUCCESS);
      else assert.equal(res.json.code, status);
      if (c.msg) assert.equal(res.json.msg, c.msg);
      if (c.refused) return;
      wrote.add(app);

      // A body over the spool threshold is acked once stored as received and drained after: wait
      // (with a deadline) until the stream's spool is empty before reading.
      for (const deadline = Date.now() + 30_000; ; ) {
        const st = await w.api("GET", `/v1/streams/${app}/stats`);
        assert.equal(st.status, 200, st.text.slice(0, 200));
        if (!(st.json.streams[app]?.spool_pending > 0)) break;
        assert.ok(Date.now() < deadline, "the spool did not drain in 30 s");
        await new Promise((r) => setTimeout(r, 50));
      }

      // stored: exactly these raws, in order, schema-valid (fetchReceipts validates)
      const all = await w.allReceipts(app);
      assert.equal(all.length, (c.stored ?? []).length, `stored ${all.length}: ${JSON.stringify(all.map((r) => r.raw)).slice(0, 300)}`);
      (c.stored ?? []).forEach((raw, k) => assert.deepEqual(all[k].raw, raw, `receipt ${k} raw differs`));
      if (c.rawText) {
        const page = await w.api("GET", `/v1/streams/${app}/receipts`);
        for (const text of c.rawText) assert.ok(page.text.includes(`"raw":${text}`), `the page must carry the raw text exactly: ${page.text.slice(0, 400)}`);
      }
      if (c.check) c.check(all[0]);

      // quarantined: these items, in order, with their exact bytes
      const qr = await w.quarantine(app, { limit: 1000 });
      assert.equal(qr.status, 200, qr.text.slice(0, 200));
      const items = qr.json.items;
      const want = c.quarantine ?? [];
      assert.deepEqual(items.map((i) => i.reason), want.map((x) => x.reason), `quarantine: ${JSON.stringify(items).slice(0, 400)}`);
      items.forEach((item, k) => {
        const x = want[k];
        assert.equal(item.address, address);
        const got = typeof item.raw === "string" ? Buffer.from(item.raw, "utf8") : Buffer.from(item.raw_base64 ?? "", "base64");
        if (x.base64) assert.equal(typeof item.raw_base64, "string", "invalid UTF-8 must come back as raw_base64");
        else assert.equal(typeof item.raw, "string", "valid UTF-8 must come back as raw text");
        assert.ok(got.equals(x.bytes), `quarantined bytes differ (got ${got.length} bytes, want ${x.bytes.length})`);
        assert.equal(item.size, x.size ?? x.bytes.length);
        assert.equal(item.sha256, x.sha256 ?? createHash("sha256").update(x.bytes).digest("hex"));
      });

      // stats account for every piece
      const st = await w.stats(app);
      assert.equal(st.status, 200, st.text);
      const types = Object.values(st.json.streams[app].types);
      assert.equal(types.reduce((s, x) => s + x.stored, 0), all.length);
      if (status === 200) assert.equal(types.reduce((s, x) => s + x.quarantined, 0), items.length, st.text);
    });
  }

  await t.test("refused pushes created no stream; the worker is healthy; no panic logged", async () => {
    const listed = [];
    let after = "";
    for (let i = 0; i < 10; i++) {
      const res = await w.api("GET", `/v1/streams${after ? `?after=${after}` : ""}`);
      assert.equal(res.status, 200, res.text);
      listed.push(...res.json.streams);
      if (!res.json.next_after) break;
      after = res.json.next_after;
    }
    assert.deepEqual(listed.sort(), [...wrote].sort());
    assert.deepEqual((await w.request("GET", "/healthz")).json, { ok: true });
    const logs = w.logs();
    assert.ok(!/panicked|RuntimeError|unreachable/.test(logs), `the worker panicked:\n${logs.slice(0, 2000)}`);
    assert.ok(!logs.includes(PUSH_TOKEN), "a token was logged");
  });
});

test("query injection on the fetch API: parameters are data, never SQL", { timeout: 30_000 }, async () => {
  const w = await startWorker();
  try {
    const a = sampleWithCallId("LlmSmartCallReport", "inj-1^1");
    const b = sampleWithCallId("LlmSmartCallReport", "inj-2^1");
    const res = await w.push("llm", null, [a, b]);
    assert.deepEqual(res.json, SUCCESS);
    for (const callId of ["' OR '1'='1", "inj-1^1' OR 1=1 --", "%", "*", "inj-1^1\u0000"]) {
      const r = await w.fetchReceipts("default", { call_id: callId });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.receipts, [], `call_id ${JSON.stringify(callId)} matched something`);
    }
    assert.equal((await w.fetchReceipts("default", { call_id: "inj-1^1" })).json.receipts.length, 1);
    assertApiError(await w.fetchReceipts("default", { type: "LlmSmartCallReport') OR 1=1 --" }), 400, "bad_request");
    assertApiError(await w.fetchReceipts("default", { after: "0 OR 1=1" }), 400, "bad_request");
    assertApiError(await w.fetchReceipts("default", { limit: "1; DROP TABLE receipts" }), 400, "bad_request");
    assertApiError(await w.api("GET", "/v1/streams/default'%20OR%201%3D1--/receipts"), 404);
    assertApiError(await w.api("GET", "/v1/streams/..%2Fdefault/receipts"), 404);
    const c = await w.api("PUT", "/v1/streams/default/consumers/x'%3BDROP%20TABLE%20consumers", { body: { after: 0 } });
    assert.ok([400, 404].includes(c.status), c.text);
    assertApiError(await w.api("PUT", "/v1/streams/default/consumers/ok", { body: '{"after":"1 OR 1=1"}' }), 400);
    assertApiError(await w.quarantine("default", { after: "-1 UNION SELECT 1" }), 400);
    // everything is still there, unchanged
    const all = await w.allReceipts("default");
    assert.deepEqual(all.map((r) => r.raw), [a, b]);
  } finally {
    await w.dispose();
  }
});

// Numbers beyond double precision. The content hash (and, for a message without call id, the
// identity) is computed over canonical JSON in which integers keep all their digits
// (core/src/canonical_json.rs), so two contents that differ only there never collapse into one.
// SPEC: "A repeated id with different content is quarantined as conflicting_duplicate … never
// silently dropped"; a message without call id must not vanish.
test("different content that differs only in an integer beyond 2^53 is a conflict, never a silent duplicate", { timeout: 30_000 }, async () => {
  const w = await startWorker({ KV_FAST_PATH: "false" });
  try {
    const first = '[{"call_id":"big^1","record_file":"http://x","task_id":9007199254740993}]';
    const second = '[{"call_id":"big^1","record_file":"http://x","task_id":9007199254740992}]';
    assert.deepEqual((await w.push("llm", null, first)).json, SUCCESS);
    assert.deepEqual((await w.push("llm", null, second)).json, SUCCESS);
    const all = await w.allReceipts("default");
    assert.equal(all.length, 1);
    const items = (await w.quarantine("default")).json.items;
    assert.deepEqual(items.map((i) => [i.reason, i.raw]), [["conflicting_duplicate", second.slice(1, -1)]],
      "the second content was dropped as a duplicate");
  } finally {
    await w.dispose();
  }
});

test("two messages without call id that differ only in an integer beyond 2^53 are both stored", { timeout: 30_000 }, async () => {
  const w = await startWorker({ KV_FAST_PATH: "false" });
  try {
    const a = '{"status_msg":"no call id","task_id":12345678901234567891}';
    const b = '{"status_msg":"no call id","task_id":12345678901234567892}';
    assert.deepEqual((await w.push("llm", null, `[${a}]`)).json, SUCCESS);
    assert.deepEqual((await w.push("llm", null, `[${b}]`)).json, SUCCESS);
    const page = await w.fetchReceipts("default");
    assert.equal(page.status, 200, page.text);
    assert.equal(page.json.receipts.length, 2, page.text);
    const stored = [a, b].filter((m) => page.text.includes(`"raw":${m}`));
    assert.deepEqual(stored, [a, b], `not stored as receipts: ${[a, b].filter((m) => !stored.includes(m)).join(" ")}`);
    const q = await w.quarantine("default");
    assert.equal(q.status, 200, q.text);
    assert.deepEqual(q.json.items, [], "neither is quarantined");
  } finally {
    await w.dispose();
  }
});
