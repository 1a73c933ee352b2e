// The console page: reads the inbox through /v1 with the fetch token kept in this tab's
// sessionStorage, and watches a stream live through its WebSocket tail. Everything it shows is
// written with textContent: nothing from a receipt is ever parsed as HTML.
"use strict";

const KEY = "icc-inbox.fetch-token";
const TYPES = {
  llm: ["LlmSmartCallReport", "LlmSmartCallRecord"],
  agent: ["AlicomAgentCallReport", "AlicomAgentCallRecord", "AlicomAgentCallNote"],
  bot: ["VoiceReportAiccs", "VoiceCallReportAiccs", "VoiceRecordReportAiccs", "RobotCallReportAiccs"],
};
const FIELDS = ["call_id", "status_code", "status", "status_msg", "caller", "callee", "started_at",
  "ended_at", "duration_s", "hangup_by", "intent", "recording"];
const LIVE_MAX = 100;
const MINUTES = 30;

const $ = (id) => document.getElementById(id);
const state = { token: null, stream: null, socket: null, retry: null, refresh: null, perMinute: new Map(), qAfter: 0, lastSeq: 0 };

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const res = await fetch(path, {
    ...options,
    headers: { ...(options.headers || {}), Authorization: `Bearer ${state.token}` },
    cache: "no-store",
  });
  if (res.status === 401) throw new Unauthorized("unauthorized");
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  if (!res.ok) {
    const msg = body && body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`;
    throw new Error(msg);
  }
  return body;
}

const enc = encodeURIComponent;
const text = (el, value) => { el.textContent = value == null ? "" : String(value); return el; };
function el(tag, cls, value) { const e = document.createElement(tag); if (cls) e.className = cls; if (value !== undefined) text(e, value); return e; }
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

// ------------------------------------------------------------------ sign in / out

function showLogin(message) {
  stopStream();
  state.token = null;
  sessionStorage.removeItem(KEY);
  $("app").hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  const err = $("login-error");
  err.hidden = !message;
  text(err, message || "");
}

async function signIn(token) {
  state.token = token;
  try {
    const streams = await listStreams();
    sessionStorage.setItem(KEY, token);
    $("login").hidden = true;
    $("app").hidden = false;
    $("signout").hidden = false;
    renderStreams(streams);
    const pick = streams.includes(state.stream) ? state.stream : streams[0];
    if (pick) selectStream(pick);
  } catch (e) {
    showLogin(e instanceof Unauthorized ? "That token was refused (401). Check FETCH_TOKEN." : `Could not reach the inbox: ${e.message}`);
  }
}

async function listStreams() {
  const names = [];
  let after = null;
  for (let i = 0; i < 20; i++) {
    const page = await api(`/v1/streams${after ? `?after=${enc(after)}` : ""}`);
    names.push(...page.streams);
    after = page.next_stream ?? null;
    if (!after) break;
  }
  return names;
}

function renderStreams(names) {
  const ul = $("streams");
  clear(ul);
  $("streams-empty").hidden = names.length > 0;
  for (const name of names) {
    const li = el("li");
    const b = el("button", "", name);
    b.type = "button";
    b.dataset.stream = name;
    b.setAttribute("aria-current", String(name === state.stream));
    b.addEventListener("click", () => selectStream(name));
    li.append(b);
    ul.append(li);
  }
}

// ------------------------------------------------------------------ one stream

function stopStream() {
  if (state.socket) { state.socket.onclose = null; state.socket.close(1000); state.socket = null; }
  clearTimeout(state.retry);
  clearInterval(state.refresh);
}

async function selectStream(name) {
  stopStream();
  state.stream = name;
  state.perMinute = new Map();
  state.qAfter = 0;
  for (const b of document.querySelectorAll("#streams button")) b.setAttribute("aria-current", String(b.dataset.stream === name));
  $("stream-view").hidden = false;
  text($("stream-title"), name);
  clear($("live"));
  $("live-empty").hidden = false;
  clear($("quarantine"));
  try {
    const stats = await refreshStats();
    await loadRecent(stats);
    await loadQuarantine(true);
    openTail(stats ? stats.head_seq : 0);
  } catch (e) {
    if (e instanceof Unauthorized) return showLogin("The token is no longer accepted (401).");
    text($("stream-meta"), `error: ${e.message}`);
  }
  state.refresh = setInterval(() => refreshStats().catch((e) => { if (e instanceof Unauthorized) showLogin("The token is no longer accepted (401)."); }), 5000);
}

async function refreshStats() {
  const name = state.stream;
  const all = await api(`/v1/streams/${enc(name)}/stats`);
  if (name !== state.stream) return null;
  const s = all.streams[name] || {};
  text($("stream-meta"), `head ${s.head_seq ?? 0} · oldest ${s.oldest_seq ?? 0} · ${formatBytes(s.db_bytes ?? 0)}${s.kv_answered ? ` · ${s.kv_answered} answered from KV` : ""}${s.spool_pending ? ` · ${s.spool_pending} bodies spooled` : ""}`);
  renderTypes(s.types || {});
  renderConsumers(s.consumers || {});
  renderDelivery(s);
  renderRecordings(s);
  return s;
}

function renderTypes(types) {
  const tbody = $("types").tBodies[0];
  clear(tbody);
  for (const [type, c] of Object.entries(types).sort()) {
    const tr = el("tr");
    tr.dataset.type = type;
    tr.append(el("td", "", type));
    for (const k of ["received", "stored", "duplicate", "quarantined", "conflict"]) {
      const td = el("td", "num", c[k] ?? 0);
      td.dataset.field = k;
      tr.append(td);
    }
    tr.append(el("td", "small", c.last_received_at ?? ""));
    tbody.append(tr);
  }
}

function renderConsumers(consumers) {
  const tbody = $("consumers").tBodies[0];
  clear(tbody);
  const entries = Object.entries(consumers);
  $("consumers-empty").hidden = entries.length > 0;
  for (const [name, c] of entries) {
    const tr = el("tr");
    tr.append(el("td", "", name), el("td", "num", c.after), el("td", "num", c.lag));
    tbody.append(tr);
  }
}

function kv(dl, pairs) {
  clear(dl);
  for (const [k, v] of pairs) dl.append(el("dt", "", k), el("dd", "", v));
}

function renderDelivery(s) {
  const on = "forwarded_through" in s || "webhook_delivered" in s || "dead_letters" in s;
  $("delivery-card").hidden = !on;
  if (!on) return;
  kv($("delivery"), [
    ["forwarded through", s.forwarded_through ?? "–"],
    ["forward lag", s.forward_lag ?? "–"],
    ["forward errors", s.forward_errors ?? 0],
    ["webhook delivered", s.webhook_delivered ?? 0],
    ["webhook retried", s.webhook_retried ?? 0],
    ["dead letters", s.dead_letters ?? 0],
  ]);
  const wrap = $("dead-letters-wrap");
  wrap.hidden = !s.dead_letters;
  if (s.dead_letters) loadDeadLetters().catch(() => {});
}

async function loadDeadLetters() {
  const page = await api(`/v1/streams/${enc(state.stream)}/dead-letters?limit=50`);
  const tbody = $("dead-letters").tBodies[0];
  clear(tbody);
  for (const d of page.items) {
    const tr = el("tr");
    tr.append(el("td", "num", d.seq), el("td", "", d.type), el("td", "num", d.attempts), el("td", "num", d.last_status ?? ""), el("td", "small", d.last_error ?? ""));
    tbody.append(tr);
  }
}

function renderRecordings(s) {
  const on = "recordings_archived" in s;
  $("recordings-card").hidden = !on;
  if (!on) return;
  kv($("recordings"), [
    ["archived", s.recordings_archived],
    ["pending", s.recordings_pending ?? 0],
    ["failed", s.recordings_failed ?? 0],
    ["bytes", formatBytes(s.recordings_bytes ?? 0)],
  ]);
}

// ------------------------------------------------------------------ receipts, chart, live

async function loadRecent(stats) {
  if (!stats || !stats.head_seq) { drawChart(); return; }
  const floor = Math.max(0, (stats.oldest_seq || 1) - 1);
  const after = Math.max(floor, stats.head_seq - 1000);
  const page = await api(`/v1/streams/${enc(state.stream)}/receipts?after=${after}&limit=1000`);
  for (const r of page.receipts) count(r);
  drawChart();
  const recent = page.receipts.slice(-20);
  for (const r of recent) addLive(r, false);
}

function minuteOf(iso) { const t = Date.parse(iso); return Number.isFinite(t) ? Math.floor(t / 60000) : null; }
function count(r) {
  const m = minuteOf(r.received_at);
  if (m === null) return;
  state.perMinute.set(m, (state.perMinute.get(m) || 0) + 1);
}

function drawChart() {
  const now = Math.floor(Date.now() / 60000);
  const counts = [];
  for (let m = now - MINUTES + 1; m <= now; m++) counts.push(state.perMinute.get(m) || 0);
  const max = Math.max(1, ...counts);
  const W = 600, H = 140, pad = 18, bw = (W - pad) / MINUTES;
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const axis = document.createElementNS(NS, "line");
  axis.setAttribute("class", "axis");
  axis.setAttribute("x1", pad); axis.setAttribute("x2", W); axis.setAttribute("y1", H - pad); axis.setAttribute("y2", H - pad);
  svg.append(axis);
  counts.forEach((c, i) => {
    const h = ((H - 2 * pad) * c) / max;
    const r = document.createElementNS(NS, "rect");
    r.setAttribute("class", "bar");
    r.setAttribute("x", pad + i * bw + 1); r.setAttribute("width", Math.max(1, bw - 2));
    r.setAttribute("y", H - pad - h); r.setAttribute("height", h);
    const title = document.createElementNS(NS, "title");
    title.textContent = `${c} receipts, ${MINUTES - 1 - i} min ago`;
    r.append(title);
    svg.append(r);
  });
  for (const [label, y] of [[String(max), pad], ["0", H - pad]]) {
    const t = document.createElementNS(NS, "text");
    t.setAttribute("x", 0); t.setAttribute("y", y + 3); t.textContent = label;
    svg.append(t);
  }
  const t = document.createElementNS(NS, "text");
  t.setAttribute("x", W - 40); t.setAttribute("y", H - 4); t.textContent = "now";
  svg.append(t);
  const box = $("chart");
  clear(box);
  box.setAttribute("data-total", String(counts.reduce((a, b) => a + b, 0)));
  box.append(svg);
}

function addLive(r, fresh) {
  if (r.seq <= state.lastSeq && fresh) return;
  state.lastSeq = Math.max(state.lastSeq, r.seq);
  const li = $("receipt-tpl").content.firstElementChild.cloneNode(true);
  li.dataset.seq = r.seq;
  li.dataset.id = r.id;
  if (fresh) li.classList.add("fresh");
  text(li.querySelector(".seq"), `#${r.seq}`);
  text(li.querySelector(".type"), r.type);
  text(li.querySelector(".time"), r.received_at);
  const dl = li.querySelector(".fields");
  for (const f of FIELDS) {
    if (r[f] === undefined) continue;
    const v = f === "recording" ? r[f].status : typeof r[f] === "object" ? JSON.stringify(r[f]) : r[f];
    dl.append(el("dt", "", f), el("dd", "", v));
  }
  text(li.querySelector(".raw"), JSON.stringify(r.raw, null, 2));
  const list = $("live");
  list.prepend(li);
  while (list.children.length > LIVE_MAX) list.lastElementChild.remove();
  $("live-empty").hidden = true;
}

