// Promise: "no one in without a token". The complete route matrix: every /icc address (three
// products, general and app) and every /v1 route, with every method, without credentials, with a
// wrong credential, with the other route's token, and with the right token in the wrong place.
// Push: POST → 401 {"code":401,"msg":"unauthorized"}; other methods → the documented 405 (the
// address is checked first, so it reveals nothing). Fetch API: 401 {"error":{code:"unauthorized"}}
// for every method, before routing (no 404/405 that would map the API). An unauthenticated long
// poll is refused at once. Afterwards the state read with the right token is unchanged (nothing
// stored, no consumer created, moved or deleted), no 401 reveals data, and no presented token
// (right or wrong) appears in the worker's logs.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  startWorker, fixture, sampleWithCallId, assertSuccess, mapLimit, PUSH_TOKEN, FETCH_TOKEN, UNAUTHORIZED,
} from "./harness.mjs";

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
const oneOff = (t) => t.slice(0, -1) + (t.endsWith("z") ? "y" : "z");

// Push credentials that must not open /icc: [label, query token or null, extra headers]
const PUSH_BAD = [
  ["no token", null, {}],
  ["empty token", "", {}],
  ["wrong token (one char off)", oneOff(PUSH_TOKEN), {}],
  ["token prefix (32 chars)", PUSH_TOKEN.slice(0, 32), {}],
  ["token with a suffix", PUSH_TOKEN + "0", {}],
  ["token upper-cased", PUSH_TOKEN.toUpperCase(), {}],
  ["the fetch token", FETCH_TOKEN, {}],
  ["the push token as a bearer header only", null, { authorization: `Bearer ${PUSH_TOKEN}` }],
  ["the push token in a cookie only", null, { cookie: `token=${PUSH_TOKEN}` }],
];

// Fetch credentials that must not open /v1: [label, headers, query]
const FETCH_BAD = [
  ["no Authorization", {}, ""],
  ["empty bearer", { authorization: "Bearer " }, ""],
  ["wrong bearer (one char off)", { authorization: `Bearer ${oneOff(FETCH_TOKEN)}` }, ""],
  ["bearer prefix (32 chars)", { authorization: `Bearer ${FETCH_TOKEN.slice(0, 32)}` }, ""],
  ["bearer with a suffix", { authorization: `Bearer ${FETCH_TOKEN}x` }, ""],
  ["the push token as bearer", { authorization: `Bearer ${PUSH_TOKEN}` }, ""],
  ["the fetch token without a scheme", { authorization: FETCH_TOKEN }, ""],
  ["the fetch token as Basic", { authorization: `Basic ${FETCH_TOKEN}` }, ""],
  ["the fetch token in the query", {}, `token=${FETCH_TOKEN}`],
  ["the fetch token in another header", { "x-api-key": FETCH_TOKEN }, ""],
  ["both tokens as a list", { authorization: `Bearer ${FETCH_TOKEN},${PUSH_TOKEN}` }, ""],
];

const FETCH_ROUTES = [
  "/v1", "/v1/", "/v1/nope", "/v1/streams", "/v1/stats",
  "/v1/streams/default/receipts", "/v1/streams/default/receipts?after=0&wait=5",
  "/v1/streams/default/receipts?consumer=keep", "/v1/streams/shop1/receipts?call_id=am-1%5E1",
  "/v1/streams/default/quarantine", "/v1/streams/default/stats",
  "/v1/streams/default/consumers/keep", "/v1/streams/default/consumers/intruder",
  "/v1/streams/shop1/consumers/keep", "/v1/streams/nosuchstream/receipts", "/v1/streams/bad%20name/receipts",
];

async function state(w) {
  const read = async (p) => {
    const r = await w.api("GET", p);
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    return r.json;
  };
  const stats = await read("/v1/stats");
  for (const s of Object.values(stats.streams)) {
    delete s.db_bytes;
    delete s.kv_answered; // answered-from-KV is counted after the answer, best effort
    for (const t of Object.values(s.types)) delete t.last_received_at;
  }
  return {
    default: await w.allReceipts("default"),
    shop1: await w.allReceipts("shop1"),
    quarantine: await read("/v1/streams/default/quarantine"),
    streams: await read("/v1/streams"),
    keep: await read("/v1/streams/default/consumers/keep"),
    keepShop: await read("/v1/streams/shop1/consumers/keep"),
    stats,
  };
}

