// Pieces of the benchmark: a loopback-only HTTP client, percentiles, CPU time of the workerd
// process, message batches from the fixtures, and the local runtime (workerd through Miniflare,
// listening on a real 127.0.0.1 port).

import http from "node:http";
import { readFileSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Miniflare, Log, LogLevel } from "miniflare";
import { wranglerVars } from "../tests/wrangler_vars.mjs";

process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const now = () => performance.now();

// 40-character tokens, generated per run (the contract wants ≥ 32).
export const PUSH_TOKEN = "benchPUSH-" + Math.random().toString(36).slice(2).padEnd(30, "0").slice(0, 30);
export const FETCH_TOKEN = "benchFETCH-" + Math.random().toString(36).slice(2).padEnd(29, "0").slice(0, 29);

// ---------------------------------------------------------------- HTTP (loopback only)

/** Keep-alive HTTP client bound to one loopback origin. */
export class Client {
  static getRetries = [];

  constructor(base, { sockets = 1 } = {}) {
    const u = new URL(base);
    if (u.hostname !== "127.0.0.1" || u.protocol !== "http:") {
      throw new Error(`bench only talks to http://127.0.0.1, not ${base}`);
    }
    this.host = u.hostname;
    this.port = Number(u.port);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  /** One request; resolves with {status, text, ms} (ms = request start to last body byte). */
  request(method, pathAndQuery, { body, headers = {} } = {}) {
    return new Promise((resolve, reject) => {
      const h = { ...headers };
      let buf;
      if (body !== undefined) {
        buf = typeof body === "string" ? Buffer.from(body, "utf8") : body;
        h["content-length"] = String(buf.length);
      }
      const t0 = now();
      const req = http.request(
        { host: this.host, port: this.port, method, path: pathAndQuery, headers: h, agent: this.agent },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString("utf8"), ms: now() - t0 }),
          );
          res.on("error", reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error("request timeout (30 s)")));
      req.on("error", reject);
      req.end(buf);
    });
  }

  push(product, app, body) {
    return this.request("POST", `/icc/${product}/${app}?token=${PUSH_TOKEN}`, { body });
  }

  /** A push outside any measurement (warm-ups): retried once on a reset connection, which is
   * safe because the inbox deduplicates a resent body. */
  async pushSetup(product, app, body) {
    try {
      return await this.push(product, app, body);
    } catch (e) {
      if (e.code !== "ECONNRESET" && e.code !== "EPIPE") throw e;
      Client.getRetries.push(`${e.code} on a warm-up push`);
      return this.push(product, app, body);
    }
  }

  /** GET on the fetch API. Retried (up to 3 times) on a reset connection; retries are counted in
   * `Client.getRetries` and reported. */
  async api(pathAndQuery) {
    const go = () => this.request("GET", pathAndQuery, { headers: { authorization: `Bearer ${FETCH_TOKEN}` } });
    for (let attempt = 1; ; attempt++) {
      try {
        return await go();
      } catch (e) {
        if ((e.code !== "ECONNRESET" && e.code !== "EPIPE") || attempt >= 4) throw e;
        Client.getRetries.push(`${e.code} on GET ${pathAndQuery.split("?")[0]}`);
        await sleep(200 * attempt);
      }
    }
  }

  async stats(stream) {
    const r = await this.api(`/v1/streams/${stream}/stats`);
    if (r.status !== 200) throw new Error(`stats ${stream}: ${r.status} ${r.text}`);
    const s = JSON.parse(r.text).streams[stream];
    const sum = (k) => Object.values(s.types ?? {}).reduce((a, t) => a + (t[k] ?? 0), 0);
    return {
      received: sum("received"),
      stored: sum("stored"),
      duplicate: sum("duplicate"),
      quarantined: sum("quarantined"),
      conflict: sum("conflict"),
      kv_answered: s.kv_answered ?? 0,
      head_seq: s.head_seq ?? 0,
    };
  }

  close() {
    this.agent.destroy();
  }
}

// ---------------------------------------------------------------- statistics

/** Nearest-rank percentile of an ascending array. */
export function pct(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summary(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return {
    n: s.length,
    p50: pct(s, 50),
    p95: pct(s, 95),
    p99: pct(s, 99),
    max: s.length ? s[s.length - 1] : null,
    mean: s.length ? mean : null,
  };
}

export const median = (xs) => pct([...xs].sort((a, b) => a - b), 50);

// ---------------------------------------------------------------- CPU time of workerd

/** The workerd processes this process started (Miniflare spawns workerd as our child). */
export function childWorkerdPids() {
  const out = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, "utf8");
      const comm = st.slice(st.indexOf("(") + 1, st.lastIndexOf(")"));
      const ppid = Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]);
      if (comm === "workerd" && ppid === process.pid) out.push(Number(d));
    } catch {
      // raced with an exiting process
    }
  }
  return out;
}

const TICK_NS = 1e7; // CLK_TCK 100

/**
 * CPU time (ns) a process has used, all threads: the sum of /proc/<pid>/task/<tid>/schedstat
 * (ns resolution) when every thread seen at the start is still there, else utime+stime from
 * /proc/<pid>/stat (10 ms ticks, includes exited threads).
 */
