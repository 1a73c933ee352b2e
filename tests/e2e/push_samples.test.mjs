// Each of the 9 documented sample pushes, posted to its product's general address, is answered
// {"code":0,"msg":"Success"} and read back normalized exactly as SPEC.md's table says.
// Expected values are written by hand from the contract, not computed by the worker's rules.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startWorker, fixture, expectedId, assertSuccess, stable, productOf, RFC3339_UTC, ALL_TYPES,
} from "./harness.mjs";

const T = { timeout: 30_000 };

// The normalized receipt of each sample, minus seq/received_at (checked separately).
const EXPECTED = {
  LlmSmartCallReport: {
    schema: 1,
    id: expectedId("LlmSmartCallReport", ["147797******^134543******"]),
    stream: "default",
    product: "llm",
    type: "LlmSmartCallReport",
    source: "push",
    call_id: "147797******^134543******",
    out_id: "65178442",
    status_code: "200000",
    status: "ANSWERED",
    status_msg: "用户听完语音",
    caller: "020*****843",
    callee: "15*****0614",
    originated_at: "2025-01-06T17:33:05+08:00",
    rang_at: "2025-01-06T17:33:15+08:00",
    started_at: "2025-01-06T17:33:37+08:00",
    ended_at: "2025-01-06T17:36:45+08:00",
    duration_s: 189,
    hangup_by: "user",
  },
  LlmSmartCallRecord: {
    schema: 1,
    id: expectedId("LlmSmartCallRecord", ["1480******53^1348******53"]),
    stream: "default",
    product: "llm",
    type: "LlmSmartCallRecord",
    source: "push",
    call_id: "1480******53^1348******53",
    out_id: "outid_******",
    status_code: "200003",
    started_at: "2025-01-15T10:26:58+08:00",
    ended_at: "2025-01-15T10:27:54+08:00",
    duration_s: 50,
    recording_url: "http://alicom-fc-record-biz.cn-***********************",
  },
  AlicomAgentCallReport: {
    schema: 1,
    id: expectedId("AlicomAgentCallReport", ["10000161****^1000018****"]),
    stream: "default",
    product: "agent",
    type: "AlicomAgentCallReport",
    source: "push",
    call_id: "10000161****^1000018****",
    out_id: "123456",
    task_id: "1181**************",
    batch_id: "B202******",
    detail_id: "9662*************",
    status_code: "200010",
    status: "ANSWERED",
    status_msg: "Call ended normally",
    caller: "05710000*****",
    callee: "139********",
    originated_at: "2025-06-01T09:59:45+08:00",
    rang_at: "2025-06-01T09:59:50+08:00",
    started_at: "2025-06-01T10:00:00+08:00",
    ended_at: "2025-06-01T10:05:30+08:00",
    duration_s: 330,
    hangup_by: "user",
  },
  AlicomAgentCallRecord: {
    schema: 1,
    id: expectedId("AlicomAgentCallRecord", ["10000161****^1000018****"]),
    stream: "default",
    product: "agent",
    type: "AlicomAgentCallRecord",
    source: "push",
    call_id: "10000161****^1000018****",
    out_id: "123456",
    task_id: "1181**************",
    batch_id: "B202******",
    detail_id: "9662*************",
    started_at: "2025-05-22T12:29:20+08:00",
    ended_at: "2025-05-22T12:31:31+08:00",
    duration_s: 125,
    recording_url: "http://alicom-fc-record-biz.cn-hangzhou.oss.aliyuncs.com/**********",
  },
  AlicomAgentCallNote: {
    schema: 1,
    // identity: callId + call_times (as text)
    id: expectedId("AlicomAgentCallNote", ["10000161****^1000018****", "1"]),
    stream: "default",
    product: "agent",
    type: "AlicomAgentCallNote",
    source: "push",
    call_id: "10000161****^1000018****",
    out_id: "123456",
    task_id: "1181**************",
    batch_id: "B202******",
    detail_id: "9662*************",
    intent: "A",
    tags: { "Interested Vehicle Model": "xx Vehicle Model", "Add WeChat": ["Yes"] },
    // conversationRecord is "" → transcript omitted; realCaller is not `caller` (no mapping in SPEC)
  },
  VoiceReportAiccs: {
    schema: 1,
    id: expectedId("VoiceReportAiccs", ["122628733198^10942206****"]),
    stream: "default",
    product: "bot",
    type: "VoiceReportAiccs",
    source: "push",
    call_id: "122628733198^10942206****",
    out_id: "123456",
    status_code: "200003",
    status_msg: "执行完成",
    caller: "20200900****",
    callee: "130****0000",
    originated_at: "2021-04-28T10:02:34+08:00",
    rang_at: "2021-04-28T10:02:40+08:00",
    started_at: "2021-04-28T10:03:40+08:00", // b_start_time
    ended_at: "2021-04-28T10:03:40+08:00",
    duration_s: 10, // pushed as the string "10"
  },
  VoiceCallReportAiccs: {
    schema: 1,
    // identity: call_id, status_code, status_time, dtmf (missing → "")
    id: expectedId("VoiceCallReportAiccs", ["100001616500^10000187****", "200101", "2021-04-28 09:55:02", ""]),
    stream: "default",
    product: "bot",
    type: "VoiceCallReportAiccs",
    source: "push",
    call_id: "100001616500^10000187****",
    out_id: "PROD#2021042810271227129999192500610008S#new#MYBK****#",
    status_code: "200101",
    status_at: "2021-04-28T09:55:02+08:00",
  },
  VoiceRecordReportAiccs: {
    schema: 1,
    id: expectedId("VoiceRecordReportAiccs", ["100001616500^1000018****"]),
    stream: "default",
    product: "bot",
    type: "VoiceRecordReportAiccs",
    source: "push",
    call_id: "100001616500^1000018****",
    out_id: "123456",
    status_code: "200010",
    started_at: "2017-06-01T10:00:00+08:00",
    ended_at: "2017-06-01T10:03:00+08:00",
    duration_s: 10,
    recording_url: "http://xxxx",
  },
  RobotCallReportAiccs: {
    schema: 1,
    // identity: callId + top-level type
    id: expectedId("RobotCallReportAiccs", ["1264306***^113219835***", "finish"]),
    stream: "default",
    product: "bot",
    type: "RobotCallReportAiccs",
    source: "push",
    call_id: "1264306***^113219835***",
    status_code: "200000", // data.info.code 200000 (a number) as a string
    caller: "05710000****", // callingNo
    callee: "1500000****", // calledNo
    originated_at: "2021-12-29T14:23:37+08:00", // startTime 1640759017000
    rang_at: "2021-12-29T14:23:37+08:00", // ringTime 1640759017000
    started_at: "2021-12-29T14:23:46+08:00", // answerTime 1640759026000
    ended_at: "2021-12-29T14:23:54+08:00", // endTime 1640759034000
    duration_s: 9,
    hangup_by: "machine", // direction 0 = robot hung up
    intents: ["intention1", "intention2"],
    tags: { tags: ["tag1", "tag2"] },
  },
};

