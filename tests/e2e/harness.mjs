// End-to-end harness: runs the BUILT worker (build/index.js + its wasm) in Miniflare,
// in-process, with in-memory KV and SQLite-backed Durable Objects, and talks to it with
// real HTTP requests through `mf.dispatchFetch`. Nothing here reads /work/shared or the
// network; fixtures come from tests/fixtures/icc.
//
// Fault injection is pure test configuration: `startFaultyWorker(mode)` binds INBOX to a
// tiny inline JavaScript Durable Object in a second Miniflare worker (`scriptName`), so the
// product code has no switch for it.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { Miniflare, Log, LogLevel } from "miniflare";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { wranglerVars, wranglerQueues } from "../wrangler_vars.mjs";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const SCRIPT_PATH = process.env.E2E_SCRIPT_PATH ?? path.join(ROOT, "build", "index.js");
export const FIXTURES = path.join(ROOT, "tests", "fixtures", "icc");
export const SCHEMA_PATH = path.join(ROOT, "schema", "receipt.v1.schema.json");

// 40-character test secrets (the contract requires at least 32).
export const PUSH_TOKEN = "pushTOKEN-e2e-0123456789abcdefghijklmnop";
export const FETCH_TOKEN = "fetchTOKEN-e2e-0123456789abcdefghijklmno";
assert.equal(PUSH_TOKEN.length, 40);
assert.equal(FETCH_TOKEN.length, 40);

export const DEFAULT_BINDINGS = Object.freeze({ PUSH_TOKEN, FETCH_TOKEN, ...wranglerVars() });

export const PRODUCT_TYPES = Object.freeze({
  llm: ["LlmSmartCallReport", "LlmSmartCallRecord"],
  agent: ["AlicomAgentCallReport", "AlicomAgentCallRecord", "AlicomAgentCallNote"],
  bot: ["VoiceReportAiccs", "VoiceCallReportAiccs", "VoiceRecordReportAiccs", "RobotCallReportAiccs"],
});
export const ALL_TYPES = Object.freeze(Object.values(PRODUCT_TYPES).flat());
export const productOf = (type) => Object.keys(PRODUCT_TYPES).find((p) => PRODUCT_TYPES[p].includes(type));

export const SUCCESS = Object.freeze({ code: 0, msg: "Success" });
export const UNAUTHORIZED = Object.freeze({ code: 401, msg: "unauthorized" });

// RFC 3339 in UTC ("Z" or "+00:00"), as received_at must be.
export const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$/;
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

// ---------------------------------------------------------------- fixtures, identity

/** The documented sample push of `type` (a JSON array), parsed. */
export function fixture(type) {
  const product = productOf(type);
  assert.ok(product, `unknown type ${type}`);
  return JSON.parse(readFileSync(path.join(FIXTURES, product, `${type}.json`), "utf8"));
}

/** The raw bytes of a fixture file, exactly as stored. */
export function fixtureText(type) {
  return readFileSync(path.join(FIXTURES, productOf(type), `${type}.json`), "utf8");
}

/** SPEC "Dedup and identity": <type>:first 32 hex of SHA-256(compact JSON array of string components). */
export function expectedId(type, components) {
  const json = JSON.stringify(components.map((c) => (c === undefined || c === null ? "" : String(c))));
  return `${type}:${createHash("sha256").update(json, "utf8").digest("hex").slice(0, 32)}`;
}

// ---------------------------------------------------------------- schema validation

let validator;
function getValidator() {
  if (!validator) {
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormats(ajv);
    validator = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, "utf8")));
  }
  return validator;
}

/** Asserts that `r` is a valid normalized receipt v1 (schema + cross-field rules). */
export function validateReceipt(r) {
  const v = getValidator();
  const ok = v(r);
  assert.ok(ok, `receipt fails schema/receipt.v1: ${JSON.stringify(v.errors)}\n${JSON.stringify(r)}`);
  assert.equal(r.id.split(":")[0], r.type, `id prefix must be the type: ${r.id}`);
  assert.equal(productOf(r.type), r.product, `type ${r.type} does not belong to product ${r.product}`);
  return r;
}

// ---------------------------------------------------------------- Miniflare

