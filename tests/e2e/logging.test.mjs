// SPEC "Logging": logs carry stream, type, counts, seq ranges, id hashes, error codes, timings;
// never tokens, query strings, phone numbers, transcripts, recording URLs or raw bodies.
// The worker's console output is captured from the runtime's stdout/stderr (harness w.logs()).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  startWorker, startFaultyWorker, fixture, assertSuccess, assertIccAnswer, sleep, PUSH_TOKEN, FETCH_TOKEN, ALL_TYPES, productOf,
} from "./harness.mjs";

const T = { timeout: 30_000 };

// Values that must never appear in logs: secrets, phone numbers, transcript, recording URLs, body text.
const SECRET_TRANSCRIPT = "TRANSCRIPT-SECRET-我想买车";
const FORBIDDEN = [
  PUSH_TOKEN,
  FETCH_TOKEN,
  "token=",
  "020*****843", "15*****0614", // LlmSmartCallReport caller/callee
  "05710000*****", "139********", // AlicomAgentCallReport caller/callee
  "05710000****", "1500000****", // robot callingNo/calledNo
  "20200900****", "130****0000", // VoiceReportAiccs caller/callee
  "http://alicom-fc-record-biz", "http://xxxx", // recording URLs
  SECRET_TRANSCRIPT,
  "用户听完语音", // a status_msg: part of a raw body
  "NOT-JSON-BODY-MARKER",
];

/** The captured logs once every pattern matches them; fails after 10 s. */
async function logsMatching(w, patterns) {
  const end = Date.now() + 10_000;
  for (;;) {
    const logs = w.logs();
    const missing = patterns.filter((p) => !p.test(logs));
    if (missing.length === 0) return logs;
    assert.ok(Date.now() < end, `logs lack ${missing.join(", ")}:\n${logs.slice(0, 4000)}`);
    await sleep(50);
  }
}

function assertClean(logs) {
  for (const f of FORBIDDEN) assert.ok(!logs.includes(f), `logs contain ${JSON.stringify(f)}:\n${logs.slice(0, 4000)}`);
}

test("pushes, reads, quarantine and failures log no secrets, numbers, URLs, transcripts or bodies", T, async () => {
  const w = await startWorker();
  try {
    for (const type of ALL_TYPES) assertSuccess(await w.push(productOf(type), null, fixture(type)));
    const note = { ...fixture("AlicomAgentCallNote")[0], callId: "n-1^1", conversationRecord: SECRET_TRANSCRIPT };
    assertSuccess(await w.push("agent", "shop1", [note]));
    assertSuccess(await w.push("llm", null, "NOT-JSON-BODY-MARKER 020*****843"));
    assertSuccess(await w.push("llm", null, [{ ...fixture("LlmSmartCallReport")[0], duration: 1 }])); // conflict
    await w.push("llm", null, fixture("LlmSmartCallReport"), { token: PUSH_TOKEN.slice(1) + "x" }); // 401
    await w.push("llm", null, fixture("LlmSmartCallReport"), { type: "Nope" }); // 400
    await w.fetchReceipts("default", { call_id: "147797******^134543******" });
    await w.fetchReceipts("default", {}, { bearer: PUSH_TOKEN }); // 401
    await w.quarantine("default");
    await w.stats();
    // The capture works: the commit lines of these pushes have arrived, up to the last one that
    // logs (the conflict; 401, 400 and reads log nothing). Stdio arrives asynchronously.
    const logs = await logsMatching(w, [
      /push stream=default rows=1 stored=1 /, /push stream=shop1 rows=1 stored=1 /, /push stream=default rows=1 stored=0 duplicate=0 conflict=1 /,
    ]);
    assertClean(logs);
  } finally {
    await w.dispose();
  }
});

test("inbox failures log error codes, not bodies or tokens", T, async () => {
  const w = await startFaultyWorker("throw");
  try {
    assertIccAnswer(await w.push("llm", null, fixture("LlmSmartCallReport")), 503, 503);
    assertIccAnswer(await w.push("bot", null, fixture("RobotCallReportAiccs")), 503, 503);
    // The capture works on this path too: both refusals are logged with their error code.
    const refusal = /push stream=default answer=503 inbox_\w+ rows=1/g;
    const logs = await logsMatching(w, [{ toString: () => `two ${refusal}`, test: (l) => (l.match(refusal) ?? []).length === 2 }]);
    assertClean(logs);
  } finally {
    await w.dispose();
  }
});
