// A value the inbox cannot read is an error, never taken for 0. The test stops the runtime,
// damages the stored head (`meta.head_seq`) through a test-only Durable Object that opens the
// same persisted SQLite database, and restarts the worker: a push is refused with 503 (ICC
// retries) instead of writing a head of 0 back, reads answer an error instead of a wrong page,
// and the stored head is left as it was. Repaired, everything is as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Miniflare } from "miniflare";
import { startPersistentWorker, fixture, assertSuccess, assertIccAnswer } from "./harness.mjs";

const vc = fixture("VoiceCallReportAiccs")[0];
const vcN = (i) => ({ ...vc, call_id: `se-${i}^${i}` });

// Test configuration only: a JavaScript class with the inbox's name in a worker with the
// worker's name, so Miniflare opens the inbox's persisted database.
const DOCTOR = `
  export class Inbox {
    constructor(state) { this.state = state; }
    async fetch(request) {
      const sql = this.state.storage.sql;
      if (request.method === "PUT") {
        const v = await request.text();
        sql.exec("UPDATE meta SET v = ? WHERE k = 'head_seq'", v);
      }
      const [row] = [...sql.exec("SELECT v, typeof(v) AS t FROM meta WHERE k = 'head_seq'")];
      return Response.json(row ?? null);
    }
  }
  export default { async fetch() { return new Response("doctor"); } };
`;

async function headSeqOnDisk(dir, set) {
  const mf = new Miniflare({
    name: "icc-edge-inbox",
    modules: true,
    script: DOCTOR,
    compatibilityDate: "2026-04-01",
    durableObjects: { INBOX: { className: "Inbox", useSQLite: true } },
    durableObjectsPersist: path.join(dir, "do"),
  });
  try {
    const ns = await mf.getDurableObjectNamespace("INBOX");
    const res = await ns.get(ns.idFromName("default")).fetch("https://doctor/",
      set === undefined ? {} : { method: "PUT", body: String(set) });
    return await res.json();
  } finally {
    await mf.dispose();
  }
}

test("an unreadable head is an error, never a head of 0", { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "icc-e2e-storage-errors-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  let w = await startPersistentWorker(dir, { KV_FAST_PATH: "false" });
  try {
    assertSuccess(await w.push("bot", null, [vcN(1)]));
    assertSuccess(await w.push("bot", null, [vcN(2)]));
  } finally {
    await w.dispose();
  }
  assert.deepEqual(await headSeqOnDisk(dir), { v: 2, t: "integer" });
  assert.deepEqual(await headSeqOnDisk(dir, "not a number"), { v: "not a number", t: "text" });

  w = await startPersistentWorker(dir, { KV_FAST_PATH: "false" });
  try {
    // A resend (nothing new to store) would have written the head back as 0.
    assertIccAnswer(await w.push("bot", null, [vcN(2)]), 503, 503, "inbox_error");
    // A new receipt is not confirmed either: the commit does not know the head.
    assertIccAnswer(await w.push("bot", null, [vcN(3)]), 503, 503, "inbox_error");
    const read = await w.fetchReceipts("default", { after: 2 });
    assert.ok(read.status >= 500, `a read that cannot know the head fails: ${read.status} ${read.text}`);
    const consumer = await w.api("PUT", "/v1/streams/default/consumers/etl", { body: { after: 2 } });
    assert.ok(consumer.status >= 500, `${consumer.status} ${consumer.text}`);
  } finally {
    await w.dispose();
  }
  assert.deepEqual(await headSeqOnDisk(dir), { v: "not a number", t: "text" }, "the head was not overwritten");

  assert.deepEqual(await headSeqOnDisk(dir, 2), { v: 2, t: "integer" });
  w = await startPersistentWorker(dir, { KV_FAST_PATH: "false" });
  try {
    assertSuccess(await w.push("bot", null, [vcN(2)]));
    assertSuccess(await w.push("bot", null, [vcN(3)]));
    const all = await w.allReceipts("default");
    assert.deepEqual(all.map((r) => r.raw), [vcN(1), vcN(2), vcN(3)]);
    assert.equal((await w.fetchReceipts("default", { after: 2 })).json.head_seq, all.at(-1).seq);
  } finally {
    await w.dispose();
  }
});