function miniflareLog() {
  const level = process.env.E2E_LOG ? LogLevel[process.env.E2E_LOG.toUpperCase()] ?? LogLevel.DEBUG : LogLevel.NONE;
  return new Log(level);
}

function cleanBindings(overrides) {
  const out = { ...DEFAULT_BINDINGS, ...overrides };
  for (const [k, v] of Object.entries(out)) if (v === undefined || v === null) delete out[k];
  return out;
}

export function mainWorkerOptions(bindings, inbox) {
  return {
    name: "icc-edge-inbox",
    modules: true,
    scriptPath: SCRIPT_PATH,
    modulesRoot: path.dirname(SCRIPT_PATH),
    modulesRules: [
      { type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true },
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"], fallthrough: true },
    ],
    compatibilityDate: "2026-04-01",
    durableObjects: {
      INBOX: inbox,
      DIRECTORY: { className: "Directory", useSQLite: true },
      MNS_PULLER: { className: "MnsPuller", useSQLite: true },
    },
    kvNamespaces: ["DEDUP"],
    bindings,
  };
}

// Inline fault-injection inbox: a JavaScript Durable Object class named Inbox.
const FAULT_SCRIPTS = {
  throw: `async fetch(request) { throw new Error("injected inbox failure"); }`,
  500: `async fetch(request) { return new Response("injected inbox error", { status: 500 }); }`,
  slow: `async fetch(request) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      return new Response(JSON.stringify({ ok: true, stored: [], duplicates: [], quarantined: [] }),
        { headers: { "content-type": "application/json" } });
    }`,
  // The first request is held 1 s and then forwarded (it commits late, after the deadline);
  // later requests are forwarded at once to the real Inbox of the same name.
  late: `async fetch(request) {
      const first = !this.seen;
      this.seen = true;
      const copy = new Request(request.url, { method: request.method, headers: request.headers,
        body: request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer() });
      if (first) await new Promise((resolve) => setTimeout(resolve, 1000));
      const name = this.state.id.name ?? "default";
      return this.env.REAL.get(this.env.REAL.idFromName(name)).fetch(copy);
    }`,
};

function faultWorkerOptions(mode) {
  const method = FAULT_SCRIPTS[mode];
  assert.ok(method, `unknown fault mode ${mode}`);
  return {
    name: "faulty-inbox",
    modules: true,
    compatibilityDate: "2026-04-01",
    script: `
      export class Inbox {
        constructor(state, env) { this.state = state; this.env = env; }
        ${method}
      }
      export default { async fetch() { return new Response("fault-injection worker"); } };
    `,
    durableObjects: { REAL: { className: "Inbox", scriptName: "icc-edge-inbox", useSQLite: true } },
  };
}

async function boot(options) {
  if (!existsSync(SCRIPT_PATH)) {
    throw new Error(`${SCRIPT_PATH} does not exist: run \`bash scripts/build.sh\` first`);
  }
  // The runtime's stdout/stderr (the worker's console output) is captured so tests can check
  // what the worker logs; it is echoed only with E2E_LOG set.
  const logChunks = [];
  const handleRuntimeStdio = (stdout, stderr) => {
    for (const stream of [stdout, stderr]) {
      stream.on("data", (chunk) => {
        logChunks.push(chunk.toString("utf8"));
        if (process.env.E2E_LOG) process.stderr.write(chunk);
      });
    }
  };
  const mf = new Miniflare({ log: miniflareLog(), handleRuntimeStdio, ...options });
  await mf.ready;
  const w = makeClient(mf);
  /** Everything the runtime printed so far (worker console.log/error included). */
  w.logs = () => logChunks.join("");
  // Warm-up: instantiate the wasm module so request timings measure the worker, not the boot.
  await w.request("GET", "/healthz");
  return w;
}

/** Starts the built worker with the real Inbox/Directory classes. `overrides` merge into bindings (undefined deletes). */
export async function startWorker(overrides = {}) {
  const bindings = cleanBindings(overrides);
  return boot(mainWorkerOptions(bindings, { className: "Inbox", useSQLite: true }));
}

