// Sparse messages (SPEC.md, "Sparse messages"): ICC omits keys, so a message carrying only some
// of its type's documented keys is typed by which keys it carries. A message whose keys fit
// exactly one type of its product is that type; identifiers (call id, out id, task/batch/detail
// ids) decide nothing; a tie goes to the product's report type when a status field is present;
// keys no type of the product documents are ignored. What fits no type, or stays ambiguous, is
// quarantined as unknown_shape. The expected types below are worked out by hand from ICC's
// documented key sets.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startWorker, assertSuccess, expectedId } from "./harness.mjs";

const T = { timeout: 30_000 };
let w;
afterEach(async () => {
  await w?.dispose();
  w = undefined;
});

// One sparse message per type: [product, type, message, why].
const SPARSE = [
  ["llm", "LlmSmartCallReport", { call_id: "sp-1^1", status_code: "200000", end_time: "2025-01-06 17:36:45" },
    "both llm types document these keys; status_code breaks the tie for the report"],
  ["llm", "LlmSmartCallRecord", { call_id: "sp-2^2", task_id: "t1", record_file: "http://rec.example/2" },
    "record_file is the recording's own key; task_id decides nothing"],
  ["agent", "AlicomAgentCallReport", { callId: "sp-3^3", statusMsg: "", bStartTime: "", bDuration: 0 },
    "keys only the call report documents, none the inference table reads"],
  ["agent", "AlicomAgentCallRecord", { callId: "sp-4^4", batchId: "b1", recordFile: "http://rec.example/4" },
    "recordFile is the recording's own key"],
  ["agent", "AlicomAgentCallNote", { callId: "sp-5^5", taskId: "t5", call_times: 2 },
    "call_times is the note's own key"],
  ["bot", "VoiceReportAiccs", { call_id: "sp-6^6", status_code: "200000", duration: "12" },
    "report and recording document these keys; status_code breaks the tie for the report"],
  ["bot", "VoiceCallReportAiccs", { call_id: "sp-7^7", status_time: "2021-04-28 09:55:02", dtmf: "" },
    "status_time is the call-status event's own key"],
  ["bot", "VoiceRecordReportAiccs", { call_id: "sp-8^8", record_begin_time: "2017-06-01 10:00:00", end_time: "" },
    "record_begin_time is the recording's own key"],
  ["bot", "RobotCallReportAiccs", { callId: "sp-9^9", robotId: "1000003", type: "finish" },
    "robotId and type are the robot report's own keys (no data)"],
];

test("a sparse message of each of the 9 types is stored with its type, at the general and an app address", T, async () => {
  w = await startWorker();
  for (const [app, stream] of [[null, "default"], ["shop7", "shop7"]]) {
    for (const [product, , msg] of SPARSE) assertSuccess(await w.push(product, app, [msg]));
    const all = await w.allReceipts(stream);
    assert.deepEqual(
      all.map((r) => [r.product, r.type, r.raw]),
      SPARSE.map(([product, type, msg]) => [product, type, msg]),
    );
    for (const r of all) assert.equal(r.stream, stream);
    const q = await w.quarantine(stream);
    assert.deepEqual(q.json?.items ?? [], [], q.text);
  }
});

test("sparse messages are normalized and identified like any other of their type", T, async () => {
  w = await startWorker();
  const byType = Object.fromEntries(SPARSE.map(([product, type, msg]) => [type, { product, msg }]));
  for (const { product, msg } of Object.values(byType)) assertSuccess(await w.push(product, null, [msg]));
  const all = Object.fromEntries((await w.allReceipts("default")).map((r) => [r.type, r]));
  assert.equal(Object.keys(all).length, 9);

  const rep = all.LlmSmartCallReport;
  assert.equal(rep.id, expectedId("LlmSmartCallReport", ["sp-1^1"]));
  assert.equal(rep.call_id, "sp-1^1");
  assert.equal(rep.status_code, "200000");
  assert.equal(rep.ended_at, "2025-01-06T17:36:45+08:00");
  assert.equal(rep.started_at, undefined);

  const rec = all.LlmSmartCallRecord;
  assert.equal(rec.id, expectedId("LlmSmartCallRecord", ["sp-2^2"]));
  assert.equal(rec.recording_url, "http://rec.example/2");
  assert.equal(rec.task_id, "t1");

  assert.equal(all.AlicomAgentCallNote.id, expectedId("AlicomAgentCallNote", ["sp-5^5", "2"]));
  assert.equal(all.AlicomAgentCallRecord.recording_url, "http://rec.example/4");

  const voice = all.VoiceReportAiccs;
  assert.equal(voice.id, expectedId("VoiceReportAiccs", ["sp-6^6"]));
  assert.equal(voice.duration_s, 12);
  assert.equal(voice.status_code, "200000");

  assert.equal(all.VoiceCallReportAiccs.status_at, "2021-04-28T09:55:02+08:00");
  assert.equal(all.RobotCallReportAiccs.call_id, "sp-9^9");
});

test("messages that fit no type, or stay ambiguous, are quarantined as unknown_shape; siblings are stored", T, async () => {
  w = await startWorker();
  const cases = [
    // report and recording both document duration and end_time; no status field
    ["bot", { call_id: "amb-1^1", duration: "7", end_time: "" }],
    // report and call-status event both document dtmf; no status field
    ["bot", { call_id: "amb-2^2", dtmf: "1" }],
    // report and note both document realCaller; no status field
    ["agent", { callId: "amb-3^3", realCaller: "0571" }],
    // keys of the report (bStartTime) and the note (call_times) together fit neither
    ["agent", { callId: "none-4^4", bStartTime: "", call_times: 1 }],
    // identifiers alone decide nothing
    ["llm", { call_id: "ids-5^5", out_id: "o5", task_id: "t5" }],
    // keys no llm type documents are ignored: what is left is an identifier
    ["llm", { call_id: "other-6^6", recordFile: "http://rec.example/6", statusCode: "200000" }],
  ];
  const good = { call_id: "good^1", record_begin_time: "" };
  for (const [product, msg] of cases) {
    assertSuccess(await w.push(product, null, product === "bot" ? [msg, good] : [msg]));
  }
  const all = await w.allReceipts("default");
  assert.deepEqual(all.map((r) => [r.type, r.call_id]), [["VoiceRecordReportAiccs", "good^1"]]);
  const q = await w.quarantine("default");
  assert.equal(q.status, 200, q.text);
  assert.deepEqual(
    q.json.items.map((i) => [i.reason, i.address, JSON.parse(i.raw)]),
    cases.map(([product, msg]) => ["unknown_shape", `/icc/${product}`, msg]),
  );
});

test("the inference table stays first and a pinned type still wins", T, async () => {
  w = await startWorker();
  // record_file beside report keys: the table's first llm row makes it a recording, as before.
  const mixed = { call_id: "mix^1", record_file: "http://rec.example/m", caller: "0201", status_msg: "" };
  assertSuccess(await w.push("llm", null, [mixed]));
  // An ambiguous message is stored when its type is pinned.
  const amb = { call_id: "pin^1", duration: "7" };
  assertSuccess(await w.push("bot", null, [amb], { type: "VoiceRecordReportAiccs" }));
  const all = await w.allReceipts("default");
  assert.deepEqual(all.map((r) => [r.type, r.call_id]), [
    ["LlmSmartCallRecord", "mix^1"],
    ["VoiceRecordReportAiccs", "pin^1"],
  ]);
});
