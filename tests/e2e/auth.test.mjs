// Authentication and fail-closed configuration: push token in the URL, bearer fetch token,
// neither opens the other's door, weak or missing secrets answer 500 / healthz 503.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import {
  startWorker, fixture, assertSuccess, assertIccAnswer, assertApiError, assertStreamEmpty,
  PUSH_TOKEN, FETCH_TOKEN, UNAUTHORIZED,
} from "./harness.mjs";

const T = { timeout: 30_000 };
const body = fixture("LlmSmartCallReport");

test("push token", T, async (t) => {
  const w = await startWorker();
  t.after(() => w.dispose());

  await t.test("missing token → 401 {code:401,msg:unauthorized}, nothing stored", async () => {
    const res = await w.push("llm", null, body, { token: null });
    assert.equal(res.status, 401);
    assert.deepEqual(res.json, UNAUTHORIZED);
    await assertStreamEmpty(w, "default");
  });

  await t.test("wrong token (same length, one char off) → 401, nothing stored", async () => {
    const wrong = PUSH_TOKEN.slice(0, -1) + (PUSH_TOKEN.endsWith("p") ? "q" : "p");
    const res = await w.push("llm", null, body, { token: wrong });
    assert.equal(res.status, 401);
    assert.deepEqual(res.json, UNAUTHORIZED);
    const res2 = await w.push("llm", "shop1", body, { token: PUSH_TOKEN + "x" });
    assert.deepEqual([res2.status, res2.json], [401, UNAUTHORIZED]);
    const res3 = await w.push("llm", null, body, { token: "" });
    assert.deepEqual([res3.status, res3.json], [401, UNAUTHORIZED]);
    await assertStreamEmpty(w, "default");
    await assertStreamEmpty(w, "shop1");
  });

  await t.test("the fetch token does not open push", async () => {
    const res = await w.push("llm", null, body, { token: FETCH_TOKEN });
    assert.deepEqual([res.status, res.json], [401, UNAUTHORIZED]);
    // nor does a bearer header stand in for ?token=
    const res2 = await w.push("llm", null, body, { token: null, headers: { authorization: `Bearer ${PUSH_TOKEN}` } });
    assert.deepEqual([res2.status, res2.json], [401, UNAUTHORIZED]);
    await assertStreamEmpty(w, "default");
  });

  await t.test("the token is checked before the body is read (oversized body with a bad token → 401, not 413)", async () => {
    // A small MAX_BODY_BYTES keeps the body small enough that the transport never races the early answer.
    const small = await startWorker({ MAX_BODY_BYTES: "1000" });
    try {
      const big = "[" + " ".repeat(5000) + "]";
      const res = await small.push("llm", null, big, { token: "nope" });
      assert.deepEqual([res.status, res.json], [401, UNAUTHORIZED]);
      const q = await small.quarantine("default");
      assert.equal(q.status, 200, q.text);
      assert.deepEqual(q.json.items, [], "an unauthenticated body leaves no too_large stub");
      assertIccAnswer(await small.push("llm", null, big), 413);
    } finally {
      await small.dispose();
    }
  });

  await t.test("the right token stores", async () => {
    assertSuccess(await w.push("llm", null, body));
    assert.equal((await w.allReceipts("default")).length, 1);
  });
});

test("fetch token", T, async (t) => {
  const w = await startWorker();
  t.after(() => w.dispose());
  assertSuccess(await w.push("llm", null, body));

  const paths = ["/v1/streams/default/receipts", "/v1/streams", "/v1/stats", "/v1/streams/default/stats", "/v1/streams/default/quarantine"];

  await t.test("no Authorization header → 401 with {error:{code,message}}", async () => {
    for (const p of paths) {
      const res = await w.api("GET", p, { bearer: null });
      assertApiError(res, 401);
    }
  });

  await t.test("wrong bearer → 401", async () => {
    for (const p of paths) {
      assertApiError(await w.api("GET", p, { bearer: FETCH_TOKEN.slice(0, -1) + "z" }), 401);
      assertApiError(await w.api("GET", p, { bearer: "" }), 401);
    }
    // token in the query string instead of the header does not count
    assertApiError(await w.api("GET", `/v1/streams/default/receipts?token=${FETCH_TOKEN}`, { bearer: null }), 401);
    // other schemes do not count
    assertApiError(await w.api("GET", "/v1/streams/default/receipts", { bearer: null, headers: { authorization: `Basic ${FETCH_TOKEN}` } }), 401);
  });

  await t.test("the push token does not open the fetch API", async () => {
    for (const p of paths) assertApiError(await w.api("GET", p, { bearer: PUSH_TOKEN }), 401);
  });

  await t.test("a 401 leaks no data", async () => {
    const res = await w.api("GET", "/v1/streams/default/receipts", { bearer: PUSH_TOKEN });
    assert.ok(!res.text.includes("147797"), res.text);
  });

  await t.test("the right bearer reads", async () => {
    const res = await w.fetchReceipts("default");
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.receipts.length, 1);
  });
});