/** Starts the built worker with extra Miniflare options (e.g. `r2Buckets`) merged in. */
export async function startWorkerWith(extra, overrides = {}) {
  const bindings = cleanBindings(overrides);
  return boot({ ...mainWorkerOptions(bindings, { className: "Inbox", useSQLite: true }), ...extra });
}

/**
 * Starts the built worker with INBOX bound to a failing inline JS Durable Object.
 * mode: "throw" (fetch throws), 500 (answers 500), "slow" (sleeps 2 s, then answers 200),
 * "late" (first request held 1 s then forwarded to the real Inbox; later ones forwarded at once).
 */
export async function startFaultyWorker(mode, overrides = {}) {
  const bindings = cleanBindings(overrides);
  return boot({
    workers: [
      mainWorkerOptions(bindings, { className: "Inbox", scriptName: "faulty-inbox", useSQLite: true }),
      faultWorkerOptions(String(mode)),
    ],
  });
}

// ---------------------------------------------------------------- reliability additions
// (additive: the exports above keep their behaviour)

/**
 * Starts the built worker with KV and Durable Object state persisted under `dir` (SQLite files on
 * disk). Disposing it and calling this again with the same `dir` is a restart of the runtime.
 */
export async function startPersistentWorker(dir, overrides = {}) {
  const bindings = cleanBindings(overrides);
  return boot({
    ...mainWorkerOptions(bindings, { className: "Inbox", useSQLite: true }),
    durableObjectsPersist: path.join(dir, "do"),
    kvPersist: path.join(dir, "kv"),
  });
}

// A switchable fault inbox. Every request except `/commit` is forwarded to the real Inbox of the
// same stream (reads, stats, quarantine, consumers keep working, so a test can see that nothing
// was stored). While the object is not healed, each `/commit` fails as FAULT_HOW says:
//   throw | 500  — fails at once (the inbox is down);
//   hang         — answers 500 after FAULT_DELAY_MS (slower than the deadline, never commits);
//   late         — forwards after FAULT_DELAY_MS (slower than the deadline, commits after the 503).
// Healed, `/commit` is forwarded at once. `/__fault` (reachable only through the test's own
// namespace handle, not through the worker) reads or sets the switch and counts failed commits.
const FLAKY_SCRIPT = `
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  export class Inbox {
    constructor(state, env) { this.state = state; this.env = env; }
    async fetch(request) {
      const url = new URL(request.url);
      const st = this.state.storage;
      if (url.pathname === "/__fault") {
        if (request.method === "POST") await st.put("healed", Boolean((await request.json()).healed));
        return Response.json({ healed: (await st.get("healed")) ?? false, failed: (await st.get("failed")) ?? 0,
          ended: (await st.get("ended")) ?? 0, forwarded_commits: (await st.get("forwarded")) ?? 0 });
      }
      const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
      const forward = () => {
        const name = request.headers.get("x-stream") ?? this.state.id.name;
        const copy = new Request(request.url, { method: request.method, headers: request.headers, body });
        return this.env.REAL.get(this.env.REAL.idFromName(name)).fetch(copy);
      };
      if (url.pathname !== "/commit") return forward();
      if (await st.get("healed")) {
        await st.put("forwarded", ((await st.get("forwarded")) ?? 0) + 1);
        return forward();
      }
      await st.put("failed", ((await st.get("failed")) ?? 0) + 1);
      const delay = Number(this.env.FAULT_DELAY_MS);
      const end = async (res) => {
        await st.put("ended", ((await st.get("ended")) ?? 0) + 1);
        return res;
      };
      switch (this.env.FAULT_HOW) {
        case "throw": await end(); throw new Error("injected inbox failure");
        case "500": return end(new Response("injected inbox error", { status: 500 }));
        case "hang": await sleep(delay); return end(new Response("injected inbox error", { status: 500 }));
        case "late": await sleep(delay); return end(await forward());
        default: throw new Error("unknown FAULT_HOW");
      }
    }
  }
  export default { async fetch() { return new Response("flaky-inbox worker"); } };
`;

