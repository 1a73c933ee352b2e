// A failing or slow inbox never yields success: the push answers 503 {"code":503,"msg":…}
// inside ICC's 700 ms (ACK_DEADLINE_MS 500 + slack), so ICC retries. The fault is injected by
// test configuration only: INBOX is bound to an inline JavaScript Durable Object in a second
// Miniflare worker (see harness.mjs, startFaultyWorker).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startFaultyWorker, fixture, fixtureText, assertIccAnswer, sleep } from "./harness.mjs";

const T = { timeout: 30_000 };
const BUDGET_MS = 700;
const MSGS = ["inbox_timeout", "inbox_error", "inbox_full"];

// Timings are measured from the test side: each worker is warmed first (one untimed push through
// the push path and the fault inbox), so the limits measure answering, not starting up.
async function warm(w, app = null) {
  assertIccAnswer(await w.push("llm", app, "warm-up, not json"), 503, 503);
}

const MODES = {
  throw: ["inbox_error", "inbox_timeout"],
  500: ["inbox_error", "inbox_full", "inbox_timeout"],
  slow: ["inbox_timeout"],
};

for (const [mode, allowed] of Object.entries(MODES)) {
  test(`inbox ${mode === "500" ? "answering 500" : mode === "slow" ? "sleeping 2 s" : "throwing"} → 503 within ${BUDGET_MS} ms, never 200`, T, async () => {
    const w = await startFaultyWorker(mode);
    try {
      await warm(w);
      const bodies = [
        ["llm", null, fixtureText("LlmSmartCallReport")],
        ["llm", null, fixtureText("LlmSmartCallReport")], // a retry of the same bytes: no KV shortcut to success
        ["bot", null, JSON.stringify(fixture("RobotCallReportAiccs"))],
        ["agent", "shop1", fixtureText("AlicomAgentCallNote")],
        ["llm", null, "this is not json"], // even a quarantine-only body needs the inbox
      ];
      for (const [product, app, body] of bodies) {
        const res = await w.push(product, app, body);
        assertIccAnswer(res, 503, 503);
        assert.ok(MSGS.includes(res.json.msg), `msg ${res.json.msg}`);
        assert.ok(allowed.includes(res.json.msg), `mode ${mode}: msg ${res.json.msg}`);
        assert.ok(res.ms < BUDGET_MS, `answered after ${Math.round(res.ms)} ms`);
      }
    } finally {
      await w.dispose();
    }
  });
}

test("slow inbox: the deadline counts from arrival; many concurrent pushes all 503 in time", T, async () => {
  const w = await startFaultyWorker("slow");
  try {
    await warm(w);
    const t0 = performance.now();
    const all = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        w.push("bot", null, [{ ...fixture("VoiceReportAiccs")[0], call_id: `slow-${i}^1` }])),
    );
    for (const res of all) {
      assertIccAnswer(res, 503, 503, "inbox_timeout");
      assert.ok(res.ms < BUDGET_MS, `answered after ${Math.round(res.ms)} ms`);
    }
    assert.ok(performance.now() - t0 < BUDGET_MS + 200, `all answered after ${Math.round(performance.now() - t0)} ms`);
  } finally {
    await w.dispose();
  }
});

test("a shorter ACK_DEADLINE_MS is honoured", T, async () => {
  const w = await startFaultyWorker("slow", { ACK_DEADLINE_MS: "150" });
  try {
    await warm(w);
    const res = await w.push("llm", null, fixtureText("LlmSmartCallReport"));
    assertIccAnswer(res, 503, 503, "inbox_timeout");
    // at the 150 ms deadline, not before it and well before the default 500 ms one
    assert.ok(res.ms >= 140 && res.ms < 450, `answered after ${Math.round(res.ms)} ms`);
  } finally {
    await w.dispose();
  }
});

test("a late commit after a 503 is absorbed by dedup when ICC retries", T, async () => {
  const w = await startFaultyWorker("late", { KV_FAST_PATH: "false" });
  try {
    await warm(w, "warmup"); // another stream: the first commit of "default" is still the held one
    const body = fixtureText("AlicomAgentCallReport");
    const first = await w.push("agent", null, body);
    assertIccAnswer(first, 503, 503, "inbox_timeout");
    assert.ok(first.ms < BUDGET_MS, `answered after ${Math.round(first.ms)} ms`);
    // the held request commits after the 503: wait until it has landed (reads are forwarded at once)
    const end = Date.now() + 10_000;
    while ((await w.allReceipts("default")).length === 0) {
      assert.ok(Date.now() < end, "the late commit did not land within 10 s");
      await sleep(50);
    }
    const retry = await w.push("agent", null, body);
    assert.equal(retry.status, 200, retry.text);
    assert.deepEqual(retry.json, { code: 0, msg: "Success" });
    const all = await w.allReceipts("default");
    assert.equal(all.length, 1, "stored exactly once");
    assert.deepEqual(all[0].raw, fixture("AlicomAgentCallReport")[0]);
    const st = await w.stats("default");
    assert.equal(st.json.streams.default.types.AlicomAgentCallReport.stored, 1, st.text);
    assert.equal(st.json.streams.default.types.AlicomAgentCallReport.duplicate, 1, st.text);
  } finally {
    await w.dispose();
  }
});
