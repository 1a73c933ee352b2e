// Normalization beyond the documented samples, by SPEC.md's rules: empty times omitted,
// duration as number or string, hangup in Chinese and English, numeric codes as strings,
// robot direction 1, transcript kept, VENDOR_UTC_OFFSET honoured, big numbers kept as text.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startWorker, fixture, assertSuccess, expectedId, stable } from "./harness.mjs";

const T = { timeout: 30_000 };
let w;
afterEach(async () => {
  await w?.dispose();
  w = undefined;
});

async function one(stream = "default") {
  const all = await w.allReceipts(stream);
  assert.equal(all.length, 1);
  return all[0];
}

test("a call that never connected: empty times omitted, duration 0 kept, machine hang-up", T, async () => {
  w = await startWorker();
  const msg = {
    call_id: "nc-1^1", start_time: "", end_time: "", duration: 0, status_code: "200005",
    status_msg: "无人接听", out_id: "", caller: "0201", callee: "1380", hangup_direction: "机器",
    toll_type: "LOCAL", originate_time: "2025-01-06 17:33:05", ring_time: "", smart_status_code: "NO_ANSWER",
  };
  assertSuccess(await w.push("llm", null, [msg]));
  const r = await one();
  const { raw, ...rest } = stable(r);
  assert.deepEqual(raw, msg);
  assert.deepEqual(rest, {
    schema: 1,
    id: expectedId("LlmSmartCallReport", ["nc-1^1"]),
    stream: "default",
    product: "llm",
    type: "LlmSmartCallReport",
    source: "push",
    call_id: "nc-1^1",
    status_code: "200005",
    status: "NO_ANSWER",
    status_msg: "无人接听",
    caller: "0201",
    callee: "1380",
    originated_at: "2025-01-06T17:33:05+08:00",
    duration_s: 0,
    hangup_by: "machine",
  });
});

test("English hang-up names, string durations, numeric status codes", T, async () => {
  w = await startWorker();
  const a = { ...fixture("AlicomAgentCallReport")[0], callId: "en-1^1", hangupDirection: "Machine", duration: "330", statusCode: 200010 };
  const b = { ...fixture("VoiceReportAiccs")[0], call_id: "en-2^2", hangup_direction: "User", duration: 12 };
  assertSuccess(await w.push("agent", null, [a]));
  assertSuccess(await w.push("bot", null, [b]));
  const [ra, rb] = await w.allReceipts("default");
  assert.equal(ra.hangup_by, "machine");
  assert.equal(ra.duration_s, 330);
  assert.equal(ra.status_code, "200010");
  assert.equal(rb.hangup_by, "user");
  assert.equal(rb.duration_s, 12);
});

test("an out-of-range duration is omitted (raw keeps it), never saturated", T, async () => {
  w = await startWorker();
  const base = fixture("VoiceReportAiccs")[0];
  const body = `[${JSON.stringify({ ...base, call_id: "dur-1^1", duration: 7 }).replace('"duration":7', '"duration":1e308')},`
    + `${JSON.stringify({ ...base, call_id: "dur-2^2", duration: "18446744073709551616" })},`
    + `${JSON.stringify({ ...base, call_id: "dur-3^3", duration: -5 })},`
    + `${JSON.stringify({ ...base, call_id: "dur-4^4", duration: "9007199254740991" })}]`;
  assert.match(body, /"duration":1e308/);
  assertSuccess(await w.push("bot", null, body));
  const rs = await w.allReceipts("default");
  assert.equal(rs.length, 4);
  for (const r of rs.slice(0, 3)) {
    assert.equal("duration_s" in r, false, `${r.call_id}: duration_s ${r.duration_s}`);
  }
  assert.equal(rs[0].raw.duration, 1e308, "raw keeps the pushed value");
  assert.equal(rs[1].raw.duration, "18446744073709551616");
  assert.equal(rs[2].raw.duration, -5);
  assert.equal(rs[3].duration_s, 9007199254740991, "the largest exact integer is kept");
});

