#!/usr/bin/env node
// ICC simulator: pushes call receipts to an inbox the way Alibaba Cloud ICC's HTTP batch push
// does, then (with a fetch token) reads the stream back and checks that every acknowledged
// receipt is stored exactly once. Node ≥ 20, built-ins only.
//
//   npm run simulate -- --url http://127.0.0.1:8787 --push-token <t> --fetch-token <t>
//
// What ICC does, and so what this does:
//  - POSTs a JSON array of messages of one message type (the documented sample of that type,
//    tests/fixtures/icc/<product>/<Type>.json, with a generated, run-unique call id and out id)
//    to /icc/<product>[/<app>]?token=<push token>;
//  - counts an answer as received only if it is HTTP 200 with a numeric `code`, within 700 ms
//    (the client gives up on the request with an AbortController after that);
//  - retries a failed push 1, 5 and 10 minutes after the previous failed attempt (each divided by
//    --time-scale), then gives up;
//  - pushes some batches again (--dup-rate): half byte-identical, half re-serialized (other key
//    order and whitespace, same content), as ICC does after a timeout or a network error.
// Receipts are matched on read-back by their normalized `call_id` and `type`.
//
// Exit status: 0 all good; 1 an acknowledged receipt is missing, a receipt is stored twice or
// stored under another type; 2 usage or set-up error (bad option, fetch token refused, stream
// unreadable); 3 nothing is broken but some receipts were given up after every retry.

import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";

const FIXTURES = new URL("../tests/fixtures/icc/", import.meta.url);
const PRODUCT_TYPES = {
  llm: ["LlmSmartCallReport", "LlmSmartCallRecord"],
  agent: ["AlicomAgentCallReport", "AlicomAgentCallRecord", "AlicomAgentCallNote"],
  bot: ["VoiceReportAiccs", "VoiceCallReportAiccs", "VoiceRecordReportAiccs", "RobotCallReportAiccs"],
};
const RETRY_AFTER_MIN = [1, 5, 10];
const APP_RE = /^[A-Za-z0-9_-]{1,64}$/;

const USAGE = `usage: npm run simulate -- --url <base> [--push-token <t>] [--fetch-token <t>] [options]

  --url <base>          the worker, e.g. http://127.0.0.1:8787 (no path)
  --push-token <t>      the push token (sent as ?token=, never printed); default $PUSH_TOKEN
  --fetch-token <t>     the fetch token: read the stream back and check every receipt;
                        default $FETCH_TOKEN (no read-back without either)
  --product <p>         llm | agent | bot (default llm)
  --app <name>          push to /icc/<product>/<name> (stream <name>) instead of stream default
  --batches <n>         distinct batches to push (default 20)
  --batch-size <n>      messages per batch (default 5)
  --dup-rate <0..1>     share of batches pushed a second time (default 0.2)
  --time-scale <k>      divide ICC's 1/5/10-minute retry delays by k (default 1)
  --concurrency <n>     requests in flight at most (default 4)
  --timeout-ms <ms>     give up on an answer after this long (default 700, ICC's timeout)
  --seed <n>            seed for which batches are resent, and how (default random)
  --json                print the summary as JSON instead of a table
  --quiet               no progress line

exit status: 0 ok · 1 acked receipt missing, stored twice or mistyped · 2 usage/set-up error ·
3 receipts given up after every retry (nothing acked was lost)`;