/**
 * Starts the built worker with INBOX bound to a switchable fault inbox (see FLAKY_SCRIPT):
 * `how` = "throw" | "500" | "hang" | "late"; `delayMs` for hang/late (default 1500).
 * Every stream starts broken; `w.heal(stream)` makes its commits go through to the real Inbox,
 * `w.fault(stream)` → `{healed, failed, ended, forwarded_commits}` (`ended`: failed commits that
 * have finished, for hang/late after their delay; a late one has then landed in the real Inbox),
 * `w.faultsEnded(stream)` waits until every failed commit has ended. Test configuration only:
 * the product has no switch for it.
 */
export async function startFlakyWorker(how, overrides = {}, { delayMs = 1500 } = {}) {
  assert.ok(["throw", "500", "hang", "late"].includes(String(how)), `unknown flaky mode ${how}`);
  const bindings = cleanBindings(overrides);
  const w = await boot({
    workers: [
      mainWorkerOptions(bindings, { className: "Inbox", scriptName: "flaky-inbox", useSQLite: true }),
      {
        name: "flaky-inbox",
        modules: true,
        compatibilityDate: "2026-04-01",
        script: FLAKY_SCRIPT,
        bindings: { FAULT_HOW: String(how), FAULT_DELAY_MS: String(delayMs) },
        durableObjects: {
          REAL: { className: "Inbox", scriptName: "icc-edge-inbox", useSQLite: true },
          FAULT: { className: "Inbox", useSQLite: true },
        },
      },
    ],
  });
  async function control(stream, body) {
    const ns = await w.mf.getDurableObjectNamespace("FAULT", "flaky-inbox");
    const res = await ns.get(ns.idFromName(stream)).fetch("https://inbox/__fault",
      body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
    return res.json();
  }
  w.fault = (stream = "default") => control(stream);
  w.heal = (stream = "default") => control(stream, { healed: true });
  w.breakAgain = (stream = "default") => control(stream, { healed: false });
  w.faultsEnded = async (stream = "default", { timeoutMs = 15_000 } = {}) => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const f = await control(stream);
      if (f.ended === f.failed) return f;
      assert.ok(Date.now() < end, `${stream}: ${f.failed - f.ended} failed commits still running after ${timeoutMs} ms`);
      await sleep(50);
    }
  };
  return w;
}