function b64url(s) {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function tailState(label, cls) { const p = $("tail-state"); text(p, label); p.className = `pill ${cls || ""}`; }

function openTail(after) {
  const name = state.stream;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // The token travels as a WebSocket subprotocol (browsers cannot set headers on a WebSocket),
  // so it never appears in a URL.
  const ws = new WebSocket(`${scheme}://${location.host}/v1/streams/${enc(name)}/tail?after=${after}`, ["icc-tail.v1", `bearer.${b64url(state.token)}`]);
  state.socket = ws;
  tailState("connecting");
  ws.onopen = () => tailState("live", "ok");
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg.receipt) {
      count(msg.receipt);
      addLive(msg.receipt, true);
      drawChart();
    } else if (msg.lagged) {
      after = msg.resume_after;
    }
  };
  ws.onclose = (ev) => {
    if (state.socket !== ws || state.stream !== name) return;
    state.socket = null;
    tailState(ev.code === 1008 ? "refused" : "reconnecting", "bad");
    if (ev.code === 1008) return;
    state.retry = setTimeout(() => openTail(Math.max(after, state.lastSeq)), 2000);
  };
}

// ------------------------------------------------------------------ quarantine and redrive

async function loadQuarantine(reset) {
  if (reset) { state.qAfter = 0; clear($("quarantine")); }
  const page = await api(`/v1/streams/${enc(state.stream)}/quarantine?after=${state.qAfter}&limit=50`);
  for (const item of page.items) $("quarantine").append(quarantineItem(item));
  state.qAfter = page.next_after ?? state.qAfter;
  $("quarantine-empty").hidden = $("quarantine").children.length > 0;
  $("quarantine-more").hidden = !page.has_more;
}