class UsageError extends Error {}

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      url: { type: "string" },
      "push-token": { type: "string" },
      "fetch-token": { type: "string" },
      product: { type: "string", default: "llm" },
      app: { type: "string" },
      batches: { type: "string", default: "20" },
      "batch-size": { type: "string", default: "5" },
      "dup-rate": { type: "string", default: "0.2" },
      "time-scale": { type: "string", default: "1" },
      concurrency: { type: "string", default: "4" },
      "timeout-ms": { type: "string", default: "700" },
      seed: { type: "string" },
      json: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return { help: true };
  const num = (name, min, max, integer = true) => {
    const v = Number(values[name]);
    if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new UsageError(`--${name} must be ${integer ? "an integer" : "a number"} in ${min}..${max}`);
    }
    return v;
  };
  if (!values.url) throw new UsageError("--url is required");
  let base;
  try {
    base = new URL(values.url);
  } catch {
    throw new UsageError(`--url is not a URL: ${values.url}`);
  }
  if (!/^https?:$/.test(base.protocol)) throw new UsageError("--url must be http:// or https://");
  // Tokens may come from the environment (e.g. `set -a; . ./.dev.vars; set +a`), which keeps them
  // off the command line; a `current,next` list uses the first.
  const fromEnv = (name) => process.env[name]?.split(",")[0].trim() || undefined;
  values["push-token"] ??= fromEnv("PUSH_TOKEN");
  values["fetch-token"] ??= fromEnv("FETCH_TOKEN");
  if (!values["push-token"]) throw new UsageError("--push-token (or PUSH_TOKEN in the environment) is required");
  if (!PRODUCT_TYPES[values.product]) throw new UsageError("--product must be llm, agent or bot");
  if (values.app !== undefined && (!APP_RE.test(values.app) || values.app === "default")) {
    throw new UsageError("--app must be 1-64 of [A-Za-z0-9_-] and not 'default'");
  }
  const timeScale = num("time-scale", Number.MIN_VALUE, 1e9, false);
  return {
    base: base.origin + base.pathname.replace(/\/+$/, ""),
    pushToken: values["push-token"],
    fetchToken: values["fetch-token"],
    product: values.product,
    app: values.app,
    stream: values.app ?? "default",
    batches: num("batches", 1, 1_000_000),
    batchSize: num("batch-size", 1, 1000),
    dupRate: num("dup-rate", 0, 1, false),
    timeScale,
    concurrency: num("concurrency", 1, 256),
    timeoutMs: num("timeout-ms", 1, 600_000),
    seed: values.seed === undefined ? randomBytes(4).readUInt32LE() : num("seed", 0, 2 ** 32 - 1),
    json: values.json,
    quiet: values.quiet,
  };
}

// ---------------------------------------------------------------- receipts

/** mulberry32: a small seeded PRNG, so a run's choices can be repeated with --seed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function loadSamples(product) {
  const out = {};
  for (const type of PRODUCT_TYPES[product]) {
    const arr = JSON.parse(readFileSync(new URL(`${product}/${type}.json`, FIXTURES), "utf8"));
    out[type] = arr[0];
  }
  return out;
}

// Call ids look like ICC's (`<digits>^<digits>`); the run tag is random for every run (not tied
// to --seed), so a run never collides with an earlier one in the same stream.
function callIdMaker() {
  const tag = String(randomBytes(4).readUInt32LE() % 1e8).padStart(8, "0");
  let n = 0;
  return () => {
    n += 1;
    const tail = String(randomBytes(4).readUInt32LE() % 1e9).padStart(9, "0");
    return { callId: `${tag}${String(n).padStart(7, "0")}^${tail}`, outId: `sim-${tag}-${n}` };
  };
}

function makeMessage(sample, ids) {
  const m = structuredClone(sample);
  if ("callId" in m) m.callId = ids.callId;
  else m.call_id = ids.callId;
  if ("outId" in m) m.outId = ids.outId;
  else if ("out_id" in m) m.out_id = ids.outId;
  return m;
}

/** Same content, other bytes: keys in reverse order at every level, indented. */
function reserialize(batch) {
  const reorder = (v) => {
    if (Array.isArray(v)) return v.map(reorder);
    if (v && typeof v === "object") {
      return Object.fromEntries(Object.keys(v).reverse().map((k) => [k, reorder(v[k])]));
    }
    return v;
  };
  return Buffer.from(`${JSON.stringify(reorder(batch), null, 2)}\n`, "utf8");
}

// ---------------------------------------------------------------- pushing