test("token rotation: PUSH_TOKEN and FETCH_TOKEN may list current,next", T, async () => {
  const next = "nextPushToken-0123456789-abcdefghijklmnopq";
  const nextFetch = "nextFetchToken-0123456789-abcdefghijklmnop";
  const w = await startWorker({ PUSH_TOKEN: `${PUSH_TOKEN},${next}`, FETCH_TOKEN: `${FETCH_TOKEN},${nextFetch}` });
  try {
    assertSuccess(await w.push("llm", null, body, { token: PUSH_TOKEN }));
    assertSuccess(await w.push("bot", null, fixture("VoiceReportAiccs"), { token: next }));
    const bad = await w.push("llm", null, body, { token: `${PUSH_TOKEN},${next}` });
    assert.deepEqual([bad.status, bad.json], [401, UNAUTHORIZED]);
    const a = await w.fetchReceipts("default", {}, { bearer: FETCH_TOKEN });
    const b = await w.fetchReceipts("default", {}, { bearer: nextFetch });
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    assert.equal(a.json.receipts.length, 2);
    assertApiError(await w.fetchReceipts("default", {}, { bearer: next }), 401);
  } finally {
    await w.dispose();
  }
});

test("healthy configuration: /healthz → 200 {ok:true} without auth", T, async () => {
  const w = await startWorker();
  try {
    const res = await w.request("GET", "/healthz");
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { ok: true });
  } finally {
    await w.dispose();
  }
});

const BAD_CONFIGS = {
  "weak (short) PUSH_TOKEN": { PUSH_TOKEN: "short-token-31-chars-0123456789" },
  "missing PUSH_TOKEN": { PUSH_TOKEN: undefined },
  "one weak token in the PUSH_TOKEN list": { PUSH_TOKEN: `${PUSH_TOKEN},weak` },
};
for (const [name, overrides] of Object.entries(BAD_CONFIGS)) {
  test(`${name}: push fails closed with 500 misconfigured; /healthz 503 says why`, T, async () => {
    const w = await startWorker(overrides);
    try {
      const token = overrides.PUSH_TOKEN ? overrides.PUSH_TOKEN.split(",").at(-1) : PUSH_TOKEN;
      for (const tk of [token, PUSH_TOKEN]) {
        const res = await w.push("llm", null, body, { token: tk });
        assert.equal(res.status, 500, `token ${tk}: ${res.status} ${res.text}`);
        assert.deepEqual(res.json, { code: 500, msg: "misconfigured" });
      }
      const h = await w.request("GET", "/healthz");
      assert.equal(h.status, 503, h.text);
      assert.equal(h.json.ok, false);
      assert.ok(Array.isArray(h.json.problems) && h.json.problems.length >= 1, h.text);
      assert.ok(h.json.problems.every((p) => typeof p === "string" || typeof p === "object"));
      assert.ok(!h.text.includes(PUSH_TOKEN) && !h.text.includes(FETCH_TOKEN), "healthz must not echo secrets");
      assert.ok(/PUSH_TOKEN/.test(h.text), `problems should name PUSH_TOKEN: ${h.text}`);
      await assertStreamEmpty(w, "default");
    } finally {
      await w.dispose();
    }
  });
}

for (const [name, overrides] of Object.entries({
  "weak FETCH_TOKEN": { FETCH_TOKEN: "short" },
  "missing FETCH_TOKEN": { FETCH_TOKEN: undefined },
})) {
  test(`${name}: the fetch API fails closed (never 200) and /healthz 503`, T, async () => {
    const w = await startWorker(overrides);
    try {
      for (const bearer of [overrides.FETCH_TOKEN ?? "", FETCH_TOKEN, undefined]) {
        const res = await w.api("GET", "/v1/streams/default/receipts", { bearer });
        assert.ok(res.status >= 500 || res.status === 401, `bearer ${bearer}: ${res.status} ${res.text}`);
        assert.ok(res.json?.error && typeof res.json.error.code === "string", res.text);
      }
      const h = await w.request("GET", "/healthz");
      assert.equal(h.status, 503, h.text);
      assert.equal(h.json.ok, false);
      assert.ok(/FETCH_TOKEN/.test(h.text), `problems should name FETCH_TOKEN: ${h.text}`);
    } finally {
      await w.dispose();
    }
  });
}