function productOf(address) {
  const m = /^\/icc\/(llm|agent|bot)(\/|$)/.exec(address || "");
  return m ? m[1] : null;
}

function quarantineItem(item) {
  const li = $("quarantine-tpl").content.firstElementChild.cloneNode(true);
  li.dataset.seq = item.seq;
  text(li.querySelector(".seq"), `#${item.seq}`);
  text(li.querySelector(".reason"), item.reason);
  text(li.querySelector(".addr"), item.address);
  text(li.querySelector(".time"), item.received_at);
  text(li.querySelector(".raw"), item.raw ?? `base64: ${item.raw_base64 ?? ""}`);
  text(li.querySelector(".outcome"), item.redriven_at ? `redriven ${item.redriven_at}: ${item.redrive_outcome}` : "");
  const form = li.querySelector("form");
  const select = form.querySelector("select");
  for (const t of TYPES[productOf(item.address)] || []) {
    const o = el("option", "", t);
    o.value = t;
    select.append(o);
  }
  if (item.reason === "too_large") form.hidden = true;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    const type = select.value;
    const out = $("redrive-result");
    try {
      const r = await api(`/v1/streams/${enc(state.stream)}/quarantine/${item.seq}/redrive${type ? `?type=${enc(type)}` : ""}`, { method: "POST" });
      out.hidden = false;
      out.className = "notice";
      text(out, `#${item.seq}: stored ${r.stored}, duplicate ${r.duplicate}, conflict ${r.conflict}, quarantined ${r.quarantined}`);
      text(li.querySelector(".outcome"), `redriven: ${r.stored ? "stored" : r.duplicate ? "duplicate" : r.conflict ? "conflict" : "quarantined"}`);
      refreshStats().catch(() => {});
    } catch (e) {
      out.hidden = false;
      out.className = "error";
      text(out, e instanceof Unauthorized ? "unauthorized" : `#${item.seq}: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });
  return li;
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

// ------------------------------------------------------------------ start

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    if (token) signIn(token);
  });
  $("signout").addEventListener("click", () => showLogin(""));
  $("quarantine-more").addEventListener("click", () => loadQuarantine(false).catch(() => {}));
  $("redeliver-all").addEventListener("click", async () => {
    try { await api(`/v1/streams/${enc(state.stream)}/dead-letters/redeliver`, { method: "POST" }); await refreshStats(); } catch { /* shown by the next refresh */ }
  });
  fetch("/healthz", { cache: "no-store" }).then((r) => r.json()).then((h) => {
    const p = $("health");
    p.hidden = false;
    text(p, h.ok ? "healthy" : `problems: ${(h.problems || []).length}`);
    p.className = `pill ${h.ok ? "ok" : "bad"}`;
    if (!h.ok) p.title = (h.problems || []).join("\n");
  }).catch(() => {});
  setInterval(() => { if (state.stream && !$("app").hidden) drawChart(); }, 30000);
  const saved = sessionStorage.getItem(KEY);
  if (saved) signIn(saved);
});
