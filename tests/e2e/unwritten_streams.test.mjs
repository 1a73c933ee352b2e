// Reading a stream that was never written answers like an empty inbox (or 404 when APPS names
// the streams that may exist and it is not one of them) and creates no storage: no inbox
// object, no entry in /v1/streams. The inbox objects' SQLite files are counted in Miniflare's
// persist directory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  startPersistentWorker, startWorker, fixture, assertSuccess, assertApiError,
} from "./harness.mjs";

const T = { timeout: 90_000 };
const vc = fixture("VoiceCallReportAiccs")[0];

function tempDir(t) {
  const dir = mkdtempSync(path.join(tmpdir(), "icc-e2e-unwritten-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** SQLite databases of Inbox objects under a persist directory (one per object). */
function inboxDatabases(dir) {
  const root = path.join(dir, "do");
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => d.endsWith("-Inbox"))
    .flatMap((d) => readdirSync(path.join(root, d)).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite"));
}

test("reads of invented streams answer empty and create no inbox", T, async (t) => {
  const dir = tempDir(t);
  let w = await startPersistentWorker(dir);
  try {
    assertSuccess(await w.push("bot", null, [vc]));
    const written = inboxDatabases(dir);
    assert.equal(written.length, 1, `one inbox for the written stream: ${written}`);

    const names = Array.from({ length: 40 }, (_, i) => `invented-${i}`);
    for (const name of names) {
      const page = await w.fetchReceipts(name);
      assert.equal(page.status, 200, page.text);
      assert.deepEqual(page.json, { receipts: [], next_after: 0, head_seq: 0, oldest_seq: 0, has_more: false });
      assert.deepEqual((await w.fetchReceipts(name, { consumer: "etl" })).json.receipts, []);
      assertApiError(await w.fetchReceipts(name, { after: 5 }), 409, "cursor_ahead");
      const q = await w.quarantine(name);
      assert.equal(q.status, 200, q.text);
      assert.deepEqual(q.json, { items: [], next_after: 0, has_more: false });
      const st = await w.stats(name);
      assert.equal(st.status, 200, st.text);
      assert.equal(st.json.streams[name].head_seq, 0);
      assert.deepEqual(st.json.streams[name].types, {});
      assert.deepEqual((await w.api("GET", `/v1/streams/${name}/consumers/etl`)).json, { after: 0, lag: 0 });
      assert.deepEqual((await w.api("DELETE", `/v1/streams/${name}/consumers/etl`)).json, { deleted: false });
    }
    // A long poll on an invented stream waits its time and answers the empty page.
    const t0 = performance.now();
    const held = await w.fetchReceipts("invented-poll", { wait: 1 });
    assert.equal(held.status, 200, held.text);
    assert.deepEqual(held.json.receipts, []);
    assert.ok(performance.now() - t0 >= 900, "the long poll was held");
    // Bad input is still a 400 on a stream that does not exist.
    assertApiError(await w.fetchReceipts("invented-0", { limit: 0 }), 400);
    assertApiError(await w.quarantine("invented-0", { limit: 0 }), 400);

    const listed = await w.api("GET", "/v1/streams");
    assert.deepEqual(listed.json, { streams: ["default"], next_stream: null });
    const all = await w.stats();
    assert.deepEqual(Object.keys(all.json.streams), ["default"]);
    assert.deepEqual(inboxDatabases(dir), written, "reads created inbox storage");
  } finally {
    await w.dispose();
  }
  assert.equal(inboxDatabases(dir).length, 1, "still one inbox on disk");
  // After a restart the written stream is still there and still the only one.
  w = await startPersistentWorker(dir);
  try {
    assert.equal((await w.allReceipts("default")).length, 1);
    assert.deepEqual((await w.api("GET", "/v1/streams")).json.streams, ["default"]);
  } finally {
    await w.dispose();
  }
});

test("a long poll on a stream not written yet is answered by its first push", T, async () => {
  const w = await startWorker();
  try {
    const t0 = performance.now();
    const poll = w.fetchReceipts("fresh", { wait: 15 });
    assertSuccess(await w.push("bot", "fresh", [vc]));
    const res = await poll;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.receipts.map((r) => r.raw), [vc]);
    assert.ok(performance.now() - t0 < 10_000, "answered by the push, not by the end of the wait");
  } finally {
    await w.dispose();
  }
});

test("a consumer PUT is a write: the stream exists from then on", T, async () => {
  const w = await startWorker();
  try {
    const put = await w.api("PUT", "/v1/streams/cursors-first/consumers/etl", { body: { after: 0 } });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual((await w.api("GET", "/v1/streams")).json.streams, ["cursors-first"]);
    assert.deepEqual((await w.api("DELETE", "/v1/streams/cursors-first/consumers/etl")).json, { deleted: true });
  } finally {
    await w.dispose();
  }
});

test("with APPS set, a stream outside it that was never written is 404", T, async () => {
  const w = await startWorker({ APPS: "shop1,crm" });
  try {
    for (const p of ["receipts", "quarantine", "stats", "consumers/etl"]) {
      assertApiError(await w.api("GET", `/v1/streams/typo/${p}`), 404, "not_found");
      for (const ok of ["default", "shop1"]) {
        const res = await w.api("GET", `/v1/streams/${ok}/${p}`);
        assert.equal(res.status, 200, `${ok}/${p}: ${res.text}`);
      }
    }
    assertApiError(await w.api("DELETE", "/v1/streams/typo/consumers/etl"), 404, "not_found");
    assert.deepEqual((await w.api("GET", "/v1/streams")).json.streams, []);
  } finally {
    await w.dispose();
  }
});