export function cpuSample(pid) {
  if (!pid) return null;
  const tasks = {};
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        tasks[t] = Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // thread exited
      }
    }
    const raw = readFileSync(`/proc/${pid}/stat`, "utf8");
    const st = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(st[11]) + Number(st[12]);
    return { tasks, statNs: ticks * TICK_NS };
  } catch {
    return null;
  }
}

/** CPU ns used between two samples of one process. */
export function cpuDelta(a, b) {
  if (!a || !b) return null;
  const same = Object.keys(a.tasks).every((t) => t in b.tasks);
  const sched = (s) => Object.values(s.tasks).reduce((x, y) => x + y, 0);
  if (same && sched(b) > 0) return sched(b) - sched(a);
  return b.statNs - a.statNs;
}

/** Resident memory of a process, bytes (null when gone). */
export function rssBytes(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;
  } catch {
    return null;
  }
}

/** Machine-wide busy and iowait ticks (all CPUs) from /proc/stat. */
function systemSample() {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busyNs: (total - f[3] - f[4]) * TICK_NS, iowaitNs: f[4] * TICK_NS };
  } catch {
    return null;
  }
}

/**
 * A measurement window: CPU of workerd, of this Node process (load generator + Miniflare's
 * control side) and of everything else on the machine (other jobs), over the wall time.
 * end() → { seconds, workerd_ms, bench_ms, others_pct, iowait_pct } (pct = share of all cores).
 */
export function cpuWindow(pid) {
  const w0 = cpuSample(pid);
  const s0 = systemSample();
  const u0 = process.cpuUsage();
  const t0 = now();
  return () => {
    const seconds = (now() - t0) / 1000;
    const workerd = cpuDelta(w0, cpuSample(pid));
    const s1 = systemSample();
    const u = process.cpuUsage(u0);
    const benchNs = (u.user + u.system) * 1000;
    const capacityNs = seconds * 1e9 * os.cpus().length;
    let others = null;
    let iowait = null;
    if (s0 && s1 && workerd !== null) {
      others = Math.max(0, ((s1.busyNs - s0.busyNs - workerd - benchNs) / capacityNs) * 100);
      iowait = ((s1.iowaitNs - s0.iowaitNs) / capacityNs) * 100;
    }
    return {
      seconds,
      workerd_ms: workerd === null ? null : workerd / 1e6,
      bench_ms: benchNs / 1e6,
      others_pct: others,
      iowait_pct: iowait,
    };
  };
}

// ---------------------------------------------------------------- message batches

const FIXTURE = JSON.parse(
  readFileSync(new URL("../tests/fixtures/icc/llm/LlmSmartCallReport.json", import.meta.url), "utf8"),
)[0];

/** A push body of `n` LlmSmartCallReport messages with call ids `${prefix}-${start+i}`. */
export function batch(prefix, start, n, { indent } = {}) {
  const msgs = new Array(n);
  for (let i = 0; i < n; i++) msgs[i] = { ...FIXTURE, call_id: `${prefix}-${start + i}` };
  return indent ? JSON.stringify(msgs, null, indent) : JSON.stringify(msgs);
}

// ---------------------------------------------------------------- the local runtime

// The vars of wrangler.toml, as a deploy gets them.
export const BINDINGS = Object.freeze({ PUSH_TOKEN, FETCH_TOKEN, ...wranglerVars() });

// An inbox Durable Object that does no work: answers every commit at once (nothing stored) and
// counts the calls it gets per route. Used only to separate the Worker's own work from the inbox.
const FAKE_INBOX = `
const CALLS = {};
const OK = '{"stored":0,"duplicate":0,"conflict":0,"quarantined":0,"head_seq":0,"outcomes":[]}';
export class Inbox {
  constructor(state, env) {}
  async fetch(request) {
    const p = new URL(request.url).pathname;
    CALLS[p] = (CALLS[p] || 0) + 1;
    return new Response(p === "/commit" ? OK : "{}", { headers: { "content-type": "application/json" } });
  }
}
export default { async fetch() { return Response.json(CALLS); } };
`;

// Start-time baselines: JS workers with the same bindings and Durable Object classes as the real
// one, so that the difference is this worker's own module (wasm and glue), not Miniflare's
// KV/Durable Object plumbing.
const STUB_CLASSES = `import { DurableObject } from "cloudflare:workers";
export class Inbox extends DurableObject {}
export class Directory extends DurableObject {}`;
const HELLO = `${STUB_CLASSES}
export default { async fetch() { return new Response('{"ok":true}'); } };`;
const WASM_ONLY = `${STUB_CLASSES}
import m from "./index_bg.wasm";
export default { async fetch() { return new Response(String(WebAssembly.Module.exports(m).length)); } };`;

function bindingOptions(inbox, bindings) {
  return {
    name: "icc-edge-inbox",
    compatibilityDate: "2026-04-01",
    durableObjects: { INBOX: inbox, DIRECTORY: { className: "Directory", useSQLite: true } },
    kvNamespaces: ["DEDUP"],
    bindings,
  };
}

