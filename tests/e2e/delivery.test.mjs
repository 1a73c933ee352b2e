// Delivery (SPEC.md "Delivery: queue and webhook"): with FORWARD_QUEUE=true every stored receipt
// is forwarded from its inbox to the `icc-receipts` queue (Miniflare's local Queues, bound as in
// wrangler.toml), and with WEBHOOK_URL the Worker's consumer POSTs each one to a loopback
// node:http destination, signed per Standard Webhooks (verified with the `standardwebhooks`
// package). Retries, dead letters, redelivery and the stats are checked against real outcomes.
// WEBHOOK_FIRST_BACKOFF_S=1 keeps retries short.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { startQueueWorker, sampleWithCallId, assertSuccess, sleep } from "./harness.mjs";

const SECRET = `whsec_${randomBytes(32).toString("base64")}`;

/** A loopback webhook destination; `answer(n)` gives the status of the n-th request (1-based). */
async function destination(answer = () => 200) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const n = requests.length + 1;
      const status = answer(n);
      requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), status });
      if (status === "hang") return; // never answers
      res.writeHead(status, { "content-type": "text/plain" });
      res.end("ok");
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}/hook`;
  return {
    url,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

async function until(what, fn, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function stats(w, stream = "default") {
  const res = await w.api("GET", `/v1/streams/${stream}/stats`);
  assert.equal(res.status, 200, res.text);
  return res.json.streams[stream];
}

function vars(dest, extra = {}) {
  return {
    FORWARD_QUEUE: "true",
    WEBHOOK_URL: dest.url,
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_FIRST_BACKOFF_S: "1",
    ...extra,
  };
}

test("forwarding off sends nothing; switched on, the backlog and new receipts are delivered signed, as the pull API renders them", { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "delivery-"));
  const dest = await destination();
  let w = await startQueueWorker(vars(dest, { FORWARD_QUEUE: "false" }), { persistDir: dir });
  try {
    assertSuccess(await w.push("llm", null, [sampleWithCallId("LlmSmartCallReport", "call-a")]));
    assertSuccess(await w.push("bot", null, [sampleWithCallId("VoiceReportAiccs", "call-b")]));
    await sleep(1500);
    assert.equal(dest.requests.length, 0, "nothing is sent while FORWARD_QUEUE=false");
    let s = await stats(w);
    assert.equal(s.forwarded_through, 0);
    assert.equal(s.forward_lag, 2);
    assert.equal(s.webhook_delivered, 0);
    await w.dispose();

    // Switched on: the backlog and a new receipt (and a duplicate of it) are forwarded.
    w = await startQueueWorker(vars(dest), { persistDir: dir });
    const c = [sampleWithCallId("LlmSmartCallReport", "call-c")];
    assertSuccess(await w.push("llm", null, c));
    assertSuccess(await w.push("llm", null, c));
    const stored = await w.allReceipts("default");
    assert.equal(stored.length, 3);
    await until("three deliveries", () => new Set(dest.requests.map((r) => r.headers["webhook-id"])).size === 3);

    const wh = new Webhook(SECRET);
    const byId = new Map(stored.map((r) => [r.id, r]));
    for (const req of dest.requests) {
      assert.equal(req.status, 200);
      const payload = wh.verify(req.body, req.headers);
      const receipt = byId.get(req.headers["webhook-id"]);
      assert.ok(receipt, `delivered id ${req.headers["webhook-id"]} is a stored receipt`);
      assert.deepEqual(payload.data, receipt, "data is the receipt exactly as the pull API returns it");
      assert.equal(payload.type, receipt.type);
      assert.equal(payload.timestamp, receipt.received_at);
      // Altered body, id or timestamp: the signature no longer verifies.
      assert.throws(() => wh.verify(req.body.replace(receipt.id, receipt.id + "x"), req.headers));
      assert.throws(() => wh.verify(req.body, { ...req.headers, "webhook-id": "msg_other" }));
      assert.throws(() =>
        wh.verify(req.body, { ...req.headers, "webhook-timestamp": String(Number(req.headers["webhook-timestamp"]) - 1) }),
      );
    }
    s = await until("stats settle", async () => {
      const v = await stats(w);
      return v.webhook_delivered === 3 ? v : null;
    });
    assert.equal(s.forwarded_through, s.head_seq);
    assert.equal(s.forward_lag, 0);
    assert.equal(s.forward_errors, 0);
    assert.equal(s.webhook_retried, 0);
    assert.equal(s.dead_letters, 0);
  } finally {
    await w.dispose();
    await dest.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a destination answering 500, then hanging past the timeout, then 200 is retried and delivered", { timeout: 90_000 }, async () => {
  const dest = await destination((n) => (n === 1 ? 500 : n === 2 ? "hang" : 200));
  const w = await startQueueWorker(vars(dest, { WEBHOOK_TIMEOUT_MS: "500" }));
  try {
    assertSuccess(await w.push("llm", null, [sampleWithCallId("LlmSmartCallReport", "retry-1")]));
    await until("delivered after two failures", () => dest.requests.some((r) => r.status === 200));
    const ids = new Set(dest.requests.map((r) => r.headers["webhook-id"]));
    assert.equal(ids.size, 1, "the same webhook-id on every attempt");
    const s = await until("stats", async () => {
      const v = await stats(w);
      return v.webhook_delivered === 1 ? v : null;
    });
    assert.equal(s.webhook_retried, 2);
    assert.equal(s.dead_letters, 0);
    assert.equal(dest.requests.length, 3);
  } finally {
    await w.dispose();
    await dest.close();
  }
});

test("400 is dead-lettered at once, listed, redelivered once the destination heals, then gone", { timeout: 90_000 }, async () => {
  let healed = false;
  const dest = await destination(() => (healed ? 200 : 400));
  const w = await startQueueWorker(vars(dest));
  try {
    assertSuccess(await w.push("llm", null, [sampleWithCallId("LlmSmartCallReport", "dead-1")]));
    const [receipt] = await w.allReceipts("default");
    const list = await until("a dead letter", async () => {
      const res = await w.api("GET", "/v1/streams/default/dead-letters");
      assert.equal(res.status, 200, res.text);
      return res.json.items.length ? res.json : null;
    });
    assert.equal(dest.requests.length, 1, "400 is not retried");
    assert.equal(list.items.length, 1);
    const d = list.items[0];
    assert.equal(d.seq, receipt.seq);
    assert.equal(d.id, receipt.id);
    assert.equal(d.type, receipt.type);
    assert.equal(d.attempts, 1);
    assert.equal(d.last_status, 400);
    assert.equal(d.last_error, "HTTP 400");
    assert.match(d.first_attempt_at, /Z$/);
    assert.match(d.last_attempt_at, /Z$/);
    assert.equal(list.next_after, receipt.seq);
    assert.equal(list.has_more, false);
    assert.equal((await stats(w)).dead_letters, 1);

    healed = true;
    const re = await w.api("POST", `/v1/streams/default/dead-letters/redeliver?seq=${receipt.seq}`);
    assert.equal(re.status, 200, re.text);
    assert.equal(re.json.redelivered, 1);
    await until("the dead letter leaves the list", async () => {
      const res = await w.api("GET", "/v1/streams/default/dead-letters");
      return res.json.items.length === 0;
    });
    assert.equal(dest.requests.at(-1).status, 200);
    assert.equal(dest.requests.at(-1).headers["webhook-id"], receipt.id);
    const s = await stats(w);
    assert.equal(s.dead_letters, 0);
    assert.equal(s.webhook_delivered, 1);
  } finally {
    await w.dispose();
    await dest.close();
  }
});

test("/healthz reports a webhook without a secret or with a weak one", { timeout: 30_000 }, async () => {
  for (const secret of [undefined, `whsec_${randomBytes(8).toString("base64")}`]) {
    const w = await startQueueWorker({ WEBHOOK_URL: "http://127.0.0.1:9/hook", WEBHOOK_SECRET: secret });
    try {
      const res = await w.request("GET", "/healthz");
      assert.equal(res.status, 503, res.text);
      assert.ok(res.json.problems.some((p) => p.includes("WEBHOOK_SECRET")), res.text);
      if (secret) assert.ok(!res.text.includes(secret.slice(6)), "the secret is never echoed");
    } finally {
      await w.dispose();
    }
  }
});
