// A fake of the two Alibaba Cloud services the MNS consumption mode talks to, on loopback:
//
// - Dybaseapi `QueryTokenForMnsQueue` (POP RPC style, `POST /?Action=QueryTokenForMnsQueue&…`):
//   verifies the signature (SignatureVersion 1.0, HMAC-SHA1 over
//   `POST&%2F&percentEncode(canonicalized query without Signature)`, key = secret + "&"), the
//   timestamp and nonce, and answers the documented JSON with temporary credentials whose
//   `ExpireTime` (China time, `yyyy-MM-dd HH:mm:ss`) the test controls.
// - MNS REST (API version 2015-06-06): BatchReceiveMessage
//   `GET /queues/{q}/messages?numOfMessages=N&waitseconds=W` and BatchDeleteMessage
//   `DELETE /queues/{q}/messages` with a `<ReceiptHandles>` body. Every request must carry
//   `Authorization: MNS <temporary AccessKeyId>:<signature>` signed with the temporary secret over
//   `VERB\nContent-MD5\nContent-Type\nDate\nCanonicalizedMNSHeaders CanonicalizedResource`,
//   `x-mns-version: 2015-06-06`, a `Date` within 15 minutes and the issued `security-token`.
//
// Queues are in memory: each message has a MessageId, a new ReceiptHandle per delivery (only the
// newest is valid, and only until NextVisibleTime), a visibility timeout, a DequeueCount. An empty
// queue answers 404 `MessageNotExist`, an unknown queue 404 `QueueNotExist`; a BatchDelete with
// stale handles answers per-entry `<Errors>`. XML shapes follow core/src/mns/xml.rs (namespace
// http://mns.aliyuncs.com/doc/v1/).
//
// The signing functions are written independently of the worker (node:crypto only) and are
// cross-checked in mns.test.mjs against Alibaba's documented example signatures.
//
// Test controls: counters, a request/event log, token lifetimes, fault knobs (lose or stale the
// next deletes, revoke tokens), and a tiny control endpoint (`/__control/…`) that an inline fault
// injection Durable Object in the test uses to learn whether the inbox should fail and to report
// commits (so the test can check that deletes come after durable commits).

import http from "node:http";
import { createHash, createHmac, randomBytes } from "node:crypto";

export const MNS_XMLNS = "http://mns.aliyuncs.com/doc/v1/";
export const MNS_API_VERSION = "2015-06-06";
export const DYBASEAPI_VERSION = "2017-05-25";
const MAX_SKEW_MS = 15 * 60 * 1000;

// ------------------------------------------------------------------ signing (independent)

/** Alibaba POP percent-encoding: RFC 3986 unreserved kept, everything else %XY (space %20, * %2A, ~ kept). */
export function percentEncode(s) {
  return encodeURIComponent(String(s)).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/** Canonicalized query: pairs sorted by key (then value), `pe(k)=pe(v)` joined by `&`. */
export function rpcCanonicalizedQuery(pairs) {
  const sorted = [...pairs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return sorted.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join("&");
}

export function rpcStringToSign(method, pairs) {
  return `${method}&${percentEncode("/")}&${percentEncode(rpcCanonicalizedQuery(pairs))}`;
}

/** base64(HMAC-SHA1(secret + "&", stringToSign)). `pairs` is [[key, value], …] without Signature. */
export function rpcSign(method, pairs, secret) {
  return createHmac("sha1", `${secret}&`).update(rpcStringToSign(method, pairs), "utf8").digest("base64");
}

/** MNS string-to-sign. `mnsHeaders` = [[name, value], …] (only x-mns-* are used). */
export function mnsStringToSign({ verb, contentMd5 = "", contentType = "", date, mnsHeaders = [], resource }) {
  const canon = mnsHeaders
    .map(([k, v]) => [k.toLowerCase(), v])
    .filter(([k]) => k.startsWith("x-mns-"))
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([k, v]) => `${k}:${v}\n`)
    .join("");
  return `${verb}\n${contentMd5}\n${contentType}\n${date}\n${canon}${resource}`;
}

/** base64(HMAC-SHA1(secret, stringToSign)): the MNS key is the secret itself (no "&"). */
export function mnsSign(secret, stringToSign) {
  return createHmac("sha1", secret).update(stringToSign, "utf8").digest("base64");
}

/** `yyyy-MM-dd HH:mm:ss` in China Standard Time (UTC+08:00, no DST). */
export function chinaTime(ms) {
  const d = new Date(ms + 8 * 3600 * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/** Parses `yyyy-MM-dd HH:mm:ss` as China time into epoch ms. */
export function parseChinaTime(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(s);
  if (!m) return NaN;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) - 8 * 3600 * 1000;
}

const xmlEscape = (s) =>
  String(s).replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]);
