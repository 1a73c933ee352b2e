// The ICC simulator (scripts/simulate.mjs), run as users run it (`node scripts/simulate.mjs …`,
// a child process talking HTTP over loopback):
//  - against `wrangler dev` started like `npm start` (tests/e2e/wrangler_dev.mjs): every acked
//    receipt stored once, resends absorbed, and the stream read independently agrees;
//  - against a worker whose inbox fails by test configuration (harness.mjs startFlakyWorker):
//    503s, ICC's retries and giving up are reported as they happened, and a healed inbox
//    receives the retries;
//  - against a loopback server that acks and then loses or doubles receipts: the simulator
//    says so and exits 1.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import path from "node:path";
import { startFlakyWorker, ROOT, PRODUCT_TYPES, PUSH_TOKEN, FETCH_TOKEN, sleep } from "./harness.mjs";
import { startWranglerDev } from "./wrangler_dev.mjs";

const SIMULATE = path.join(ROOT, "scripts", "simulate.mjs");

/** Runs the simulator; resolves {code, stdout, stderr, summary (parsed with --json)}. Bounded. */
function simulate(args, { timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.PUSH_TOKEN; // the simulator's defaults; every run here names its tokens
    delete env.FETCH_TOKEN;
    const child = spawn(process.execPath, [SIMULATE, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`simulator still running after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      let summary;
      if (args.includes("--json")) {
        try {
          summary = JSON.parse(stdout);
        } catch {
          return reject(new Error(`--json output is not JSON (exit ${code}):\n${stdout}\n${stderr}`));
        }
      }
      resolve({ code, stdout, stderr, summary });
    });
  });
}

const common = (url, extra = []) => ["--url", url, "--push-token", PUSH_TOKEN, "--fetch-token", FETCH_TOKEN, ...extra];

/** Every receipt of a stream, read through the fetch API (independent of the simulator). */
async function readStream(url, stream) {
  const out = [];
  let after = 0;
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${url}/v1/streams/${stream}/receipts?after=${after}&limit=1000`, {
      headers: { authorization: `Bearer ${FETCH_TOKEN}` },
    });
    assert.equal(res.status, 200, `read ${stream}`);
    const page = await res.json();
    out.push(...page.receipts);
    if (!page.has_more) return out;
    after = page.next_after;
  }
  throw new Error("too many pages");
}

test("against wrangler dev (as npm start runs it): every acked receipt stored once, resends absorbed", { timeout: 180_000 }, async () => {
  const dev = await startWranglerDev();
  try {
    // The three products, the general address and two app addresses.
    const runs = [
      { product: "llm", app: undefined, stream: "default", batches: 10, size: 3, seed: 11 },
      { product: "agent", app: "sim-agent", stream: "sim-agent", batches: 9, size: 2, seed: 12 },
      { product: "bot", app: "sim_bot", stream: "sim_bot", batches: 12, size: 2, seed: 13 },
    ];
    for (const r of runs) {
      const { code, summary: s, stderr } = await simulate(common(dev.url, [
        "--product", r.product, ...(r.app ? ["--app", r.app] : []),
        "--batches", String(r.batches), "--batch-size", String(r.size),
        "--dup-rate", "0.5", "--time-scale", "120", "--concurrency", "4", "--seed", String(r.seed), "--json",
      ]));
      const label = `${r.product}: ${JSON.stringify(s)}`;
      assert.equal(code, 0, label);
      assert.equal(s.exit_code, 0, label);
      assert.equal(s.read_back, true, label);
      assert.equal(s.stream, r.stream, label);
      const n = r.batches * r.size;
      assert.equal(s.receipts.sent, n, label);
      assert.equal(s.batches.sent, r.batches, label);
      // A healthy inbox acks everything (a slow first answer is retried, not lost).
      assert.equal(s.receipts.given_up, 0, label);
      assert.equal(s.receipts.acked, n, label);
      assert.equal(s.receipts.stored, s.receipts.acked, label);
      assert.equal(s.receipts.missing, 0, label);
      assert.equal(s.receipts.stored_twice, 0, label);
      assert.equal(s.receipts.mistyped, 0, label);
      // Duplicates were really sent, both kinds, and answered.
      assert.ok(s.resends.byte_identical > 0 && s.resends.reserialized > 0, label);
      assert.equal(s.resends.acked, s.resends.sent, label);
      assert.ok(s.requests.total >= r.batches + s.resends.sent, label);
      assert.equal(s.requests.ok, r.batches + s.resends.sent, label);
      // The progress line went to stderr (periodic lines when not a terminal; always a last one).
      assert.match(stderr, new RegExp(`batches acked ${r.batches}/${r.batches}`), stderr);

      // The stream, read independently: exactly the simulator's receipts, once each, every type.
      const stored = await readStream(dev.url, r.stream);
      assert.equal(stored.length, n, `${r.stream} holds ${stored.length}`);
      assert.equal(new Set(stored.map((x) => `${x.call_id}|${x.type}`)).size, n);
      assert.deepEqual([...new Set(stored.map((x) => x.type))].sort(), [...PRODUCT_TYPES[r.product]].sort());
      assert.ok(stored.every((x) => x.product === r.product && x.source === "push"));
    }

    // The human-readable table of a further run on the same stream (earlier receipts are not counted).
    const { code, stdout } = await simulate(common(dev.url, [
      "--product", "llm", "--batches", "4", "--batch-size", "2", "--dup-rate", "1", "--time-scale", "120", "--seed", "5", "--quiet",
    ]));
    assert.equal(code, 0, stdout);
    assert.match(stdout, /^ {2}sent +4 +8$/m, stdout);
    assert.match(stdout, /^ {2}acked \(200 in time\) +4 +8$/m, stdout);
    assert.match(stdout, /^ {2}stored +8$/m, stdout);
    assert.match(stdout, /^ {2}duplicates \(stored twice\) +0$/m, stdout);
    assert.match(stdout, /^ {2}missing \(acked, not stored\) +0$/m, stdout);
    assert.match(stdout, /resends: 4 /, stdout);
    assert.match(stdout, /OK: every acked receipt stored exactly once/, stdout);
    assert.ok(!stdout.includes(PUSH_TOKEN) && !stdout.includes(FETCH_TOKEN), "tokens printed");
    assert.equal((await readStream(dev.url, "default")).length, 30 + 8);
  } finally {
    await dev.stop();
  }
});

test("an inbox that stays down: every push 503, retried 3 times, given up, nothing stored, exit 3", { timeout: 60_000 }, async () => {
  const w = await startFlakyWorker("throw");
  try {
    const url = String(await w.mf.ready).replace(/\/$/, "");
    // Retries after 1, 5, 10 minutes ÷ 2000 = 30, 150, 300 ms.
    const { code, summary: s } = await simulate(common(url, [
      "--product", "bot", "--batches", "4", "--batch-size", "2", "--dup-rate", "0", "--time-scale", "2000", "--json", "--quiet",
    ]));
    const label = JSON.stringify(s);
    assert.equal(code, 3, label);
    assert.equal(s.exit_code, 3, label);
    assert.deepEqual(s.batches, { sent: 4, acked: 0, retried: 4, given_up: 4 });
    assert.equal(s.receipts.sent, 8, label);
    assert.equal(s.receipts.acked, 0, label);
    assert.equal(s.receipts.given_up, 8, label);
    assert.equal(s.receipts.retried, 8, label);
    // 4 batches × (1 + 3 retries), each answered 503 by the worker.
    assert.equal(s.requests.total, 16, label);
    assert.equal(s.requests.retries, 12, label);
    assert.deepEqual(s.requests.status, { 503: 16 }, label);
    assert.equal(s.requests.ok, 0, label);
    // Nothing was acked, so nothing is missing; and nothing was stored.
    assert.equal(s.receipts.stored, 0, label);
    assert.equal(s.receipts.missing, 0, label);
    assert.equal((await w.fault("default")).failed, 16);
  } finally {
    await w.dispose();
  }
});

test("an inbox that recovers: first attempts 503, ICC's retry stores every receipt once, exit 0", { timeout: 60_000 }, async () => {
  const w = await startFlakyWorker("500");
  try {
    const url = String(await w.mf.ready).replace(/\/$/, "");
    // Retries after 1, 5, 10 minutes ÷ 60 = 1, 5, 10 s: the inbox is healed once every first
    // attempt has failed, so the first retry goes through.
    const run = simulate(common(url, [
      "--product", "llm", "--app", "recover", "--batches", "5", "--batch-size", "2", "--dup-rate", "0",
      "--time-scale", "60", "--json", "--quiet",
    ]));
    const deadline = Date.now() + 20_000;
    while ((await w.fault("recover")).failed < 5) {
      assert.ok(Date.now() < deadline, "first attempts never reached the inbox");
      await sleep(50);
    }
    await w.heal("recover");
    const { code, summary: s } = await run;
    const label = JSON.stringify(s);
    assert.equal(code, 0, label);
    assert.deepEqual(s.batches, { sent: 5, acked: 5, retried: 5, given_up: 0 });
    assert.equal(s.receipts.acked, 10, label);
    assert.equal(s.receipts.retried, 10, label);
    assert.equal(s.receipts.stored, 10, label);
    assert.equal(s.receipts.missing, 0, label);
    assert.equal(s.receipts.stored_twice, 0, label);
    assert.ok(s.requests.status["503"] >= 5, label);
    assert.equal(s.requests.ok, 5, label);
    assert.equal((await w.allReceipts("recover")).length, 10);
  } finally {
    await w.dispose();
  }
});

test("a receiver that acks and then loses or doubles receipts, or never answers: reported", { timeout: 60_000 }, async () => {
  // Loopback stand-in for a broken receiver (not the worker): acks every llm push, then serves a
  // stream without the first message it got and with the second one twice; never answers an
  // agent push.
  const got = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/icc/agent") return; // held until the client gives up
    res.setHeader("content-type", "application/json");
    if (req.method === "POST" && url.pathname === "/icc/llm" && url.searchParams.get("token") === PUSH_TOKEN) {
      for (const m of JSON.parse(Buffer.concat(chunks).toString("utf8"))) {
        if (!got.some((g) => g.call_id === m.call_id)) got.push(m);
      }
      return res.end(JSON.stringify({ code: 0, msg: "Success" }));
    }
    if (url.pathname === "/v1/streams/default/receipts" && req.headers.authorization === `Bearer ${FETCH_TOKEN}`) {
      const kept = [...got.slice(1), got[1]];
      const receipts = url.searchParams.get("after") === "0" && url.searchParams.get("limit") !== "1"
        ? kept.map((m, i) => ({ seq: i + 1, call_id: m.call_id, type: "record_file" in m ? "LlmSmartCallRecord" : "LlmSmartCallReport" }))
        : [];
      return res.end(JSON.stringify({ receipts, next_after: receipts.length, head_seq: 0, oldest_seq: 0, has_more: false }));
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ code: 404, msg: "not found" }));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${server.address().port}`;
    const { code, summary: s } = await simulate(common(url, [
      "--batches", "3", "--batch-size", "2", "--dup-rate", "0", "--concurrency", "1", "--json", "--quiet",
    ]));
    const label = JSON.stringify(s);
    assert.equal(got.length, 6, label);
    assert.equal(code, 1, label);
    assert.equal(s.receipts.acked, 6, label);
    assert.equal(s.receipts.stored, 5, label);
    assert.equal(s.receipts.missing, 1, label);
    assert.equal(s.receipts.stored_twice, 1, label);

    got.length = 0;
    const table = await simulate(common(url, ["--batches", "1", "--batch-size", "2", "--dup-rate", "0", "--quiet"]));
    assert.equal(table.code, 1, table.stdout);
    assert.match(table.stdout, /FAIL: acked receipts lost or stored twice/);

    // No answer at all: each attempt is given up after 700 ms, 4 attempts, then the batch.
    const t0 = performance.now();
    const silent = await simulate(common(url, [
      "--product", "agent", "--batches", "2", "--batch-size", "1", "--dup-rate", "0", "--time-scale", "6000", "--json", "--quiet",
    ]));
    const took = performance.now() - t0;
    const ss = silent.summary;
    assert.equal(silent.code, 3, JSON.stringify(ss));
    assert.equal(ss.requests.total, 8, JSON.stringify(ss));
    assert.equal(ss.requests.timeouts, 8, JSON.stringify(ss));
    assert.deepEqual(ss.requests.status, {});
    assert.deepEqual(ss.batches, { sent: 2, acked: 0, retried: 2, given_up: 2 });
    assert.equal(ss.receipts.missing, 0);
    // 4 sequential attempts of 700 ms each (both batches in parallel) plus 160 ms of retry delays.
    assert.ok(took >= 4 * 700, `gave up after ${took} ms`);
    assert.ok(took < 20_000, `took ${took} ms`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