function workerOptions(scriptPath, inbox, bindings) {
  return {
    ...bindingOptions(inbox, bindings),
    modules: true,
    scriptPath,
    modulesRoot: path.dirname(scriptPath),
    modulesRules: [
      { type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true },
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"], fallthrough: true },
    ],
  };
}

/**
 * Starts workerd (through Miniflare) listening on 127.0.0.1 on a free port.
 * kind: "real" (the built worker, real Inbox), "fake" (the built worker, INBOX bound to the
 * no-op inbox above), "hello" (a JS worker with the same bindings, for the start-time baseline).
 * persistDir: Durable Object and KV state on disk there (else in memory).
 */
export async function startRuntime({ kind, scriptPath, persistDir, bindings = BINDINGS }) {
  // kind "wasm-only": a JS worker that imports this worker's wasm (so workerd compiles it) and
  // does nothing else: separates compiling the module from instantiating it and its glue.
  let logText = "";
  let logTail = "";
  let logBytes = 0;
  const counters = new Map(); // substring → count, updated as logs arrive
  const watch = (needle) => {
    if (!counters.has(needle)) counters.set(needle, 0);
  };
  let carry = "";
  const onChunk = (chunk) => {
    const s = carry + chunk.toString("utf8");
    const cut = s.lastIndexOf("\n");
    const complete = cut >= 0 ? s.slice(0, cut + 1) : "";
    carry = cut >= 0 ? s.slice(cut + 1) : s;
    logBytes += chunk.length;
    if (logText.length < 20_000) logText += complete; // the start, for diagnostics
    logTail = (logTail + complete).slice(-20_000);
    for (const [needle, n] of counters) {
      let i = complete.indexOf(needle);
      let c = 0;
      while (i >= 0) {
        c++;
        i = complete.indexOf(needle, i + needle.length);
      }
      if (c) counters.set(needle, n + c);
    }
  };
  const shared = {
    host: "127.0.0.1",
    port: 0,
    cf: false, // never fetch Request.cf from the network
    log: new Log(process.env.BENCH_LOG ? LogLevel.DEBUG : LogLevel.NONE),
    handleRuntimeStdio: (stdout, stderr) => {
      stdout.on("data", onChunk);
      stderr.on("data", onChunk);
    },
  };
  if (persistDir) {
    shared.durableObjectsPersist = path.join(persistDir, "do");
    shared.kvPersist = path.join(persistDir, "kv");
  }
  let options;
  const sameBindings = bindingOptions({ className: "Inbox", useSQLite: true }, bindings);
  if (kind === "hello") {
    options = { ...shared, ...sameBindings, modules: true, script: HELLO };
  } else if (kind === "wasm-only") {
    const dir = path.dirname(scriptPath);
    options = {
      ...shared,
      ...sameBindings,
      modulesRoot: dir,
      modules: [
        { type: "ESModule", path: path.join(dir, "wasm-only.mjs"), contents: WASM_ONLY },
        { type: "CompiledWasm", path: path.join(dir, "index_bg.wasm"), contents: readFileSync(path.join(dir, "index_bg.wasm")) },
      ],
    };
  } else if (kind === "real") {
    options = { ...shared, ...workerOptions(scriptPath, { className: "Inbox", useSQLite: true }, bindings) };
  } else if (kind === "fake") {
    options = {
      ...shared,
      workers: [
        workerOptions(scriptPath, { className: "Inbox", scriptName: "fake-inbox", useSQLite: true }, bindings),
        { name: "fake-inbox", modules: true, compatibilityDate: "2026-04-01", script: FAKE_INBOX },
      ],
    };
  } else {
    throw new Error(`unknown runtime kind ${kind}`);
  }
  const before = new Set(childWorkerdPids());
  const t0 = now();
  const mf = new Miniflare(options);
  let url;
  try {
    url = await mf.ready;
  } catch (e) {
    await mf.dispose().catch(() => {});
    throw new Error(`${kind} runtime did not start: ${e.message}\n${logText.slice(-2000)}`);
  }
  const readyMs = now() - t0;
  const base = `http://127.0.0.1:${url.port}`;
  const client = new Client(base);
  const t1 = now();
  const first = await client.request("GET", kind === "real" || kind === "fake" ? "/healthz" : "/").catch((e) => ({ status: 0, text: String(e) }));
  const firstMs = now() - t1;
  client.close();
  if (first.status !== 200) {
    await mf.dispose().catch(() => {});
    throw new Error(`${kind} runtime: first request answered ${first.status} ${first.text}`);
  }
  const pid = childWorkerdPids().find((p) => !before.has(p)) ?? null;
  return {
    mf,
    base,
    pid,
    readyMs,
    firstMs,
    totalMs: readyMs + firstMs,
    watch,
    count: (needle) => counters.get(needle) ?? 0,
    logs: () => logText,
    logTail: () => logTail,
    logBytes: () => logBytes,
    /** Calls the no-op inbox got, per route ("fake" only). */
    async fakeCalls() {
      const w = await mf.getWorker("fake-inbox");
      const r = await w.fetch("http://fake/");
      return r.json();
    },
    dispose: () => mf.dispose(),
  };
}