let w;
const pushedAt = {};
before(async () => {
  w = await startWorker();
});
after(async () => {
  await w?.dispose();
});

test("every sample push is answered {code:0,msg:Success}", T, async () => {
  for (const type of ALL_TYPES) {
    const t0 = Date.now();
    const res = await w.push(productOf(type), null, fixture(type));
    assertSuccess(res);
    assert.ok(res.ms < 700, `${type}: answered after ${Math.round(res.ms)} ms`);
    pushedAt[type] = [t0, Date.now()];
  }
});

test("the stream holds exactly the 9 samples, in push order, with increasing seq", T, async () => {
  const res = await w.fetchReceipts("default");
  assert.equal(res.status, 200, res.text);
  const { receipts } = res.json;
  assert.deepEqual(receipts.map((r) => r.type), ALL_TYPES);
  for (let i = 1; i < receipts.length; i++) assert.ok(receipts[i].seq > receipts[i - 1].seq, "seq must increase");
  assert.ok(receipts[0].seq >= 1);
  assert.equal(res.json.head_seq, receipts.at(-1).seq);
  assert.equal(res.json.next_after, receipts.at(-1).seq);
  assert.equal(res.json.has_more, false);
  assert.equal(typeof res.json.oldest_seq, "number");
  assert.ok(res.json.oldest_seq <= receipts[0].seq);
});

for (const type of ALL_TYPES) {
  test(`${type} is normalized as SPEC.md says`, T, async () => {
    const res = await w.fetchReceipts("default", { type });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.receipts.length, 1, res.text);
    const r = res.json.receipts[0];
    assert.deepEqual(r.raw, fixture(type)[0], "raw must be the message exactly as pushed");
    assert.deepEqual(stable({ ...r, raw: undefined }), { ...EXPECTED[type], raw: undefined });
    assert.match(r.received_at, RFC3339_UTC);
    const at = Date.parse(r.received_at);
    assert.ok(at >= pushedAt[type][0] - 2000 && at <= pushedAt[type][1] + 2000, `received_at ${r.received_at} not at push time`);
    assert.ok(Number.isInteger(r.seq) && r.seq >= 1);
  });
}
