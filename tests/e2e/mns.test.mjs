// MNS consumption mode, end to end: the built worker (Miniflare, workerd) consumes receipts from
// a local fake of Dybaseapi + MNS (fake_alibaba.mjs) that speaks the documented protocol on
// loopback and verifies every signature the worker makes.
//
// Polls are driven deterministically by calling the MnsPuller Durable Object's internal
// `POST /poll` route; one test drives the real path instead (cron → kick → alarm loop).

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createHash } from "node:crypto";
import { Miniflare, Log, LogLevel } from "miniflare";
import {
  SCRIPT_PATH,
  DEFAULT_BINDINGS,
  FETCH_TOKEN,
  PUSH_TOKEN,
  RFC3339_UTC,
  fixture,
  validateReceipt,
  expectedId,
  sleep,
  mainWorkerOptions,
} from "./harness.mjs";
import {
  startFakeAlibaba,
  rpcSign,
  rpcStringToSign,
  rpcCanonicalizedQuery,
  mnsSign,
  mnsStringToSign,
  percentEncode,
  chinaTime,
  parseChinaTime,
  MNS_API_VERSION,
} from "./fake_alibaba.mjs";

const AK_ID = "LTAI5tFakeUserKey0000001";
const AK_SECRET = "fakeUserSecret-0123456789abcdefXYZ";
const Q_LLM = "Alicom-Queue-1-LlmSmartCallReport";
const Q_VOICE = "Alicom-Queue-1-VoiceReportAiccs";
const Q_MISSING = "Alicom-Queue-1-VoiceCallReportAiccs";
const MNS_QUEUES = `LlmSmartCallReport:${Q_LLM},VoiceReportAiccs:${Q_VOICE}:shop`;
const T = { timeout: 60_000 };

// An inline JS Durable Object bound as INBOX in front of the real Inbox (fault injection by
// configuration only). It asks the fake's control endpoint what to do with each /commit:
//   ok          forward (reporting commit_start / commit_done to the fake, commit held 300 ms first)
//   fail        answer 500 without committing (the store failed)
//   lose_answer forward (it commits), then answer 500 (the commit is durable, its answer lost)
// Every other request (reads, stats) is forwarded unchanged.
function proxyInboxWorker(controlUrl) {
  return {
    name: "inbox-proxy",
    modules: true,
    compatibilityDate: "2026-04-01",
    bindings: { CONTROL: controlUrl },
    script: `
      export class Inbox {
        constructor(state, env) { this.state = state; this.env = env; }
        async fetch(request) {
          const url = new URL(request.url);
          const name = request.headers.get("x-stream") ?? this.state.id.name ?? "default";
          const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
          const copy = () => new Request(request.url, { method: request.method, headers: request.headers, body });
          const real = () => this.env.REAL.get(this.env.REAL.idFromName(name)).fetch(copy());
          if (url.pathname !== "/commit") return real();
          const mode = await (await fetch(this.env.CONTROL + "/__control/inbox")).text();
          if (mode === "fail") return new Response("injected inbox failure", { status: 500 });
          await fetch(this.env.CONTROL + "/__control/commit_start");
          await new Promise((r) => setTimeout(r, 300));
          const res = await real();
          const text = await res.text();
          await fetch(this.env.CONTROL + "/__control/commit_done?status=" + res.status);
          if (mode === "lose_answer") return new Response("answer lost", { status: 500 });
          return new Response(text, { status: res.status, headers: res.headers });
        }
      }
      export default { async fetch() { return new Response("inbox proxy"); } };
    `,
    durableObjects: { REAL: { className: "Inbox", scriptName: "icc-edge-inbox", useSQLite: true } },
  };
}

/**
 * Starts a fake Alibaba and the worker wired to it. opts: {bindings, proxy, fake: fake options}.
 * Returns a client with poll(queue), cron(), api helpers and dispose().
 */