const xmlUnescape = (s) =>
  s
    .replace(/&#x([0-9a-fA-F]+);/g, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&(lt|gt|quot|apos);/g, (_, e) => ({ lt: "<", gt: ">", quot: '"', apos: "'" })[e])
    .replace(/&amp;/g, "&");
const md5 = (buf) => createHash("md5").update(buf).digest();

// ------------------------------------------------------------------ the fake

export class FakeAlibaba {
  /**
   * @param {object} o
   * @param {string} o.accessKeyId      the user's own AccessKeyId (Dybaseapi)
   * @param {string} o.accessKeySecret  its secret
   * @param {string[]} [o.queues]       queue names that exist
   * @param {number} [o.visibilityTimeoutMs] how long a received message stays invisible (default 1000)
   * @param {number} [o.tokenLifetimeMs] default ExpireTime - now of issued tokens (default 1 h)
   */
  constructor({ accessKeyId, accessKeySecret, queues = [], visibilityTimeoutMs = 1000, tokenLifetimeMs = 3600_000 }) {
    this.accessKeyId = accessKeyId;
    this.accessKeySecret = accessKeySecret;
    this.visibilityTimeoutMs = visibilityTimeoutMs;
    this.tokenLifetimeMs = tokenLifetimeMs;
    this.queues = new Map();
    for (const q of queues) this.createQueue(q);
    this.tokens = new Map(); // temp AccessKeyId -> {secret, securityToken, messageType, queueName, expireMs, validUntilMs, revoked}
    this.tokenPlan = []; // per-call overrides for the next tokens: {expireInMs, validForMs}
    this.nonces = new Set();
    this.counters = {
      tokenCalls: 0, // successful QueryTokenForMnsQueue calls
      tokenRejected: 0, // QueryTokenForMnsQueue calls refused (signature, nonce, params…)
      receives: 0, // BatchReceiveMessage calls that passed authentication
      received: 0, // messages handed out
      emptyReceives: 0, // MessageNotExist answers
      queueNotExist: 0,
      deleteCalls: 0, // BatchDeleteMessage calls that passed authentication
      deleted: 0, // messages actually removed
      deleteEntryErrors: 0, // per-entry failures answered
      signatureFailures: 0, // MNS or RPC SignatureDoesNotMatch
      authFailures: 0, // every other MNS authentication refusal (expired/unknown key, token, date, version)
      commits: 0, // reported by the test's inbox proxy
    };
    this.rejections = []; // {service, code, detail}
    this.events = []; // ordered: {kind: "receive"|"delete"|"commit_start"|"commit_done"|"token", at, …}
    this.faults = { loseDeletes: 0, staleDeletes: 0, failDeletes: 0 };
    this.inboxMode = "ok"; // read by the inline inbox proxy through /__control/inbox
    this.seq = 0;
    this.server = null;
    this.sockets = new Set();
    this.waiters = new Set();
    this.closed = false;
  }

  // ---------------------------------------------------------------- lifecycle

  async start() {
    this.server = http.createServer((req, res) => {
      this.#handle(req, res).catch((e) => {
        try {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(String(e?.stack ?? e));
        } catch {}
      });
    });
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", resolve);
    });
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async close() {
    this.closed = true;
    for (const w of this.waiters) w();
    if (!this.server) return;
    const done = new Promise((r) => this.server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await done;
  }

  // ---------------------------------------------------------------- queues

  createQueue(name) {
    if (!this.queues.has(name)) this.queues.set(name, { name, messages: [] });
  }

  deleteQueue(name) {
    this.queues.delete(name);
  }

  /**
   * Enqueues a message. `body`: an object (sent as base64 of its JSON, the alicom way, unless
   * `encoding: "raw"`), or a string sent as is (`encoding: "raw"`, default for strings) or
   * base64-encoded (`encoding: "base64"`). Returns {messageId, messageBody}.
   */
  enqueue(queue, body, { encoding, messageId } = {}) {
    const q = this.queues.get(queue);
    if (!q) throw new Error(`fake: no queue ${queue}`);
    const text = typeof body === "string" ? body : JSON.stringify(body);
    const enc = encoding ?? (typeof body === "string" ? "raw" : "base64");
    const messageBody = enc === "base64" ? Buffer.from(text, "utf8").toString("base64") : text;
    this.seq += 1;
    const id = messageId ?? `5F290C926D472878-1-${Date.now().toString(16).toUpperCase()}-${String(200000000 + this.seq)}`;
    q.messages.push({
      id,
      body: messageBody,
      enqueueTime: Date.now(),
      firstDequeueTime: null,
      dequeueCount: 0,
      nextVisible: 0,
      handle: null,
      handles: [],
    });
    this.#wake();
    return { messageId: id, messageBody };
  }

  /** Counts of a queue's messages: total, visible now, in flight. */
  queueState(queue) {
    const q = this.queues.get(queue);
    if (!q) return null;
    const now = Date.now();
    const visible = q.messages.filter((m) => m.nextVisible <= now).length;
    return { total: q.messages.length, visible, inflight: q.messages.length - visible };
  }

  /** The next `n` tokens use these settings ({expireInMs, validForMs}); later ones the defaults. */
  planTokens(...plans) {
    this.tokenPlan.push(...plans);
  }

  /** Makes every token issued so far invalid (answers SecurityTokenExpired). */
  revokeTokens() {
    for (const t of this.tokens.values()) t.revoked = true;
  }

  events_of(kind) {
    return this.events.filter((e) => e.kind === kind);
  }

  // ---------------------------------------------------------------- HTTP

  async #handle(req, res) {
    const url = new URL(req.url, "http://x");
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    if (url.pathname.startsWith("/__control/")) return this.#control(req, url, body, res);
    if (url.pathname === "/" && url.searchParams.get("Action") !== null) return this.#rpc(req, url, res);
    if (url.pathname.startsWith("/queues/")) return this.#mns(req, url, body, res);
    return this.#send(res, 404, "text/plain", "fake alibaba: no such route");
  }

  #send(res, status, type, text, headers = {}) {
    res.writeHead(status, {
      "content-type": type,
      "x-mns-request-id": randomBytes(12).toString("hex").toUpperCase(),
      ...headers,
    });
    res.end(text);
  }

  #control(req, url, body, res) {
    const what = url.pathname.slice("/__control/".length);
    if (what === "inbox") return this.#send(res, 200, "text/plain", this.inboxMode);
    if (what === "commit_start" || what === "commit_done") {
      if (what === "commit_done") this.counters.commits += 1;
      this.events.push({ kind: what, at: Date.now(), status: url.searchParams.get("status") });
      return this.#send(res, 200, "text/plain", "ok");
    }
    return this.#send(res, 404, "text/plain", "no such control");
  }

  // ---------------------------------------------------------------- Dybaseapi (POP RPC)

  #rpcError(res, status, code, message) {
    this.counters.tokenRejected += 1;
    if (code === "SignatureDoesNotMatch") this.counters.signatureFailures += 1;
    this.rejections.push({ service: "dybaseapi", code, detail: message });
    const requestId = randomBytes(16).toString("hex").toUpperCase();
    return this.#send(
      res,
      status,
      "application/json;charset=utf-8",
      JSON.stringify({ RequestId: requestId, HostId: "dybaseapi.aliyuncs.com", Code: code, Message: message, Recommend: "https://api.aliyun.com/troubleshoot" }),
    );
  }

  #rpc(req, url, res) {
    if (req.method !== "POST" && req.method !== "GET") return this.#rpcError(res, 400, "UnsupportedHTTPMethod", req.method);
    // Decode the raw query ourselves: POP encodes a space as %20 and "+" as %2B, never "+" for space.
    const raw = url.search.slice(1);
    const pairs = [];
    for (const part of raw.split("&")) {
      if (!part) continue;
      const i = part.indexOf("=");
      const k = i < 0 ? part : part.slice(0, i);
      const v = i < 0 ? "" : part.slice(i + 1);
      try {
        pairs.push([decodeURIComponent(k), decodeURIComponent(v)]);
      } catch {
        return this.#rpcError(res, 400, "InvalidParameter", `bad percent-encoding in ${k}`);
      }
    }
    const get = (k) => pairs.find((p) => p[0] === k)?.[1];
    const signature = get("Signature");
    const unsigned = pairs.filter((p) => p[0] !== "Signature");
    for (const k of ["AccessKeyId", "Action", "Format", "SignatureMethod", "SignatureNonce", "SignatureVersion", "Timestamp", "Version", "Signature"]) {
      if (!get(k)) return this.#rpcError(res, 400, "MissingParameter", `${k} is mandatory for this action.`);
    }
    if (get("Action") !== "QueryTokenForMnsQueue") return this.#rpcError(res, 404, "InvalidAction.NotFound", get("Action"));
    if (get("Version") !== DYBASEAPI_VERSION) return this.#rpcError(res, 400, "InvalidVersion", get("Version"));
    if (get("SignatureMethod") !== "HMAC-SHA1" || get("SignatureVersion") !== "1.0")
      return this.#rpcError(res, 400, "InvalidSignatureMethod", `${get("SignatureMethod")} ${get("SignatureVersion")}`);
    if (get("AccessKeyId") !== this.accessKeyId) return this.#rpcError(res, 404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.");
    const ts = Date.parse(get("Timestamp"));
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(get("Timestamp")) || !Number.isFinite(ts))
      return this.#rpcError(res, 400, "InvalidTimeStamp.Format", get("Timestamp"));
    if (Math.abs(Date.now() - ts) > MAX_SKEW_MS) return this.#rpcError(res, 400, "InvalidTimeStamp.Expired", get("Timestamp"));
    const expected = rpcSign(req.method, unsigned, this.accessKeySecret);
    if (signature !== expected) {
      return this.#rpcError(
        res,
        400,
        "SignatureDoesNotMatch",
        `Specified signature is not matched with our calculation. server string to sign is:${rpcStringToSign(req.method, unsigned)}`,
      );
    }
    if (this.nonces.has(get("SignatureNonce"))) return this.#rpcError(res, 400, "SignatureNonceUsed", "Specified signature nonce was used already.");
    this.nonces.add(get("SignatureNonce"));
    const messageType = get("MessageType");
    if (!messageType) return this.#rpcError(res, 400, "MissingParameter", "MessageType is mandatory for this action.");

    const plan = this.tokenPlan.shift() ?? {};
    const now = Date.now();
    // ExpireTime has second precision: round down, as the real API prints it.
    const expireMs = Math.floor((now + (plan.expireInMs ?? this.tokenLifetimeMs)) / 1000) * 1000;
    const validUntilMs = plan.validForMs === undefined ? expireMs : now + plan.validForMs;
    const n = this.tokens.size + 1;
    const tempId = `STS.fake${n}${randomBytes(6).toString("hex")}`;
    const token = {
      accessKeyId: tempId,
      secret: randomBytes(20).toString("base64"),
      securityToken: `CAIS${randomBytes(48).toString("base64")}`, // base64 with + / =, as real STS tokens
      messageType,
      queueName: get("QueueName") ?? null,
      expireMs,
      validUntilMs,
      revoked: false,
      issuedAt: now,
    };
    this.tokens.set(tempId, token);
    this.counters.tokenCalls += 1;
    this.events.push({ kind: "token", at: now, accessKeyId: tempId, messageType, queueName: token.queueName });
    return this.#send(
      res,
      200,
      "application/json;charset=utf-8",
      JSON.stringify({
        RequestId: randomBytes(16).toString("hex").toUpperCase(),
        Code: "OK",
        Message: "OK",
        MessageTokenDTO: {
          AccessKeyId: tempId,
          AccessKeySecret: token.secret,
          SecurityToken: token.securityToken,
          CreateTime: chinaTime(now),
          ExpireTime: chinaTime(expireMs),
        },
      }),
    );
  }

  // ---------------------------------------------------------------- MNS REST

  #mnsError(res, status, code, message, { auth = false } = {}) {
    if (code === "SignatureDoesNotMatch") this.counters.signatureFailures += 1;
    else if (auth) this.counters.authFailures += 1;
    if (auth || code === "SignatureDoesNotMatch") this.rejections.push({ service: "mns", code, detail: message });
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error xmlns="${MNS_XMLNS}">` +
      `<Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message>` +
      `<RequestId>${randomBytes(12).toString("hex").toUpperCase()}</RequestId>` +
      `<HostId>${xmlEscape(this.url)}</HostId></Error>`;
    return this.#send(res, status, "text/xml;charset=utf-8", xml);
  }

  /** Authenticates an MNS request; returns the token or answers the error and returns null. */
  #authenticate(req, url, body, res) {
    const h = req.headers;
    if (h["x-mns-version"] !== MNS_API_VERSION)
      return void this.#mnsError(res, 400, "InvalidArgument", `x-mns-version must be ${MNS_API_VERSION}`, { auth: true });
    const date = h["date"];
    const dateMs = date ? Date.parse(date) : NaN;
    if (!date || !/ GMT$/.test(date) || !Number.isFinite(dateMs))
      return void this.#mnsError(res, 400, "InvalidArgument", "Date header is invalid or missing.", { auth: true });
    if (Math.abs(Date.now() - dateMs) > MAX_SKEW_MS)
      return void this.#mnsError(res, 400, "RequestTimeTooSkewed", "Date is too skewed.", { auth: true });
    const m = /^MNS ([^:\s]+):(\S+)$/.exec(h["authorization"] ?? "");
    if (!m) return void this.#mnsError(res, 400, "InvalidArgument", "Authorization header is invalid or missing.", { auth: true });
    const token = this.tokens.get(m[1]);
    if (!token) return void this.#mnsError(res, 403, "InvalidAccessKeyId", "The access Id you provided does not exist.", { auth: true });
    const contentMd5 = h["content-md5"] ?? "";
    const contentType = h["content-type"] ?? "";
    if (body.length > 0 || contentMd5) {
      // Content-MD5 must describe the body: base64 of the raw digest (RFC 1864), or base64 of
      // its hex text (the dybaseapi Python client's quirk, which the worker copies).
      const d = md5(body);
      const ok = [d.toString("base64"), Buffer.from(d.toString("hex")).toString("base64")].includes(contentMd5);
      if (!ok) return void this.#mnsError(res, 400, "InvalidDigest", "Content-MD5 does not match the body.", { auth: true });
    }
    const resource = url.pathname + url.search; // exactly as sent
    const mnsHeaders = Object.entries(h).filter(([k]) => k.startsWith("x-mns-"));
    const toSign = mnsStringToSign({ verb: req.method, contentMd5, contentType, date, mnsHeaders, resource });
    if (mnsSign(token.secret, toSign) !== m[2]) {
      return void this.#mnsError(res, 403, "SignatureDoesNotMatch", `The request signature we calculated does not match the signature you provided. string to sign: ${JSON.stringify(toSign)}`);
    }
    if (token.revoked || Date.now() >= token.validUntilMs)
      return void this.#mnsError(res, 403, "SecurityTokenExpired", "The Security Token you provided has expired.", { auth: true });
    if (h["security-token"] !== token.securityToken)
      return void this.#mnsError(res, 403, "SecurityTokenMalformed", "The Security Token you provided is invalid.", { auth: true });
    return token;
  }

  async #mns(req, url, body, res) {
    const m = /^\/queues\/([A-Za-z0-9_-]{1,256})\/messages$/.exec(url.pathname);
    if (!m) return this.#mnsError(res, 404, "InvalidArgument", `no such resource ${url.pathname}`);
    const token = this.#authenticate(req, url, body, res);
    if (!token) return;
    const queueName = m[1];
    const q = this.queues.get(queueName);
    if (!q) {
      this.counters.queueNotExist += 1;
      return this.#mnsError(res, 404, "QueueNotExist", "The queue name you provided is not exist.");
    }
    // Alicom tokens are per MessageType: another type's queue is refused.
    if (!queueName.endsWith(`-${token.messageType}`))
      return this.#mnsError(res, 403, "AccessDenied", `token of ${token.messageType} cannot access ${queueName}`, { auth: true });
    if (req.method === "GET") return this.#receive(q, url, req, res, token);
    if (req.method === "DELETE") return this.#delete(q, url, req, body, res);
    return this.#mnsError(res, 405, "InvalidArgument", `method ${req.method}`);
  }

  #wake() {
    for (const w of this.waiters) w();
  }

  async #receive(q, url, req, res, token) {
    const n = Number(url.searchParams.get("numOfMessages") ?? "1");
    const wait = Number(url.searchParams.get("waitseconds") ?? "0");
    if (!Number.isInteger(n) || n < 1 || n > 16) return this.#mnsError(res, 400, "InvalidArgument", "numOfMessages must be 1..16");
    if (!Number.isInteger(wait) || wait < 0 || wait > 30) return this.#mnsError(res, 400, "InvalidArgument", "waitseconds must be 0..30");
    this.counters.receives += 1;
    const deadline = Date.now() + wait * 1000;
    let gone = false;
    req.on("close", () => (gone = true));
    res.on("close", () => (gone = true));
    for (;;) {
      const now = Date.now();
      const ready = q.messages.filter((msg) => msg.nextVisible <= now).slice(0, n);
      if (ready.length > 0 || now >= deadline || this.closed || gone) {
        if (ready.length === 0) {
          this.counters.emptyReceives += 1;
          this.events.push({ kind: "receive", at: now, queue: q.name, ids: [], accessKeyId: token.accessKeyId });
          return this.#mnsError(res, 404, "MessageNotExist", "Message not exist.");
        }
        const parts = [];
        for (const msg of ready) {
          msg.dequeueCount += 1;
          msg.firstDequeueTime ??= now;
          msg.nextVisible = now + this.visibilityTimeoutMs;
          msg.handle = `1-${Buffer.from(`${msg.id}-${msg.dequeueCount}-${randomBytes(6).toString("hex")}`).toString("base64")}`;
          msg.handles.push(msg.handle);
          parts.push(
            `<Message><MessageId>${xmlEscape(msg.id)}</MessageId><ReceiptHandle>${xmlEscape(msg.handle)}</ReceiptHandle>` +
              `<MessageBodyMD5>${md5(Buffer.from(msg.body, "utf8")).toString("hex").toUpperCase()}</MessageBodyMD5>` +
              `<MessageBody>${xmlEscape(msg.body)}</MessageBody><EnqueueTime>${msg.enqueueTime}</EnqueueTime>` +
              `<NextVisibleTime>${msg.nextVisible}</NextVisibleTime><FirstDequeueTime>${msg.firstDequeueTime}</FirstDequeueTime>` +
              `<DequeueCount>${msg.dequeueCount}</DequeueCount><Priority>8</Priority></Message>`,
          );
        }
        this.counters.received += ready.length;
        this.events.push({ kind: "receive", at: now, queue: q.name, ids: ready.map((x) => x.id), handles: ready.map((x) => x.handle), accessKeyId: token.accessKeyId });
        return this.#send(res, 200, "text/xml;charset=utf-8", `<?xml version="1.0" encoding="UTF-8"?>\n<Messages xmlns="${MNS_XMLNS}">${parts.join("")}</Messages>`);
      }
      // Long poll: sleep until something is enqueued, a message turns visible, or the wait ends.
      const nextVisible = Math.min(...q.messages.map((msg) => msg.nextVisible).filter((t) => t > now), deadline);
      await new Promise((resolve) => {
        const t = setTimeout(done, Math.max(5, Math.min(nextVisible - now, 200)));
        const self = this;
        function done() {
          clearTimeout(t);
          self.waiters.delete(done);
          resolve();
        }
        this.waiters.add(done);
      });
    }
  }

  #delete(q, url, req, body, res) {
    const text = body.toString("utf8");
    if (!/^\s*(<\?xml[^>]*\?>)?\s*<ReceiptHandles\b[^>]*xmlns="http:\/\/mns\.aliyuncs\.com\/doc\/v1\/"/.test(text))
      return this.#mnsError(res, 400, "MalformedXML", "expected <ReceiptHandles xmlns=\"http://mns.aliyuncs.com/doc/v1/\">");
    const handles = [...text.matchAll(/<ReceiptHandle>([^<]*)<\/ReceiptHandle>/g)].map((x) => xmlUnescape(x[1]));
    if (handles.length < 1 || handles.length > 16) return this.#mnsError(res, 400, "InvalidArgument", "1..16 receipt handles");
    this.counters.deleteCalls += 1;
    if (this.faults.failDeletes > 0) {
      // The whole call fails (nothing deleted): an <Error>, as for a service-side failure.
      this.faults.failDeletes -= 1;
      this.events.push({ kind: "delete", at: Date.now(), queue: q.name, handles, ids: [], failures: handles.length });
      return this.#mnsError(res, 503, "InternalError", "injected: the service is busy, try again.");
    }
    const now = Date.now();
    const failures = [];
    const deletedIds = [];
    for (const h of handles) {
      const msg = q.messages.find((x) => x.handles.includes(h));
      if (!msg) {
        failures.push({ code: "MessageNotExist", message: "Message not exist.", handle: h });
        continue;
      }
      if (msg.handle !== h || msg.nextVisible <= now) {
        failures.push({ code: "ReceiptHandleError", message: "The receipt handle you provide is not valid.", handle: h });
        continue;
      }
      if (this.faults.staleDeletes > 0) {
        // As if the visibility timeout had passed just before the delete arrived.
        this.faults.staleDeletes -= 1;
        msg.nextVisible = now;
        failures.push({ code: "ReceiptHandleError", message: "The receipt handle you provide is not valid.", handle: h });
        continue;
      }
      if (this.faults.loseDeletes > 0) {
        // Answered as deleted, but the message stays and reappears after its visibility timeout.
        this.faults.loseDeletes -= 1;
        continue;
      }
      q.messages.splice(q.messages.indexOf(msg), 1);
      deletedIds.push(msg.id);
    }
    this.counters.deleted += deletedIds.length;
    this.counters.deleteEntryErrors += failures.length;
    this.events.push({ kind: "delete", at: now, queue: q.name, handles, ids: deletedIds, failures: failures.length });
    if (failures.length === 0) {
      res.writeHead(204, { "x-mns-request-id": randomBytes(12).toString("hex").toUpperCase() });
      return res.end();
    }
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?>\n<Errors xmlns="${MNS_XMLNS}">` +
      failures
        .map((f) => `<Error><ErrorCode>${f.code}</ErrorCode><ErrorMessage>${xmlEscape(f.message)}</ErrorMessage><ReceiptHandle>${xmlEscape(f.handle)}</ReceiptHandle></Error>`)
        .join("") +
      `</Errors>`;
    return this.#send(res, 404, "text/xml;charset=utf-8", xml);
  }
}

/** Starts a fake on 127.0.0.1 (random port). */
export async function startFakeAlibaba(options) {
  return new FakeAlibaba(options).start();
}
