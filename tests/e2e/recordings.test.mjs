// Recording archive (README "Recording archive"): receipts with a recording_url get an archive
// job; the inbox's alarm streams the file from an allowed host into R2 (Miniflare's local R2)
// and the pull API serves it back. The recording host is a loopback node:http server on
// 127.0.0.1, allowed only through this test's RECORDING_HOSTS; a second server on 127.0.0.2
// stands for a host that is not allowed and must never see a request.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { startWorkerWith, sampleWithCallId, assertSuccess } from "./harness.mjs";

const sha = (b) => createHash("sha256").update(b).digest("hex");
const FIELD = { LlmSmartCallRecord: "record_file", AlicomAgentCallRecord: "recordFile", VoiceRecordReportAiccs: "record_file" };
const PRODUCT = { LlmSmartCallRecord: "llm", AlicomAgentCallRecord: "agent", VoiceRecordReportAiccs: "bot" };

/** A loopback file server: `files` path → {status, body, type} or a function(req, res, hits). */
function fileServer(host, files) {
  const hits = new Map();
  const server = http.createServer((req, res) => {
    const n = (hits.get(req.url) ?? 0) + 1;
    hits.set(req.url, n);
    const f = files[req.url];
    if (typeof f === "function") return f(req, res, n);
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(f.status ?? 200, { "content-type": f.type ?? "audio/wav", "content-length": f.body.length });
    res.end(f.body);
  });
  return new Promise((resolve) =>
    server.listen(0, host, () => resolve({ server, hits, base: `http://${host}:${server.address().port}` })),
  );
}

const small = randomBytes(50_000);
const mp3 = randomBytes(12_345);
const big = randomBytes(20 * 1024 * 1024);
let w, ok, other;

before(async () => {
  other = await fileServer("127.0.0.2", { "/never.wav": { body: small } });
  ok = await fileServer("127.0.0.1", {
    "/a.wav": { body: small },
    "/b.mp3": { body: mp3, type: "audio/mpeg" },
    "/c.wav": { body: small },
    "/missing.wav": { status: 404, body: Buffer.alloc(0) },
    "/flaky.wav": (req, res, n) => {
      if (n === 1) res.writeHead(500).end();
      else res.writeHead(200, { "content-type": "audio/wav", "content-length": small.length }).end(small);
    },
    "/hop.wav": (req, res) => res.writeHead(302, { location: "/a.wav" }).end(),
    "/away.wav": (req, res) => res.writeHead(302, { location: `${other.base}/never.wav` }).end(),
    "/big.wav": { body: big },
  });
  w = await startWorkerWith(
    { r2Buckets: ["RECORDINGS"] },
    // ARCHIVE_BACKOFF_S=1: retries after 1 s, 2 s, … instead of 30 s, 60 s, … (test only).
    { ARCHIVE_RECORDINGS: "true", RECORDING_HOSTS: "127.0.0.1", ARCHIVE_BACKOFF_S: "1" },
  );
});

after(async () => {
  await w?.dispose();
  ok?.server.close();
  other?.server.close();
});

let n = 0;
async function pushRecord(type, url, stream) {
  const m = sampleWithCallId(type, `rec-${Date.now()}-${++n}`);
  m[FIELD[type]] = url;
  assertSuccess(await w.push(PRODUCT[type], stream, [m], { type }));
  return m;
}

/** Polls the stream until the receipt of `m` has a recording status other than pending. */
async function settled(stream, type, deadlineMs = 30_000) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const rs = await w.allReceipts(stream);
    const r = rs.find((x) => x.type === type);
    assert.ok(r, "receipt stored");
    if (r.recording && r.recording.status !== "pending") return r;
    assert.ok(Date.now() < end, `still ${JSON.stringify(r.recording)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

async function download(stream, id, headers = {}) {
  const res = await w.mf.dispatchFetch(
    `http://inbox.test/v1/streams/${stream}/receipts/${encodeURIComponent(id)}/recording`,
    { headers: { authorization: `Bearer ${(await import("./harness.mjs")).FETCH_TOKEN}`, ...headers } },
  );
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

