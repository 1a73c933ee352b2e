// The console page at GET / in a real browser: Debian's chromium driven by playwright-core,
// against `wrangler dev` over real HTTP. Every request the page makes is recorded (HTTP and
// WebSocket) and must stay on the worker's origin; the token must live in sessionStorage only.
// Skipped (with the reason) when /usr/bin/chromium is missing: `bash scripts/setup.sh` installs it.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { sampleWithCallId, fixture, sleep, ROOT } from "./harness.mjs";
import { startWranglerDev, PUSH_TOKEN, FETCH_TOKEN } from "./wrangler_dev.mjs";

const CHROMIUM = "/usr/bin/chromium";
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (bash scripts/setup.sh installs it)`;
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"];

let dev, context, profile;
before(async () => {
  if (skip) return;
  const { chromium } = await import("playwright-core");
  dev = await startWranglerDev();
  profile = mkdtempSync(path.join(tmpdir(), "icc-console-profile-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 }, timeout: 60_000,
  });
});
after(async () => {
  await context?.close().catch(() => {});
  await dev?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function push(app, product, body) {
  const res = await fetch(`${dev.url}/icc/${product}/${app}?token=${PUSH_TOKEN}`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.text());
}

async function api(p) {
  const res = await fetch(`${dev.url}${p}`, { headers: { authorization: `Bearer ${FETCH_TOKEN}` } });
  assert.equal(res.status, 200, p);
  return res.json();
}

/** A new tab that records every request, WebSocket and console error. */
async function openPage() {
  const page = await context.newPage();
  const seen = { requests: [], sockets: [], errors: [], missing: [] };
  page.on("request", (r) => seen.requests.push(r.url()));
  page.on("response", (r) => { if (r.status() === 404) seen.missing.push(new URL(r.url()).pathname); });
  page.on("websocket", (ws) => seen.sockets.push(ws.url()));
  page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  await page.goto(`${dev.url}/`, { waitUntil: "load" });
  return { page, seen };
}

async function signIn(page, token) {
  await page.fill("#token", token);
  await page.click("#login-form button[type=submit]");
}

function assertSameOrigin(seen) {
  const origin = new URL(dev.url);
  for (const u of [...seen.requests, ...seen.sockets]) {
    const url = new URL(u);
    assert.equal(url.host, origin.host, `request outside the worker: ${url.origin}`);
    assert.ok(!u.includes(FETCH_TOKEN) && !u.includes(encodeURIComponent(FETCH_TOKEN)), "the token is in a URL");
    assert.ok(!u.includes(Buffer.from(FETCH_TOKEN).toString("base64url")), "the token (encoded) is in a URL");
  }
}

test("assets are served with a strict CSP and no auth", { skip }, async () => {
  for (const [p, type] of [["/", "text/html"], ["/console/app.js", "text/javascript"], ["/console/app.css", "text/css"]]) {
    const res = await fetch(`${dev.url}${p}`);
    assert.equal(res.status, 200, p);
    assert.ok(res.headers.get("content-type").startsWith(type), p);
    const csp = res.headers.get("content-security-policy");
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  }
  assert.equal((await fetch(`${dev.url}/console/nope.js`)).status, 404);
});

test("a wrong token shows a clear message and no data", { skip }, async () => {
  await push("pagewrong", "llm", [sampleWithCallId("LlmSmartCallReport", "page-wrong-1")]);
  const { page, seen } = await openPage();
  await signIn(page, "definitely-not-the-token");
  await page.waitForSelector("#login-error:not([hidden])", { timeout: 10_000 });
  assert.match(await page.textContent("#login-error"), /refused \(401\)/);
  assert.equal(await page.isVisible("#app"), false);
  assert.equal(await page.locator("#streams li").count(), 0);
  assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
  // The refused 401 is the only console error a browser reports here, besides the browser's own
  // /favicon.ico request (the worker serves no icon).
  assert.deepEqual(seen.errors.filter((e) => !/status of 401/.test(e) && !(/status of 404/.test(e) && seen.missing.every((p) => p === "/favicon.ico"))), []);
  assertSameOrigin(seen);
  await page.close();
});

test("with the token: streams, counters matching /v1/stats, live receipts, redrive, phone width", { skip, timeout: 120_000 }, async () => {
  const app = "pageok";
  await push(app, "llm", [sampleWithCallId("LlmSmartCallReport", "page-1"), sampleWithCallId("LlmSmartCallRecord", "page-2")]);
  await push(app, "llm", [sampleWithCallId("LlmSmartCallReport", "page-1")]); // a duplicate
  await push(app, "agent", [{ foo: 1, bar: "baz" }, fixture("AlicomAgentCallNote")[0]]); // one unknown_shape
  const { page, seen } = await openPage();
  await signIn(page, FETCH_TOKEN);
  await page.waitForSelector(`#streams button[data-stream="${app}"]`, { timeout: 10_000 });
  const listed = await page.$$eval("#streams button", (bs) => bs.map((b) => b.dataset.stream));
  assert.deepEqual(listed.sort(), (await api("/v1/streams")).streams.sort());
  await page.click(`#streams button[data-stream="${app}"]`);
  await page.waitForSelector("#tail-state.ok", { timeout: 10_000 });

  // Counters as /v1/stats has them.
  const stats = (await api("/v1/stats")).streams[app];
  const shown = await page.$$eval("#types tbody tr", (rows) => Object.fromEntries(rows.map((r) => [r.dataset.type,
    Object.fromEntries([...r.querySelectorAll("td[data-field]")].map((td) => [td.dataset.field, Number(td.textContent)]))])));
  const expected = Object.fromEntries(Object.entries(stats.types).map(([t, c]) => [t,
    { received: c.received, stored: c.stored, duplicate: c.duplicate, quarantined: c.quarantined, conflict: c.conflict }]));
  assert.deepEqual(shown, expected);
  assert.equal(shown.LlmSmartCallReport.duplicate, 1);

  // A receipt pushed now appears within 2 s, through the tail.
  const before = await page.locator("#live li").count();
  const t0 = Date.now();
  await push(app, "llm", [sampleWithCallId("LlmSmartCallReport", "page-live-1")]);
  const head = (await api(`/v1/streams/${app}/stats`)).streams[app].head_seq;
  await page.waitForSelector(`#live li[data-seq="${head}"]`, { timeout: 2_000 });
  const ms = Date.now() - t0;
  assert.ok(ms <= 2_000, `live after ${ms} ms`);
  assert.equal(await page.locator("#live li").count(), before + 1);
  assert.match(await page.textContent(`#live li[data-seq="${head}"]`), /page-live-1/);
  assert.ok(seen.sockets.some((u) => new URL(u).pathname === `/v1/streams/${app}/tail`), "the page uses the tail");

  // Quarantine lists the unknown_shape item with its raw bytes; redrive answers clearly.
  await page.waitForSelector("#quarantine li", { timeout: 5_000 });
  const q = page.locator("#quarantine li").first();
  assert.match(await q.textContent(), /unknown_shape/);
  assert.match(await q.locator(".raw").textContent(), /"foo"/);
  await q.locator("select").selectOption("AlicomAgentCallNote");
  await q.locator("button[type=submit]").click();
  await page.waitForSelector("#redrive-result:not([hidden])", { timeout: 5_000 });
  const result = await page.textContent("#redrive-result");
  // Either the redrive route answers (stored) or its error is shown as the API gave it.
  assert.match(result, /stored 1|not_found|method_not_allowed/, result);

  // Token: in sessionStorage only.
  const storage = await page.evaluate(() => ({ s: Object.values(sessionStorage), l: localStorage.length }));
  assert.deepEqual(storage, { s: [FETCH_TOKEN], l: 0 });
  const cookies = await context.cookies();
  assert.equal(cookies.length, 0);

  // Phone-sized: nothing overflows horizontally.
  await page.setViewportSize({ width: 390, height: 844 });
  await sleep(100);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `scrollWidth ${width} at 390 px`);
  await page.screenshot({ path: path.join(ROOT, "docs", "console-phone.png"), fullPage: false });
  await page.setViewportSize({ width: 1280, height: 900 });
  await sleep(100);
  await page.screenshot({ path: path.join(ROOT, "docs", "console.png"), fullPage: true });

  const unexpected = seen.errors.filter((e) => !/status of 404|status of 405/.test(e));
  assert.ok(seen.missing.every((p) => p === "/favicon.ico" || /\/redrive$/.test(p)), seen.missing.join());
  assert.deepEqual(unexpected, [], "console errors");
  assertSameOrigin(seen);
  await page.close();
});