async function startMns({ bindings = {}, proxy = false, fake: fakeOpts = {} } = {}) {
  if (!existsSync(SCRIPT_PATH)) throw new Error(`${SCRIPT_PATH} missing: run bash scripts/build.sh`);
  const fake = await startFakeAlibaba({
    accessKeyId: AK_ID,
    accessKeySecret: AK_SECRET,
    queues: [Q_LLM, Q_VOICE],
    visibilityTimeoutMs: 1000,
    ...fakeOpts,
  });
  const b = {
    ...DEFAULT_BINDINGS,
    MNS_QUEUES,
    ALIBABA_ACCESS_KEY_ID: AK_ID,
    ALIBABA_ACCESS_KEY_SECRET: AK_SECRET,
    MNS_ENDPOINT: fake.url,
    DYBASEAPI_ENDPOINT: fake.url,
    MNS_WAIT_S: "0",
    ...bindings,
  };
  for (const [k, v] of Object.entries(b)) if (v === undefined || v === null) delete b[k];
  const logChunks = [];
  const handleRuntimeStdio = (stdout, stderr) => {
    for (const s of [stdout, stderr])
      s.on("data", (c) => {
        logChunks.push(c.toString("utf8"));
        if (process.env.E2E_LOG) process.stderr.write(c);
      });
  };
  const log = new Log(process.env.E2E_LOG ? LogLevel.DEBUG : LogLevel.NONE);
  const options = proxy
    ? { workers: [mainWorkerOptions(b, { className: "Inbox", scriptName: "inbox-proxy", useSQLite: true }), proxyInboxWorker(fake.url)] }
    : mainWorkerOptions(b, { className: "Inbox", useSQLite: true });
  let mf;
  try {
    mf = new Miniflare({ log, handleRuntimeStdio, ...options });
    await mf.ready;
  } catch (e) {
    await fake.close();
    throw e;
  }
  const base = "http://inbox.test";
  async function request(method, p, { body, bearer } = {}) {
    const headers = {};
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    const res = await mf.dispatchFetch(base + p, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: res.status, text, json };
  }
  const api = (p) => request("GET", p, { bearer: FETCH_TOKEN });
  async function receipts(stream) {
    const res = await api(`/v1/streams/${stream}/receipts?after=0&limit=1000`);
    if (res.status === 404) return [];
    assert.equal(res.status, 200, `read ${stream}: ${res.status} ${res.text}`);
    for (const r of res.json.receipts) {
      validateReceipt(r);
      assert.equal(r.stream, stream);
    }
    return res.json.receipts;
  }
  async function push(product, app, body) {
    return request("POST", `/icc/${product}${app ? `/${app}` : ""}?token=${encodeURIComponent(PUSH_TOKEN)}`, { body });
  }
  const ns = await mf.getDurableObjectNamespace("MNS_PULLER");
  async function puller(queue, method, route) {
    const stub = ns.get(ns.idFromName(queue));
    const res = await stub.fetch(`https://mns${route}`, { method, headers: { "x-queue": queue } });
    const text = await res.text();
    assert.equal(res.status, 200, `puller ${route}: ${res.status} ${text}`);
    return JSON.parse(text);
  }
  return {
    mf,
    fake,
    request,
    api,
    receipts,
    push,
    logs: () => logChunks.join(""),
    /** One poll cycle of the queue's puller, now. */
    poll: (queue) => puller(queue, "POST", "/poll"),
    pullerStats: (queue) => puller(queue, "GET", "/stats"),
    async mnsStats() {
      const res = await api("/v1/stats");
      assert.equal(res.status, 200, res.text);
      assert.ok(res.json.mns && typeof res.json.mns === "object", `no mns section: ${res.text}`);
      return res.json.mns;
    },
    async quarantine(stream) {
      const res = await api(`/v1/streams/${stream}/quarantine?after=0&limit=100`);
      assert.equal(res.status, 200, res.text);
      return res.json.items;
    },
    async dispose() {
      try {
        await mf.dispose();
      } finally {
        await fake.close();
      }
    },
  };
}

async function withMns(opts, fn) {
  const w = await startMns(opts);
  try {
    return await fn(w);
  } finally {
    await w.dispose();
  }
}

/** The fake saw only well-signed requests. */
function assertAllSigned(fake) {
  assert.equal(fake.counters.signatureFailures, 0, `signature failures: ${JSON.stringify(fake.rejections)}`);
}

function assertPoll(r, expected) {
  for (const [k, v] of Object.entries(expected)) assert.deepEqual(r[k], v, `poll.${k}: ${JSON.stringify(r)}`);
}

async function until(what, fn, ms = 10_000, every = 100) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(every);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** The worker's console output holds no credentials and no message bodies. */
function assertNoSecretsLogged(w) {
  const logs = w.logs();
  const secrets = [AK_SECRET];
  for (const t of w.fake.tokens.values()) secrets.push(t.secret, t.securityToken);
  for (const s of secrets) assert.ok(!logs.includes(s), "a secret or security token was logged");
  for (const q of w.fake.queues.values()) for (const m of q.messages) assert.ok(!logs.includes(m.body), "a message body was logged");
  assert.ok(!logs.includes("15*****0614") && !logs.includes("130****0000"), "phone numbers logged");
}

const without = (r, ...keys) => Object.fromEntries(Object.entries(r).filter(([k]) => !keys.includes(k)));

// ------------------------------------------------------------------ the fake's own signing