/** The documented sample message of `type` with its call id (`call_id` or `callId`) replaced. */
export function sampleWithCallId(type, callId) {
  const m = structuredClone(fixture(type)[0]);
  if ("callId" in m) m.callId = callId;
  else m.call_id = callId;
  return m;
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

function makeClient(mf) {
  const base = "http://inbox.test";

  async function request(method, pathAndQuery, { body, headers = {}, bearer } = {}) {
    const h = { ...headers };
    if (bearer !== undefined && bearer !== null) h.authorization = `Bearer ${bearer}`;
    const init = { method, headers: h };
    if (body !== undefined) init.body = typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
    const t0 = performance.now();
    const res = await mf.dispatchFetch(base + pathAndQuery, init);
    const text = await res.text();
    const ms = performance.now() - t0;
    let json;
    try {
      json = text.length ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json, ms };
  }

  /** POST /icc/{product}[/{app}]?token=…[&type=…]. token: null omits it. body: object/array → JSON, string/bytes as is. */
  async function push(product, app, body, { token = PUSH_TOKEN, type, headers, method = "POST", query } = {}) {
    const q = new URLSearchParams();
    if (token !== null && token !== undefined) q.set("token", token);
    if (type !== undefined) q.set("type", type);
    for (const [k, v] of Object.entries(query ?? {})) q.set(k, v);
    const qs = q.toString();
    const p = `/icc/${product}${app ? `/${app}` : ""}${qs ? `?${qs}` : ""}`;
    const res = await request(method, p, { body, headers });
    return res;
  }

  /** GET /v1/… with the fetch token (or `bearer`). */
  async function api(method, p, { body, bearer = FETCH_TOKEN, headers } = {}) {
    return request(method, p, { body, bearer, headers });
  }

  /** GET /v1/streams/{stream}/receipts?query; validates every receipt it returns. */
  async function fetchReceipts(stream = "default", query = {}, { bearer = FETCH_TOKEN } = {}) {
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    const res = await api("GET", `/v1/streams/${stream}/receipts${qs ? `?${qs}` : ""}`, { bearer });
    if (res.status === 200) {
      assert.ok(Array.isArray(res.json?.receipts), `receipts page without receipts array: ${res.text}`);
      for (const r of res.json.receipts) {
        validateReceipt(r);
        assert.equal(r.stream, stream, "receipt served from another stream");
      }
    }
    return res;
  }

  /** All receipts of a stream (follows next_after), validated. */
  async function allReceipts(stream = "default", query = {}) {
    const out = [];
    let after = 0;
    for (let i = 0; i < 100; i++) {
      const res = await fetchReceipts(stream, { ...query, after, limit: 1000 });
      assert.equal(res.status, 200, `read ${stream}: ${res.status} ${res.text}`);
      out.push(...res.json.receipts);
      if (!res.json.has_more) return out;
      assert.ok(res.json.next_after > after, "next_after must advance");
      after = res.json.next_after;
    }
    throw new Error("too many pages");
  }

  async function quarantine(stream = "default", query = {}) {
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    return api("GET", `/v1/streams/${stream}/quarantine${qs ? `?${qs}` : ""}`);
  }

  async function stats(stream) {
    return api("GET", stream ? `/v1/streams/${stream}/stats` : "/v1/stats");
  }

  return {
    mf,
    request,
    push,
    api,
    fetchReceipts,
    allReceipts,
    quarantine,
    stats,
    dispose: () => mf.dispose(),
  };
}

// ---------------------------------------------------------------- assertions

/** Every answer on /icc has the {code,msg} shape. */
export function assertIccAnswer(res, status, code = status === 200 ? 0 : status, msg) {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status} ${res.text}`);
  assert.ok(res.json && typeof res.json === "object", `body is not JSON: ${res.text}`);
  assert.equal(res.json.code, code, `code: ${res.text}`);
  assert.equal(typeof res.json.msg, "string", `msg: ${res.text}`);
  if (msg !== undefined) assert.equal(res.json.msg, msg, `msg: ${res.text}`);
}

export function assertSuccess(res) {
  assert.equal(res.status, 200, `expected 200, got ${res.status} ${res.text}`);
  assert.deepEqual(res.json, SUCCESS);
}

/** Fetch-API error shape: {"error":{"code":"...","message":"..."}}. */
export function assertApiError(res, status, code) {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status} ${res.text}`);
  assert.ok(res.json?.error, `no error object: ${res.text}`);
  assert.equal(typeof res.json.error.code, "string", `error.code must be a string: ${res.text}`);
  assert.equal(typeof res.json.error.message, "string", `error.message must be a string: ${res.text}`);
  if (code !== undefined) assert.equal(res.json.error.code, code, res.text);
}

/** Receipts without the fields that depend on arrival (seq, received_at). */
export function stable(r) {
  const { seq, received_at, ...rest } = r;
  return rest;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Asserts a stream holds nothing: 200 with no receipts (an unknown stream may also answer 404). */
export async function assertStreamEmpty(w, stream = "default") {
  const res = await w.fetchReceipts(stream);
  if (res.status === 404) return;
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.receipts, [], `stream ${stream} should be empty`);
}

// ---------------------------------------------------------------- delivery additions

/**
 * Starts the built worker with the queues of wrangler.toml bound (Miniflare's local Queues:
 * producers and consumers, the dead-letter queue included). `opts.persistDir` keeps state on
 * disk (a restart is a new call with the same dir); `opts.queueProducers` overrides producers
 * (e.g. a binding to a queue of a failing worker).
 */
export async function startQueueWorker(overrides = {}, opts = {}) {
  const bindings = cleanBindings(overrides);
  const queues = wranglerQueues();
  const main = {
    ...mainWorkerOptions(bindings, { className: "Inbox", useSQLite: true }),
    queueProducers: { ...queues.queueProducers, ...(opts.queueProducers ?? {}) },
    queueConsumers: queues.queueConsumers,
  };
  if (opts.persistDir) {
    main.durableObjectsPersist = path.join(opts.persistDir, "do");
    main.kvPersist = path.join(opts.persistDir, "kv");
    main.queuesPersist = path.join(opts.persistDir, "queues");
  }
  return boot(main);
}