function limiter(n) {
  let active = 0;
  const waiting = [];
  return async (fn) => {
    if (active >= n) await new Promise((resolve) => waiting.push(resolve));
    active += 1;
    try {
      return await fn();
    } finally {
      active -= 1;
      waiting.shift()?.();
    }
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function newStats() {
  return {
    requests: { total: 0, ok: 0, status: {}, timeouts: 0, network_errors: 0, retries: 0 },
    deliveries: { started: 0, done: 0, waiting_retry: 0 },
  };
}

/**
 * Runs `work(signal)` with a hard deadline: after `ms` the signal is aborted and the result is
 * "timeout", whether or not the HTTP client has settled (a request it never settles cannot
 * stall the run).
 */
async function withDeadline(ms, work) {
  const ac = new AbortController();
  let timer;
  const expired = new Promise((resolve) => {
    timer = setTimeout(() => {
      ac.abort();
      resolve(TIMEOUT);
    }, ms);
  });
  const attempt = work(ac.signal);
  attempt.catch(() => {}); // a failure after the deadline changes nothing
  try {
    return await Promise.race([attempt, expired]);
  } finally {
    clearTimeout(timer);
  }
}
const TIMEOUT = Symbol("timeout");

/** One POST, as ICC makes it: the answer counts only if it is 200 with a numeric code, in time. */
async function postOnce(url, bytes, timeoutMs, stats) {
  stats.requests.total += 1;
  let answer;
  try {
    answer = await withDeadline(timeoutMs, async (signal) => {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: bytes,
        signal,
      });
      return { status: res.status, text: await res.text() };
    });
  } catch {
    stats.requests.network_errors += 1;
    return false;
  }
  if (answer === TIMEOUT) {
    stats.requests.timeouts += 1;
    return false;
  }
  const key = String(answer.status);
  stats.requests.status[key] = (stats.requests.status[key] ?? 0) + 1;
  let code;
  try {
    code = JSON.parse(answer.text)?.code;
  } catch {
    code = undefined;
  }
  const ok = answer.status === 200 && typeof code === "number";
  if (ok) stats.requests.ok += 1;
  return ok;
}

/** A push and ICC's retries. Resolves {acked, attempts}; `firstDone` resolves after attempt 1. */
function deliver(opts, url, bytes, run, stats) {
  let markFirst;
  const firstDone = new Promise((resolve) => (markFirst = resolve));
  const done = (async () => {
    stats.deliveries.started += 1;
    let attempts = 0;
    try {
      for (let i = 0; i <= RETRY_AFTER_MIN.length; i++) {
        if (i > 0) {
          stats.deliveries.waiting_retry += 1;
          await sleep((RETRY_AFTER_MIN[i - 1] * 60_000) / opts.timeScale);
          stats.deliveries.waiting_retry -= 1;
          stats.requests.retries += 1;
        }
        attempts += 1;
        const ok = await run(() => postOnce(url, bytes, opts.timeoutMs, stats));
        if (i === 0) markFirst();
        if (ok) return { acked: true, attempts };
      }
      return { acked: false, attempts };
    } finally {
      stats.deliveries.done += 1;
    }
  })();
  return { firstDone, done };
}

// ---------------------------------------------------------------- progress

function progress(opts, stats, batchesAcked, startedAt) {
  if (opts.quiet) return { stop() {} };
  const tty = Boolean(process.stderr.isTTY);
  const line = () => {
    const r = stats.requests;
    const other = Object.entries(r.status)
      .filter(([s]) => s !== "200")
      .map(([s, n]) => `${s}:${n}`)
      .join(" ");
    const secs = ((performance.now() - startedAt) / 1000).toFixed(1);
    return (
      `simulate: ${secs}s · pushes ${stats.deliveries.done}/${stats.deliveries.started} done · ` +
      `batches acked ${batchesAcked()}/${opts.batches} · requests ${r.total} (200:${r.ok}` +
      `${other ? ` ${other}` : ""} timeout:${r.timeouts} error:${r.network_errors}) · ` +
      `waiting to retry ${stats.deliveries.waiting_retry}`
    );
  };
  const timer = setInterval(() => {
    if (tty) process.stderr.write(`\r${line()}\x1b[K`);
    else process.stderr.write(`${line()}\n`);
  }, tty ? 200 : 5000);
  return {
    stop() {
      clearInterval(timer);
      process.stderr.write(tty ? `\r${line()}\x1b[K\n` : `${line()}\n`);
    },
  };
}

// ---------------------------------------------------------------- reading back