describe("fake Alibaba: signing cross-checked against Alibaba's documented examples", () => {
  test("POP RPC signature V1.0 (ECS DescribeDedicatedHosts example)", T, () => {
    const params = [
      ["Timestamp", "2023-03-13T08:34:30Z"],
      ["Action", "DescribeDedicatedHosts"],
      ["Version", "2014-05-26"],
      ["Format", "JSON"],
      ["AccessKeyId", "testid"],
      ["SignatureNonce", "edb2b34af0af9a6d14deaf7c1a5315eb"],
      ["SignatureMethod", "HMAC-SHA1"],
      ["SignatureVersion", "1.0"],
      ["RegionId", "cn-beijing"],
    ];
    assert.equal(
      rpcCanonicalizedQuery(params),
      "AccessKeyId=testid&Action=DescribeDedicatedHosts&Format=JSON&RegionId=cn-beijing&SignatureMethod=HMAC-SHA1&SignatureNonce=edb2b34af0af9a6d14deaf7c1a5315eb&SignatureVersion=1.0&Timestamp=2023-03-13T08%3A34%3A30Z&Version=2014-05-26",
    );
    assert.ok(rpcStringToSign("GET", params).startsWith("GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeDedicatedHosts"));
    assert.equal(rpcSign("GET", params, "testsecret"), "9NaGiOspFP5UPcwX8Iwt2YJXXuk=");
    assert.equal(percentEncode("a b*~'()!/+"), "a%20b%2A~%27%28%29%21%2F%2B");
  });

  test("MNS signature (GET /MyQueue example) and China time", T, () => {
    const sts = mnsStringToSign({ verb: "GET", date: "Thu, 09 Jul 2015 03:01:34 GMT", mnsHeaders: [["x-mns-version", "2015-06-06"]], resource: "/MyQueue" });
    assert.equal(sts, "GET\n\n\nThu, 09 Jul 2015 03:01:34 GMT\nx-mns-version:2015-06-06\n/MyQueue");
    const sig = mnsSign("TestAccessSecret", sts);
    assert.ok(sig.startsWith("uwx3yeWoILzgmvesW0BQSgfM"), "matches the documented (masked) signature");
    assert.equal(sig, "uwx3yeWoILzgmvesW0BQSgfM7b8=");
    assert.equal(chinaTime(Date.UTC(2025, 0, 6, 9, 33, 37)), "2025-01-06 17:33:37");
    assert.equal(parseChinaTime("2025-01-06 17:33:37"), Date.UTC(2025, 0, 6, 9, 33, 37));
  });

  test("the fake refuses bad signatures with Alibaba's error shapes", T, async () => {
    const fake = await startFakeAlibaba({ accessKeyId: AK_ID, accessKeySecret: AK_SECRET, queues: [Q_VOICE] });
    try {
      const rpc = async (secret, extra = []) => {
        const params = [
          ["AccessKeyId", AK_ID],
          ["Action", "QueryTokenForMnsQueue"],
          ["Format", "JSON"],
          ["MessageType", "VoiceReportAiccs"],
          ["QueueName", Q_VOICE],
          ["RegionId", "cn-hangzhou"],
          ["SignatureMethod", "HMAC-SHA1"],
          ["SignatureNonce", Math.random().toString(16).slice(2)],
          ["SignatureVersion", "1.0"],
          ["Timestamp", new Date().toISOString().replace(/\.\d+Z$/, "Z")],
          ["Version", "2017-05-25"],
          ...extra,
        ];
        const q = `${rpcCanonicalizedQuery(params)}&Signature=${percentEncode(rpcSign("POST", params, secret))}`;
        const res = await fetch(`${fake.url}/?${q}`, { method: "POST" });
        return { status: res.status, json: await res.json() };
      };
      const bad = await rpc("wrong-secret");
      assert.equal(bad.status, 400);
      assert.equal(bad.json.Code, "SignatureDoesNotMatch");
      assert.equal(typeof bad.json.RequestId, "string");
      const ok = await rpc(AK_SECRET);
      assert.equal(ok.status, 200, JSON.stringify(ok.json));
      assert.equal(ok.json.Code, "OK");
      const dto = ok.json.MessageTokenDTO;
      assert.match(dto.AccessKeyId, /^STS\./);
      assert.match(dto.ExpireTime, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      assert.ok(Math.abs(parseChinaTime(dto.ExpireTime) - Date.now() - 3600_000) < 2000, "ExpireTime is China time");

      const mns = async (secret, token = dto.SecurityToken) => {
        const date = new Date().toUTCString();
        const resource = `/queues/${Q_VOICE}/messages?numOfMessages=16&waitseconds=0`;
        const sig = mnsSign(secret, mnsStringToSign({ verb: "GET", date, mnsHeaders: [["x-mns-version", MNS_API_VERSION]], resource }));
        const res = await fetch(fake.url + resource, {
          headers: { date, "x-mns-version": MNS_API_VERSION, authorization: `MNS ${dto.AccessKeyId}:${sig}`, "security-token": token },
        });
        return { status: res.status, text: await res.text() };
      };
      const badMns = await mns("nope");
      assert.equal(badMns.status, 403);
      assert.match(badMns.text, /<Error xmlns="http:\/\/mns\.aliyuncs\.com\/doc\/v1\/"><Code>SignatureDoesNotMatch<\/Code>/);
      const badToken = await mns(dto.AccessKeySecret, "other");
      assert.equal(badToken.status, 403);
      assert.match(badToken.text, /<Code>SecurityTokenMalformed<\/Code>/);
      const empty = await mns(dto.AccessKeySecret);
      assert.equal(empty.status, 404);
      assert.match(empty.text, /<Code>MessageNotExist<\/Code>/);
      assert.equal(fake.counters.signatureFailures, 2);
    } finally {
      await fake.close();
    }
  });
});

// ------------------------------------------------------------------ the worker against the fake

describe("MNS consumption mode (worker ↔ fake Dybaseapi/MNS)", () => {
  test("receipts flow into the inbox exactly once, normalized as for push, then are deleted", T, () =>
    withMns({}, async (w) => {
      const llm = fixture("LlmSmartCallReport")[0];
      const voice = fixture("VoiceReportAiccs")[0];
      const m1 = w.fake.enqueue(Q_LLM, llm);
      const m2 = w.fake.enqueue(Q_VOICE, voice);
      assert.equal(Buffer.from(m1.messageBody, "base64").toString("utf8"), JSON.stringify(llm), "enqueued as base64 of JSON");
      // The same receipts pushed to other streams, to compare the normalization.
      assert.equal((await w.push("llm", "pushcopy", [llm])).status, 200);
      assert.equal((await w.push("bot", "pushcopy", [voice])).status, 200);

      const r1 = await w.poll(Q_LLM);
      assertPoll(r1, { received: 1, stored: 1, duplicate: 0, deleted: 1, quarantined: 0, error: null });
      const r2 = await w.poll(Q_VOICE);
      assertPoll(r2, { received: 1, stored: 1, duplicate: 0, deleted: 1, quarantined: 0, error: null });

      assert.deepEqual(w.fake.queueState(Q_LLM), { total: 0, visible: 0, inflight: 0 });
      assert.deepEqual(w.fake.queueState(Q_VOICE), { total: 0, visible: 0, inflight: 0 });
      assert.equal(w.fake.counters.deleted, 2);
      assert.equal(w.fake.counters.tokenCalls, 2, "one token per queue's MessageType");
      assert.deepEqual(
        w.fake.events_of("token").map((e) => [e.messageType, e.queueName]).sort(),
        [["LlmSmartCallReport", Q_LLM], ["VoiceReportAiccs", Q_VOICE]],
      );
      assertAllSigned(w.fake);
      assert.equal(w.fake.counters.authFailures, 0, JSON.stringify(w.fake.rejections));

      const def = await w.receipts("default");
      const shop = await w.receipts("shop");
      const copies = await w.receipts("pushcopy");
      assert.equal(def.length, 1);
      assert.equal(shop.length, 1);
      for (const [r, m, type, src] of [
        [def[0], m1, "LlmSmartCallReport", llm],
        [shop[0], m2, "VoiceReportAiccs", voice],
      ]) {
        assert.equal(r.source, "mns");
        assert.equal(r.mns_message_id, m.messageId);
        assert.equal(r.type, type);
        assert.deepEqual(r.raw, src);
        assert.match(r.received_at, RFC3339_UTC);
        const pushed = copies.find((c) => c.type === type);
        assert.ok(pushed, `push copy of ${type}`);
        assert.equal(pushed.source, "push");
        assert.equal(pushed.mns_message_id, undefined);
        assert.deepEqual(
          without(r, "seq", "received_at", "stream", "source", "mns_message_id"),
          without(pushed, "seq", "received_at", "stream", "source"),
          "normalized exactly as the push",
        );
      }
      assert.equal(def[0].id, expectedId("LlmSmartCallReport", [llm.call_id]));
      assert.equal(def[0].started_at, "2025-01-06T17:33:37+08:00");
      assert.equal(def[0].duration_s, 189);

      // Polling again: MessageNotExist, a quiet empty poll; nothing stored twice.
      assertPoll(await w.poll(Q_LLM), { received: 0, stored: 0, deleted: 0, error: null });
      assert.equal((await w.receipts("default")).length, 1);
      assert.equal((await w.receipts("shop")).length, 1);
      assert.equal(w.fake.counters.tokenCalls, 2, "the token is cached");

      const stats = await w.mnsStats();
      for (const q of [Q_LLM, Q_VOICE]) {
        const s = stats[q];
        assert.ok(s, `stats.mns has ${q}: ${JSON.stringify(stats)}`);
        for (const k of ["polls", "received", "stored", "duplicate", "deleted", "delete_failed", "errors"]) assert.equal(typeof s[k], "number", `${q}.${k}`);
        assert.equal(s.received, 1);
        assert.equal(s.stored, 1);
        assert.equal(s.deleted, 1);
        assert.equal(s.duplicate, 0);
        assert.equal(s.errors, 0);
        assert.match(s.token_expires_at, RFC3339_UTC);
      }
      assert.equal(stats[Q_LLM].polls, 2);
      const issued = w.fake.events_of("token").find((e) => e.messageType === "LlmSmartCallReport");
      const tok = w.fake.tokens.get(issued.accessKeyId);
      assert.equal(Date.parse(stats[Q_LLM].token_expires_at), tok.expireMs, "token_expires_at = ExpireTime (+08:00) in UTC");
      // The stream stats count the MNS receipts like pushes.
      const ss = await w.api("/v1/streams/shop/stats");
      assert.equal(ss.json.streams.shop.types.VoiceReportAiccs.stored, 1);
    }),
  );

  test("a batch: base64 and raw JSON bodies, up to 16 per receive, duplicates inside the batch", T, () =>
    withMns({}, async (w) => {
      const base = fixture("VoiceReportAiccs")[0];
      const ids = [];
      for (let i = 0; i < 20; i++) {
        const msg = { ...base, call_id: `9000${i}^1` };
        ids.push(w.fake.enqueue(Q_VOICE, msg, { encoding: i % 2 ? "raw" : "base64" }).messageId);
      }
      // XML-special and non-ASCII characters in a raw JSON body survive the XML round trip.
      const special = { ...base, call_id: "8888^1", status_msg: `a<b>&c"d'e 执行完成 \u2028` };
      w.fake.enqueue(Q_VOICE, JSON.stringify(special), { encoding: "raw" });
      // Two more MNS messages (other MessageIds) carrying an identity already in the batch.
      w.fake.enqueue(Q_VOICE, { ...base, call_id: "90000^1" });
      w.fake.enqueue(Q_VOICE, JSON.stringify({ ...base, call_id: "90001^1" }));
      const a = await w.poll(Q_VOICE);
      assertPoll(a, { received: 16, stored: 16, duplicate: 0, deleted: 16, error: null });
      const b = await w.poll(Q_VOICE);
      assertPoll(b, { received: 7, stored: 5, duplicate: 2, deleted: 7, error: null });
      assertPoll(await w.poll(Q_VOICE), { received: 0, error: null });
      const rs = await w.receipts("shop");
      assert.equal(rs.length, 21);
      assert.deepEqual(new Set(rs.map((r) => r.call_id)).size, 21);
      assert.deepEqual(rs.slice(0, 20).map((r) => r.mns_message_id), ids, "stored in queue order with their MessageIds");
      assert.deepEqual(rs[20].raw, special);
      assert.equal(rs[20].status_msg, special.status_msg);
      assert.equal(w.fake.queueState(Q_VOICE).total, 0);
      assertAllSigned(w.fake);
    }),
  );

  test("deleted only after the store is durable; not deleted when the store fails; stored once when healthy", T, () =>
    withMns({ proxy: true }, async (w) => {
      const voice = fixture("VoiceReportAiccs")[0];
      // Healthy, but every commit is held 300 ms: the delete must come after it.
      w.fake.enqueue(Q_VOICE, voice);
      assertPoll(await w.poll(Q_VOICE), { received: 1, stored: 1, deleted: 1, error: null });
      const ev = w.fake.events.filter((e) => ["commit_start", "commit_done", "delete"].includes(e.kind)).map((e) => e.kind);
      assert.deepEqual(ev, ["commit_start", "commit_done", "delete"], "delete after the durable commit");

      // The store fails: nothing is deleted, the message reappears after the visibility timeout.
      w.fake.inboxMode = "fail";
      const call2 = { ...voice, call_id: "555^1" };
      const { messageId } = w.fake.enqueue(Q_VOICE, call2);
      const deletesBefore = w.fake.counters.deleteCalls;
      const f1 = await w.poll(Q_VOICE);
      assertPoll(f1, { received: 1, stored: 0, deleted: 0 });
      assert.ok(f1.error && /inbox/.test(f1.error), `error names the inbox: ${JSON.stringify(f1)}`);
      assert.equal(w.fake.counters.deleteCalls, deletesBefore, "no BatchDeleteMessage after a failed store");
      assert.deepEqual(w.fake.queueState(Q_VOICE), { total: 1, visible: 0, inflight: 1 });
      assertPoll(await w.poll(Q_VOICE), { received: 0, error: null }); // invisible meanwhile
      await until("the visibility timeout has passed", () => w.fake.queueState(Q_VOICE).visible > 0);
      const f2 = await w.poll(Q_VOICE); // redelivered, store still failing
      assertPoll(f2, { received: 1, stored: 0, deleted: 0 });
      assert.ok(f2.error);
      assert.equal(w.fake.counters.deleteCalls, deletesBefore);

      // Healthy again: after the visibility timeout it is stored once and deleted.
      w.fake.inboxMode = "ok";
      await until("the visibility timeout has passed", () => w.fake.queueState(Q_VOICE).visible > 0);
      assertPoll(await w.poll(Q_VOICE), { received: 1, stored: 1, duplicate: 0, deleted: 1, error: null });
      assert.equal(w.fake.queueState(Q_VOICE).total, 0);
      const rs = await w.receipts("shop");
      assert.equal(rs.length, 2);
      assert.equal(rs[1].call_id, "555^1");
      assert.equal(rs[1].mns_message_id, messageId);

      // The commit lands but its answer is lost: not deleted; the redelivery is a duplicate.
      w.fake.inboxMode = "lose_answer";
      w.fake.enqueue(Q_VOICE, { ...voice, call_id: "556^1" });
      const l1 = await w.poll(Q_VOICE);
      assertPoll(l1, { received: 1, deleted: 0 });
      assert.ok(l1.error);
      w.fake.inboxMode = "ok";
      await until("the visibility timeout has passed", () => w.fake.queueState(Q_VOICE).visible > 0);
      assertPoll(await w.poll(Q_VOICE), { received: 1, stored: 0, duplicate: 1, deleted: 1, error: null });
      assert.equal((await w.receipts("shop")).length, 3, "stored once");
      assert.equal(w.fake.queueState(Q_VOICE).total, 0);

      const s = (await w.mnsStats())[Q_VOICE];
      assert.equal(s.errors, 3);
      // The lost-answer commit counts as stored by nobody's poll: its redelivery is the duplicate.
      assert.equal(s.stored, 2);
      assert.equal(s.duplicate, 1);
      assert.equal(s.deleted, 3);
      // Every delete followed a completed commit.
      let committed = 0;
      for (const e of w.fake.events) {
        if (e.kind === "commit_done") committed += 1;
        if (e.kind === "delete" && e.ids.length) assert.ok(committed > 0);
      }
      assertAllSigned(w.fake);
    }),
  );

  test("redelivery with the same MessageId (a lost or stale delete) is not stored twice", T, () =>
    withMns({}, async (w) => {
      const llm = fixture("LlmSmartCallReport")[0];
      // The fake answers the delete as done but keeps the message.
      w.fake.faults.loseDeletes = 1;
      const { messageId } = w.fake.enqueue(Q_LLM, llm);
      assertPoll(await w.poll(Q_LLM), { received: 1, stored: 1, deleted: 1, error: null });
      await until("the visibility timeout has passed", () => w.fake.queueState(Q_LLM).visible > 0);
      const again = await w.poll(Q_LLM);
      assertPoll(again, { received: 1, stored: 0, duplicate: 1, deleted: 1, error: null });
      const recv = w.fake.events_of("receive").filter((e) => e.ids.length);
      assert.deepEqual(recv.map((e) => e.ids), [[messageId], [messageId]], "the same MessageId twice");
      assert.notEqual(recv[0].handles[0], recv[1].handles[0], "with a new receipt handle");

      // The delete arrives after the handle went stale: per-entry ReceiptHandleError; the message
      // comes back and is absorbed as a duplicate.
      w.fake.faults.staleDeletes = 1;
      w.fake.enqueue(Q_LLM, { ...llm, call_id: "777^1" });
      const st = await w.poll(Q_LLM);
      assertPoll(st, { received: 1, stored: 1, deleted: 0, delete_failed: 1 });
      assert.equal(w.fake.counters.deleteEntryErrors, 1);
      assert.equal((await w.mnsStats())[Q_LLM].delete_failed, 1, "/v1/stats reports the failed delete");
      const st2 = await w.poll(Q_LLM);
      assertPoll(st2, { received: 1, stored: 0, duplicate: 1, deleted: 1, error: null });
      assert.equal(w.fake.queueState(Q_LLM).total, 0);

      // Another MessageId, same receipt identity and content: a duplicate, deleted.
      w.fake.enqueue(Q_LLM, JSON.stringify(llm));
      assertPoll(await w.poll(Q_LLM), { received: 1, stored: 0, duplicate: 1, deleted: 1, error: null });

      // The whole BatchDeleteMessage fails (503 <Error>): an error, the message comes back, dedup.
      w.fake.faults.failDeletes = 1;
      w.fake.enqueue(Q_LLM, { ...llm, call_id: "778^1" });
      const fd = await w.poll(Q_LLM);
      assertPoll(fd, { received: 1, stored: 1, deleted: 0 });
      assert.match(String(fd.error), /InternalError/);
      await until("the visibility timeout has passed", () => w.fake.queueState(Q_LLM).visible > 0);
      assertPoll(await w.poll(Q_LLM), { received: 1, stored: 0, duplicate: 1, deleted: 1, error: null });
      assert.equal(w.fake.queueState(Q_LLM).total, 0);

      const rs = await w.receipts("default");
      assert.equal(rs.length, 3);
      assert.equal(rs[0].mns_message_id, messageId, "the first delivery's receipt stays");
      const s = (await w.mnsStats())[Q_LLM];
      assert.equal(s.duplicate, 4);
      assert.equal(s.duplicates, undefined, "one name for the counter: duplicate");
      assert.equal(s.delete_failed, 1, "the stale delete, reported once");
      assert.equal(s.stored, 3);
      assert.equal(s.errors, 1);
      assertAllSigned(w.fake);
    }),
  );

  test("the same receipt by HTTP push and by MNS is stored once in the same stream", T, () =>
    withMns({}, async (w) => {
      // Push first, then MNS (stream default).
      const llm = fixture("LlmSmartCallReport")[0];
      assert.equal((await w.push("llm", null, [llm])).status, 200);
      w.fake.enqueue(Q_LLM, llm);
      assertPoll(await w.poll(Q_LLM), { received: 1, stored: 0, duplicate: 1, deleted: 1, error: null });
      const d = await w.receipts("default");
      assert.equal(d.length, 1);
      assert.equal(d[0].source, "push");

      // MNS first, then push (stream shop).
      const voice = fixture("VoiceReportAiccs")[0];
      w.fake.enqueue(Q_VOICE, voice);
      assertPoll(await w.poll(Q_VOICE), { received: 1, stored: 1, deleted: 1, error: null });
      const p = await w.push("bot", "shop", [voice]);
      assert.equal(p.status, 200, p.text);
      assert.deepEqual(p.json, { code: 0, msg: "Success" });
      const s = await w.receipts("shop");
      assert.equal(s.length, 1);
      assert.equal(s[0].source, "mns");
      const st = await w.api("/v1/streams/shop/stats");
      assert.equal(st.json.streams.shop.types.VoiceReportAiccs.stored, 1);
      assert.equal(st.json.streams.shop.types.VoiceReportAiccs.duplicate, 1);
      assertAllSigned(w.fake);
    }),
  );

  test("an expiring token is refreshed before use; a revoked one is replaced after the error", T, () =>
    withMns({}, async (w) => {
      const llm = fixture("LlmSmartCallReport")[0];
      // Token 1: ExpireTime now + 2 min + 2.5 s, so the worker must refresh it from ~2.5 s on;
      // the fake refuses it from then on (as if it had expired).
      w.fake.planTokens({ expireInMs: 122_500, validForMs: 2500 });
      assertPoll(await w.poll(Q_LLM), { received: 0, error: null });
      assertPoll(await w.poll(Q_LLM), { received: 0, error: null });
      assert.equal(w.fake.counters.tokenCalls, 1, "cached while fresh");
      const first = w.fake.events_of("token")[0].accessKeyId;
      await sleep(3200);
      w.fake.enqueue(Q_LLM, llm);
      assertPoll(await w.poll(Q_LLM), { received: 1, stored: 1, deleted: 1, error: null });
      assert.equal(w.fake.counters.tokenCalls, 2, "refreshed 2 minutes before ExpireTime");
      assert.equal(w.fake.counters.authFailures, 0, `the expired key was never used: ${JSON.stringify(w.fake.rejections)}`);
      const second = w.fake.events_of("token")[1].accessKeyId;
      assert.notEqual(first, second);
      assert.equal(w.fake.events_of("receive").at(-1).accessKeyId, second, "the receive used the new key");
      assert.ok(w.fake.events_of("receive").slice(0, 2).every((e) => e.accessKeyId === first));

      // The token is revoked early (SecurityTokenExpired): that poll errors, the next one
      // fetches a new token and works.
      w.fake.revokeTokens();
      w.fake.enqueue(Q_LLM, { ...llm, call_id: "888^1" });
      const bad = await w.poll(Q_LLM);
      assertPoll(bad, { received: 0, stored: 0, deleted: 0 });
      assert.match(String(bad.error), /SecurityTokenExpired/);
      assert.equal(w.fake.counters.authFailures, 1);
      const good = await w.poll(Q_LLM);
      assertPoll(good, { received: 1, stored: 1, deleted: 1, error: null });
      assert.equal(w.fake.counters.tokenCalls, 3);

      // A token whose ExpireTime is already within 2 minutes is refreshed on every poll.
      w.fake.planTokens({ expireInMs: 60_000 }, { expireInMs: 60_000 });
      w.fake.revokeTokens();
      await w.poll(Q_LLM); // error, token dropped
      const n = w.fake.counters.tokenCalls;
      assertPoll(await w.poll(Q_LLM), { error: null }); // token 4 (expires in 60 s)
      assertPoll(await w.poll(Q_LLM), { error: null }); // token 5: 4 was already due
      assert.equal(w.fake.counters.tokenCalls, n + 2);

      const s = (await w.mnsStats())[Q_LLM];
      assert.equal(s.errors, 2);
      assert.equal(s.stored, 2);
      assert.equal(s.token_refreshes, w.fake.counters.tokenCalls, "every token the fake issued is counted");
      const last = w.fake.tokens.get(w.fake.events_of("token").at(-1).accessKeyId);
      assert.equal(Date.parse(s.token_expires_at), last.expireMs);
      assert.equal((await w.receipts("default")).length, 2);
      assertAllSigned(w.fake);
      assertNoSecretsLogged(w);
    }),
  );

  test("a wrong AccessKey secret: QueryTokenForMnsQueue refused, an error in stats, no MNS call", T, () =>
    withMns({ bindings: { ALIBABA_ACCESS_KEY_SECRET: "wrong-secret-0123456789" } }, async (w) => {
      w.fake.enqueue(Q_LLM, fixture("LlmSmartCallReport")[0]);
      const r = await w.poll(Q_LLM);
      assertPoll(r, { received: 0, stored: 0, deleted: 0 });
      assert.match(String(r.error), /SignatureDoesNotMatch/);
      assert.ok(!String(r.error).includes("wrong-secret"), "the error does not echo the secret");
      assert.equal(w.fake.counters.tokenRejected, 1);
      assert.equal(w.fake.counters.receives, 0);
      assert.equal((await w.mnsStats())[Q_LLM].errors, 1);
      assert.equal(w.fake.queueState(Q_LLM).total, 1, "the message waits in the queue");
      assert.equal((await w.request("GET", "/healthz")).status, 200);
      assert.ok(!w.logs().includes("wrong-secret"), "secret not logged");
    }),
  );

  test("MessageNotExist is a quiet empty poll; QueueNotExist is an error in stats, nothing crashes", T, () =>
    withMns({ bindings: { MNS_QUEUES: `${MNS_QUEUES},VoiceCallReportAiccs:${Q_MISSING}:missing` } }, async (w) => {
      for (let i = 0; i < 3; i++) assertPoll(await w.poll(Q_LLM), { received: 0, stored: 0, deleted: 0, error: null });
      assert.equal(w.fake.counters.emptyReceives, 3);
      let stats = await w.mnsStats();
      assert.equal(stats[Q_LLM].polls, 3);
      assert.equal(stats[Q_LLM].errors, 0);

      const e1 = await w.poll(Q_MISSING);
      assertPoll(e1, { received: 0, stored: 0, deleted: 0 });
      assert.match(String(e1.error), /QueueNotExist/);
      const e2 = await w.poll(Q_MISSING);
      assert.match(String(e2.error), /QueueNotExist/);
      assert.equal(w.fake.counters.queueNotExist, 2);
      stats = await w.mnsStats();
      assert.equal(stats[Q_MISSING].errors, 2);
      assert.equal(stats[Q_MISSING].polls, 2);
      assert.ok(stats[Q_LLM] && stats[Q_VOICE], "the other queues still report");

      // The worker is fine: health, push, and the other queues keep working.
      const h = await w.request("GET", "/healthz");
      assert.equal(h.status, 200, h.text);
      w.fake.enqueue(Q_LLM, fixture("LlmSmartCallReport")[0]);
      assertPoll(await w.poll(Q_LLM), { received: 1, stored: 1, deleted: 1, error: null });
      // The queue appears later: the same puller drains it.
      w.fake.createQueue(Q_MISSING);
      w.fake.enqueue(Q_MISSING, fixture("VoiceCallReportAiccs")[0]);
      assertPoll(await w.poll(Q_MISSING), { received: 1, stored: 1, deleted: 1, error: null });
      const m = await w.receipts("missing");
      assert.equal(m.length, 1);
      assert.equal(m[0].type, "VoiceCallReportAiccs");
      assertAllSigned(w.fake);
    }),
  );

  test("a not-JSON body is quarantined (not_json, address mns:<queue>) and deleted", T, () =>
    withMns({}, async (w) => {
      const text = "%%% this is not json {";
      w.fake.enqueue(Q_LLM, text, { encoding: "raw" });
      w.fake.enqueue(Q_LLM, "hello, not json", { encoding: "base64" });
      w.fake.enqueue(Q_LLM, fixture("LlmSmartCallReport")[0]);
      const r = await w.poll(Q_LLM);
      assertPoll(r, { received: 3, stored: 1, quarantined: 2, deleted: 3, error: null });
      assert.equal(w.fake.queueState(Q_LLM).total, 0);
      const items = await w.quarantine("default");
      assert.equal(items.length, 2, JSON.stringify(items));
      for (const it of items) {
        assert.equal(it.reason, "not_json");
        assert.equal(it.address, `mns:${Q_LLM}`);
      }
      const raws = items.map((it) => it.raw ?? Buffer.from(it.raw_base64, "base64").toString("utf8"));
      assert.ok(raws.includes(text), `raw kept: ${JSON.stringify(raws)}`);
      const t = items.find((it) => (it.raw ?? "") === text);
      assert.equal(t.sha256, createHash("sha256").update(text).digest("hex"));
      assert.equal((await w.receipts("default")).length, 1);
      const s = (await w.mnsStats())[Q_LLM];
      assert.equal(s.quarantined, 2);
      assert.equal(s.deleted, 3);
      assertAllSigned(w.fake);
    }),
  );

  test("cron → kick → the alarm loop polls by itself (MNS_WAIT_S=1, long poll)", { timeout: 60_000 }, () =>
    withMns({ bindings: { MNS_WAIT_S: "1" } }, async (w) => {
      const worker = await w.mf.getWorker();
      const res = await worker.scheduled({ cron: "* * * * *", scheduledTime: new Date() });
      assert.equal(res.outcome, "ok", JSON.stringify(res));
      // Both pullers start their loop: long polls (waitseconds=1) arrive at the fake.
      await until("both queues polled", () => {
        const qs = new Set(w.fake.events_of("receive").map((e) => e.queue));
        return qs.has(Q_LLM) && qs.has(Q_VOICE);
      });
      const llm = fixture("LlmSmartCallReport")[0];
      const voice = fixture("VoiceReportAiccs")[0];
      w.fake.enqueue(Q_LLM, llm);
      w.fake.enqueue(Q_VOICE, voice);
      await until("receipts stored by the loop", async () => (await w.receipts("default")).length === 1 && (await w.receipts("shop")).length === 1);
      await until("messages deleted", () => w.fake.counters.deleted === 2);
      // The loop keeps going: a later message arrives too.
      const before = w.fake.counters.received;
      w.fake.enqueue(Q_VOICE, { ...voice, call_id: "999^1" });
      await until("later receipt stored", async () => (await w.receipts("shop")).length === 2);
      // (possibly by a long poll already waiting when it was enqueued)
      assert.equal(w.fake.counters.received, before + 1);
      // A second cron tick while the loop runs does not start a second loop.
      await worker.scheduled({ cron: "* * * * *", scheduledTime: new Date() });
      const t0 = w.fake.counters.receives;
      await sleep(2500);
      const rate = w.fake.counters.receives - t0;
      assert.ok(rate <= 2 * 3 + 2, `about one long poll per queue per ~1.25 s, got ${rate} in 2.5 s`);
      const s = await w.mnsStats();
      assert.ok(s[Q_VOICE].polls >= 2);
      assert.equal(s[Q_VOICE].stored, 2);
      assert.equal(s[Q_LLM].errors, 0);
      assert.equal(w.fake.queueState(Q_VOICE).total, 0);
      assertAllSigned(w.fake);
      assert.equal(w.fake.counters.authFailures, 0);
      assertNoSecretsLogged(w);
    }),
  );
});