test("robot: direction 1 is the user; code as a string; a non-empty transcript is kept on notes", T, async () => {
  w = await startWorker();
  const robot = fixture("RobotCallReportAiccs")[0];
  const r1 = { ...robot, callId: "rb-1^1", data: { ...robot.data, info: { ...robot.data.info, direction: 1, code: "200003" } } };
  const transcript = '[{"content":"你好","role":"assistant","transactionId":"t1"}]';
  const note = { ...fixture("AlicomAgentCallNote")[0], callId: "nt-1^1", conversationRecord: transcript };
  assertSuccess(await w.push("bot", null, [r1]));
  assertSuccess(await w.push("agent", null, [note]));
  const [rr, rn] = await w.allReceipts("default");
  assert.equal(rr.hangup_by, "user");
  assert.equal(rr.status_code, "200003");
  assert.equal(rr.id, expectedId("RobotCallReportAiccs", ["rb-1^1", "finish"]));
  assert.equal(rn.transcript, transcript);
  assert.equal(rn.intent, "A");
});

test("VENDOR_UTC_OFFSET is the offset of vendor strings and of epoch-ms renderings", T, async () => {
  w = await startWorker({ VENDOR_UTC_OFFSET: "-05:00" });
  assertSuccess(await w.push("bot", null, fixture("RobotCallReportAiccs")));
  assertSuccess(await w.push("bot", null, fixture("VoiceCallReportAiccs")));
  const [robot, vc] = await w.allReceipts("default");
  // 1640759026000 ms = 2021-12-29T06:23:46Z = 01:23:46 at -05:00
  assert.equal(robot.started_at, "2021-12-29T01:23:46-05:00");
  assert.equal(robot.originated_at, "2021-12-29T01:23:37-05:00");
  // vendor strings are read in that offset, not converted
  assert.equal(vc.status_at, "2021-04-28T09:55:02-05:00");
});

test("identity numbers are compared by their literal text, never through a float", T, async () => {
  w = await startWorker();
  // 2^64+ digits: a float would round it
  const body = '[{"callId":123456789012345678901,"duration":125,"recordFile":"http://r/1","startTime":"2025-05-22 12:29:20"}]';
  assertSuccess(await w.push("agent", null, body));
  const res = await w.fetchReceipts("default");
  assert.equal(res.status, 200);
  const r = res.json.receipts[0];
  assert.equal(r.type, "AlicomAgentCallRecord");
  assert.equal(r.id, expectedId("AlicomAgentCallRecord", ["123456789012345678901"]));
  assert.equal(r.call_id, "123456789012345678901");
  assert.ok(res.text.includes('"callId":123456789012345678901'), "raw must keep the number as pushed");
  // the same call id as a string is the same identity (scalars compare as text) → duplicate/conflict, not a new receipt
  assertSuccess(await w.push("agent", null, '[{"callId":"123456789012345678901","duration":125,"recordFile":"http://r/1","startTime":"2025-05-22 12:29:20"}]'));
  assert.equal((await w.allReceipts("default")).length, 1);
});

test("no call id: identity is the canonical JSON, so reordering is a duplicate and other content a new receipt", T, async () => {
  w = await startWorker();
  const vc = { status_code: "200101", status_time: "2021-04-28 09:55:02", out_id: "o-1" };
  assertSuccess(await w.push("bot", null, [vc]));
  assertSuccess(await w.push("bot", null, '[ {"out_id":"o-1", "status_time":"2021-04-28 09:55:02", "status_code":"200101"} ]'));
  assertSuccess(await w.push("bot", null, [{ ...vc, call_id: "" }]));
  assertSuccess(await w.push("bot", null, [{ ...vc, status_code: "200201" }]));
  const all = await w.allReceipts("default");
  assert.equal(all.length, 3, JSON.stringify(all.map((r) => r.raw)));
  assert.ok(all.every((r) => r.type === "VoiceCallReportAiccs" && r.call_id === undefined));
  assert.equal(new Set(all.map((r) => r.id)).size, 3);
  const q = await w.quarantine("default");
  assert.deepEqual(q.json.items.filter((i) => i.reason === "conflicting_duplicate"), []);
});