async function api(opts, pathAndQuery) {
  const res = await withDeadline(30_000, async (signal) => {
    const r = await fetch(`${opts.base}${pathAndQuery}`, { headers: { authorization: `Bearer ${opts.fetchToken}` }, signal });
    return { status: r.status, text: await r.text() };
  });
  if (res === TIMEOUT) throw new UsageError(`no answer from ${pathAndQuery.split("?")[0]} within 30 s`);
  let json;
  try {
    json = JSON.parse(res.text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text: res.text };
}

const receiptsPath = (opts, after, limit) =>
  `/v1/streams/${encodeURIComponent(opts.stream)}/receipts?after=${after}&limit=${limit}`;

/** The stream's head before the run, so reading back skips what was there. */
async function headBefore(opts) {
  const res = await api(opts, receiptsPath(opts, 0, 1));
  if (res.status === 404) return 0;
  if (res.status === 401) throw new UsageError("the fetch token was refused (401)");
  if (res.status !== 200 || typeof res.json?.head_seq !== "number") {
    throw new UsageError(`cannot read stream ${opts.stream}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
  }
  return res.json.head_seq;
}

/** Every receipt after `after` (follows next_after), as [call_id, type] pairs. */
async function readBack(opts, after) {
  const out = [];
  for (let page = 0; page < 100_000; page++) {
    const res = await api(opts, receiptsPath(opts, after, 1000));
    if (res.status !== 200 || !Array.isArray(res.json?.receipts)) {
      throw new UsageError(`reading stream ${opts.stream} after ${after}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
    }
    for (const r of res.json.receipts) out.push([r.call_id, r.type]);
    if (!res.json.has_more) return out;
    if (!(res.json.next_after > after)) throw new Error("next_after did not advance");
    after = res.json.next_after;
  }
  throw new Error("too many pages");
}

// ---------------------------------------------------------------- the run

async function simulate(opts) {
  const random = prng(opts.seed);
  const samples = loadSamples(opts.product);
  const types = PRODUCT_TYPES[opts.product];
  const nextIds = callIdMaker();
  const q = new URLSearchParams({ token: opts.pushToken });
  const pushUrl = `${opts.base}/icc/${opts.product}${opts.app ? `/${opts.app}` : ""}?${q}`;
  const stats = newStats();
  const run = limiter(opts.concurrency);

  const startAfter = opts.fetchToken ? await headBefore(opts) : undefined;

  // Batches: one message type each (ICC pushes one type per subscribed address), taking the
  // product's types in turn.
  const batches = [];
  for (let b = 0; b < opts.batches; b++) {
    const type = types[b % types.length];
    const messages = [];
    for (let i = 0; i < opts.batchSize; i++) messages.push(makeMessage(samples[type], nextIds()));
    const keys = messages.map((m) => `${m.callId ?? m.call_id}\u0000${type}`);
    const resend = random() < opts.dupRate ? (random() < 0.5 ? "byte_identical" : "reserialized") : null;
    batches.push({ type, messages, keys, bytes: Buffer.from(JSON.stringify(messages), "utf8"), resend });
  }

  const outcome = batches.map(() => ({ acked: false, retried: false }));
  const resends = { byte_identical: 0, reserialized: 0, acked: 0 };
  const startedAt = performance.now();
  const bar = progress(opts, stats, () => outcome.filter((o) => o.acked).length, startedAt);
  const all = [];
  batches.forEach((batch, i) => {
    const first = deliver(opts, pushUrl, batch.bytes, run, stats);
    const record = (isResend) => ({ acked, attempts }) => {
      if (acked) outcome[i].acked = true;
      if (attempts > 1) outcome[i].retried = true;
      if (isResend && acked) resends.acked += 1;
    };
    all.push(first.done.then(record(false)));
    if (batch.resend) {
      resends[batch.resend] += 1;
      const bytes = batch.resend === "byte_identical" ? batch.bytes : reserialize(batch.messages);
      // The resend follows the first attempt of the original, as ICC's duplicate does.
      all.push(first.firstDone.then(() => deliver(opts, pushUrl, bytes, run, stats).done).then(record(true)));
    }
  });
  await Promise.all(all);
  bar.stop();
  const elapsedMs = Math.round(performance.now() - startedAt);

  const sentKeys = new Map();
  batches.forEach((b, i) => b.keys.forEach((k) => sentKeys.set(k, outcome[i])));
  const count = (pred) => [...sentKeys.values()].filter(pred).length;
  const receipts = {
    sent: sentKeys.size,
    acked: count((o) => o.acked),
    retried: count((o) => o.retried),
    given_up: count((o) => !o.acked),
  };
  const summary = {
    url: opts.base,
    product: opts.product,
    stream: opts.stream,
    seed: opts.seed,
    time_scale: opts.timeScale,
    elapsed_ms: elapsedMs,
    batches: {
      sent: batches.length,
      acked: outcome.filter((o) => o.acked).length,
      retried: outcome.filter((o) => o.retried).length,
      given_up: outcome.filter((o) => !o.acked).length,
    },
    resends: { sent: resends.byte_identical + resends.reserialized, ...resends },
    requests: stats.requests,
    receipts,
    read_back: false,
  };

  if (opts.fetchToken) {
    const ourCallIds = new Set([...sentKeys.keys()].map((k) => k.split("\u0000")[0]));
    const seen = new Map();
    let mistyped = 0;
    for (const [callId, type] of await readBack(opts, startAfter)) {
      if (!ourCallIds.has(callId)) continue;
      const key = `${callId}\u0000${type}`;
      if (!sentKeys.has(key)) mistyped += 1;
      else seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    receipts.stored = seen.size;
    receipts.stored_twice = [...seen.values()].filter((n) => n > 1).length;
    receipts.missing = count((o) => o.acked) - [...seen.keys()].filter((k) => sentKeys.get(k).acked).length;
    receipts.stored_not_acked = [...seen.keys()].filter((k) => !sentKeys.get(k).acked).length;
    receipts.mistyped = mistyped;
    summary.read_back = true;
  }

  const broken = summary.read_back && (receipts.missing > 0 || receipts.stored_twice > 0 || receipts.mistyped > 0);
  summary.exit_code = broken ? 1 : receipts.given_up > 0 ? 3 : 0;
  return summary;
}

// ---------------------------------------------------------------- output

function table(s) {
  const r = s.receipts;
  const b = s.batches;
  const rows = [
    ["sent", b.sent, r.sent],
    ["acked (200 in time)", b.acked, r.acked],
    ["retried", b.retried, r.retried],
    ["given up", b.given_up, r.given_up],
  ];
  if (s.read_back) {
    rows.push(
      ["stored", "", r.stored],
      ["duplicates (stored twice)", "", r.stored_twice],
      ["missing (acked, not stored)", "", r.missing],
    );
    if (r.stored_not_acked) rows.push(["stored, not acked", "", r.stored_not_acked]);
    if (r.mistyped) rows.push(["stored under another type", "", r.mistyped]);
  }
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const fmt = (x) => `  ${x[0].padEnd(w0)}  ${String(x[1]).padStart(8)}  ${String(x[2]).padStart(8)}`;
  const q = s.requests;
  const statuses = Object.entries(q.status).map(([k, v]) => `${k}: ${v}`).join(", ") || "none";
  const verdict = !s.read_back
    ? "not read back (no --fetch-token)"
    : s.exit_code === 1
      ? "FAIL: acked receipts lost or stored twice"
      : s.exit_code === 3
        ? "receipts given up after every retry (nothing acked was lost)"
        : "OK: every acked receipt stored exactly once";
  return [
    `ICC simulator: ${s.product} → ${s.url} (stream ${s.stream}), seed ${s.seed}, time scale ${s.time_scale}, ${(s.elapsed_ms / 1000).toFixed(1)} s`,
    fmt(["", "batches", "receipts"]),
    ...rows.map(fmt),
    `  resends: ${s.resends.sent} (${s.resends.byte_identical} byte-identical, ${s.resends.reserialized} re-serialized), ${s.resends.acked} acked`,
    `  requests: ${q.total} (${statuses}; timeouts: ${q.timeouts}, network errors: ${q.network_errors}, retries: ${q.retries})`,
    `  ${verdict}`,
  ].join("\n");
}

async function main() {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`simulate: ${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const summary = await simulate(opts);
    process.stdout.write(opts.json ? `${JSON.stringify(summary, null, 2)}\n` : `${table(summary)}\n`);
    return summary.exit_code;
  } catch (err) {
    if (err instanceof UsageError || err?.cause) {
      process.stderr.write(`simulate: ${err.message}${err.cause ? ` (${err.cause.message ?? err.cause})` : ""}\n`);
      return 2;
    }
    throw err;
  }
}

// A closed pipe (`… | head`) ends the output, not the run's verdict.
process.stdout.on("error", (err) => {
  if (err.code !== "EPIPE") throw err;
});
process.exitCode = await main();