test("auth matrix: every route × every method × every wrong credential → refused, nothing stored or revealed", { timeout: 60_000 }, async () => {
  const w = await startWorker();
  try {
    // Known state: receipts in two streams, a quarantined body, two consumers.
    const secretCall = "am-1^1";
    assertSuccess(await w.push("llm", null, [sampleWithCallId("LlmSmartCallReport", secretCall)]));
    assertSuccess(await w.push("bot", "shop1", [sampleWithCallId("VoiceReportAiccs", secretCall)]));
    assertSuccess(await w.push("agent", null, "AUTH-MATRIX-QUARANTINED-BODY"));
    assert.equal((await w.api("PUT", "/v1/streams/default/consumers/keep", { body: { after: 1 } })).status, 200);
    assert.equal((await w.api("PUT", "/v1/streams/shop1/consumers/keep", { body: { after: 0 } })).status, 200);
    const before = await state(w);

    const leaks = (text) => [secretCall, "am-1", "AUTH-MATRIX", "shop1", PUSH_TOKEN, FETCH_TOKEN, "020*****843"].filter((s) => text.includes(s));

    // ---- /icc: every address × every method × every bad credential (type= only matters for POST)
    const checks = [];
    const addresses = ["llm", "agent", "bot"].flatMap((p) => [`/icc/${p}`, `/icc/${p}/shop1`, `/icc/${p}/newapp`, `/icc/${p}/`]);
    for (const address of addresses) {
      const product = address.split("/")[2];
      const body = JSON.stringify(fixture({ llm: "LlmSmartCallReport", agent: "AlicomAgentCallNote", bot: "VoiceReportAiccs" }[product]));
      for (const [label, token, headers] of PUSH_BAD) {
        for (const method of METHODS) {
          for (const type of method === "POST" ? [undefined, "NoSuchType"] : [undefined]) {
            checks.push(async () => {
              const q = new URLSearchParams();
              if (token !== null) q.set("token", token);
              if (type) q.set("type", type);
              const qs = q.toString();
              const res = await w.request(method, `${address}${qs ? `?${qs}` : ""}`, {
                body: method === "GET" || method === "HEAD" ? undefined : body, headers,
              });
              const where = `${method} ${address} type=${type} (${label}): ${res.status} ${res.text}`;
              if (method === "POST") {
                assert.equal(res.status, 401, where);
                assert.deepEqual(res.json, UNAUTHORIZED, where);
              } else {
                assert.equal(res.status, 405, where); // documented: not POST → 405 with Allow: POST
                assert.match(res.headers.get("allow") ?? "", /\bPOST\b/, where);
                if (method !== "HEAD") assert.equal(res.json?.code, 405, where);
              }
              assert.deepEqual(leaks(res.text), [], `${where} reveals data`);
            });
          }
        }
      }
    }

    // ---- /v1: every route × every method × every bad credential
    for (const route of FETCH_ROUTES) {
      for (const [label, headers, query] of FETCH_BAD) {
        for (const method of METHODS) {
          checks.push(async () => {
            const p = query ? `${route}${route.includes("?") ? "&" : "?"}${query}` : route;
            const body = ["PUT", "POST", "PATCH"].includes(method) ? JSON.stringify({ after: 0 }) : undefined;
            const res = await w.request(method, p, { body, headers });
            const where = `${method} ${p} (${label}): ${res.status} ${res.text}`;
            assert.equal(res.status, 401, where);
            if (method !== "HEAD") {
              assert.equal(res.json?.error?.code, "unauthorized", where);
              assert.equal(typeof res.json.error.message, "string", where);
            }
            // an unauthenticated long poll (wait=5) must be refused at once, not held
            assert.ok(res.ms < 1500, `${where}: an unauthenticated request was held ${Math.round(res.ms)} ms`);
            assert.deepEqual(leaks(res.text), [], `${where} reveals data`);
          });
        }
      }
    }
    await mapLimit(checks, 8, (check) => check());
    const checked = checks.length;

    // ---- the right tokens on the wrong route
    for (const method of METHODS) {
      const r = await w.request(method, `/v1/streams/default/receipts?token=${encodeURIComponent(PUSH_TOKEN)}`, { bearer: PUSH_TOKEN });
      assert.equal(r.status, 401, `${method} /v1 with the push token everywhere: ${r.status}`);
    }
    const viaFetch = await w.push("llm", null, fixture("LlmSmartCallReport"), { token: FETCH_TOKEN, headers: { authorization: `Bearer ${FETCH_TOKEN}` } });
    assert.deepEqual([viaFetch.status, viaFetch.json], [401, UNAUTHORIZED]);

    // ---- nothing changed
    const after = await state(w);
    assert.deepEqual(after, before, "an unauthenticated request changed the state");
    const intruder = await w.api("GET", "/v1/streams/default/consumers/intruder");
    assert.deepEqual(intruder.json, { after: 0, lag: before.default.at(-1).seq }, "an unauthenticated PUT created a consumer");
    assert.deepEqual(after.streams.streams.sort(), ["default", "shop1"], "an unauthenticated push created a stream");

    // ---- no presented token, right or wrong, is logged
    const logs = w.logs();
    for (const tok of [PUSH_TOKEN, FETCH_TOKEN, oneOff(PUSH_TOKEN), oneOff(FETCH_TOKEN), PUSH_TOKEN.slice(0, 32), FETCH_TOKEN.slice(0, 32), PUSH_TOKEN.toUpperCase()]) {
      assert.ok(!logs.includes(tok), `the logs contain a presented token ${tok.slice(0, 6)}…`);
    }
    assert.ok(checked > 1000, `only ${checked} requests checked`);
  } finally {
    await w.dispose();
  }
});