for (const [type, file, body, ct] of [
  ["LlmSmartCallRecord", "/a.wav", small, "audio/wav"],
  ["AlicomAgentCallRecord", "/b.mp3", mp3, "audio/mpeg"],
  ["VoiceRecordReportAiccs", "/c.wav", small, "audio/wav"],
]) {
  test(`${type}: archived into R2 with the same bytes, sha256 and type; served whole and by Range`, async () => {
    const stream = `r-${type}`;
    await pushRecord(type, `${ok.base}${file}`, stream);
    const r = await settled(stream, type);
    assert.equal(r.recording.status, "archived");
    assert.equal(r.recording.size, body.length);
    assert.equal(r.recording.sha256, sha(body));
    assert.match(r.recording.archived_at, /Z$/);
    const obj = await (await w.mf.getR2Bucket("RECORDINGS")).get(`${stream}/${r.id}`);
    assert.ok(obj, "R2 object exists");
    const stored = Buffer.from(await obj.arrayBuffer());
    assert.equal(sha(stored), sha(body));
    assert.equal(obj.httpMetadata.contentType, ct);

    const whole = await download(stream, r.id);
    assert.equal(whole.res.status, 200);
    assert.equal(whole.res.headers.get("content-type"), ct);
    assert.equal(whole.res.headers.get("content-length"), String(body.length));
    assert.ok(whole.res.headers.get("etag"));
    assert.ok(whole.body.equals(body));

    const part = await download(stream, r.id, { range: "bytes=100-199" });
    assert.equal(part.res.status, 206);
    assert.equal(part.res.headers.get("content-range"), `bytes 100-199/${body.length}`);
    assert.ok(part.body.equals(body.subarray(100, 200)));
    const tail = await download(stream, r.id, { range: "bytes=-10" });
    assert.equal(tail.res.status, 206);
    assert.ok(tail.body.equals(body.subarray(body.length - 10)));
    const beyond = await download(stream, r.id, { range: `bytes=${body.length}-` });
    assert.equal(beyond.res.status, 416);

    const st = (await w.stats(stream)).json.streams[stream];
    assert.equal(st.recordings_archived, 1);
    assert.equal(st.recordings_pending, 0);
    assert.equal(st.recordings_bytes, body.length);
  });
}

test("a 404 from the source is gone, not retried; the download route answers 404 with the status", async () => {
  const stream = "r-gone";
  await pushRecord("LlmSmartCallRecord", `${ok.base}/missing.wav`, stream);
  const r = await settled(stream, "LlmSmartCallRecord");
  assert.equal(r.recording.status, "gone");
  await new Promise((res) => setTimeout(res, 1500));
  assert.equal(ok.hits.get("/missing.wav"), 1, "gone is never retried");
  const d = await download(stream, r.id);
  assert.equal(d.res.status, 404);
  assert.match(d.body.toString(), /not archived/);
  const st = (await w.stats(stream)).json.streams[stream];
  assert.equal(st.recordings_failed, 1);
});

test("hosts not in RECORDING_HOSTS are refused and never contacted", async () => {
  const port = new URL(ok.base).port;
  const cases = [
    `${other.base}/never.wav`,
    `http://localhost:${port}/a.wav?via=localhost`,
    `http://[::ffff:127.0.0.1]:${port}/a.wav?via=mapped`,
    `http://user:pw@127.0.0.1:${port}/a.wav?via=userinfo`,
    `ftp://127.0.0.1:${port}/a.wav`,
  ];
  for (const [i, url] of cases.entries()) {
    const stream = `r-refused-${i}`;
    await pushRecord("LlmSmartCallRecord", url, stream);
    const r = await settled(stream, "LlmSmartCallRecord");
    assert.equal(r.recording.status, "refused", url);
  }
  assert.equal(other.hits.size, 0, "the other host saw no request");
  assert.equal([...ok.hits.keys()].filter((k) => k.includes("via=")).length, 0, "no other spelling reached the server");
});

test("a redirect to another host is refused; a redirect on the allowed host is followed", async () => {
  await pushRecord("LlmSmartCallRecord", `${ok.base}/away.wav`, "r-away");
  const away = await settled("r-away", "LlmSmartCallRecord");
  assert.equal(away.recording.status, "refused");
  assert.equal(other.hits.size, 0);
  await pushRecord("LlmSmartCallRecord", `${ok.base}/hop.wav`, "r-hop");
  const hop = await settled("r-hop", "LlmSmartCallRecord");
  assert.equal(hop.recording.status, "archived");
  assert.equal(hop.recording.sha256, sha(small));
});

test("a source failing with 500 is retried with backoff until archived", async () => {
  await pushRecord("LlmSmartCallRecord", `${ok.base}/flaky.wav`, "r-flaky");
  const r = await settled("r-flaky", "LlmSmartCallRecord");
  assert.equal(r.recording.status, "archived");
  assert.equal(ok.hits.get("/flaky.wav"), 2);
});

test("a 20 MB file streams into R2 with the right size and sha256", async () => {
  await pushRecord("LlmSmartCallRecord", `${ok.base}/big.wav`, "r-big");
  const t0 = Date.now();
  const r = await settled("r-big", "LlmSmartCallRecord", 90_000);
  const s = (Date.now() - t0) / 1000;
  assert.equal(r.recording.status, "archived");
  assert.equal(r.recording.size, big.length);
  assert.equal(r.recording.sha256, sha(big));
  const d = await download("r-big", r.id);
  assert.equal(sha(d.body), sha(big));
  console.log(`20 MB archived in ${s.toFixed(2)} s (${(20 / s).toFixed(1)} MB/s, including polling)`);
});

test("without the archive, receipts carry no recording and the route answers 404", async () => {
  const stream = "r-plain";
  const m = sampleWithCallId("LlmSmartCallRecord", `plain-${Date.now()}`);
  // A receipt stored in a stream of this worker with the archive on gets a job, so use a
  // receipt without recording_url instead.
  delete m.record_file;
  m.end_time = "2025-01-15 10:27:54";
  assertSuccess(await w.push("llm", stream, [m], { type: "LlmSmartCallRecord" }));
  const [r] = await w.allReceipts(stream);
  assert.equal(r.recording, undefined);
  const d = await download(stream, r.id);
  assert.equal(d.res.status, 404);
});
