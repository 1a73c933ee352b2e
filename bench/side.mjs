// Side by side: this Worker and a peer Worker (BENCH_PEER=<path>: a folder with a wrangler.toml
// serving the same contract), each under `wrangler dev` (the project's wrangler, 127.0.0.1, free
// ports, throwaway state under --persist-to), driven in the same run, interleaved in rounds, with
// the same bodies. Every loop is bounded in count and time; only 127.0.0.1 is contacted.
//
// Rows (per round and target; the ratio is product / peer within the round):
//   a. p99 (and p50) of 200 sequential 100-message all-new pushes, after 20 warm-up pushes
//   b. accepted msg/s of 400 pushes of 100-message batches from 8 concurrent pushers
//   c. 1,000-message all-new pushes (p50/p99 over a bounded count, after 3 warm-ups)
//   d. 32 concurrent pushers × 400 pushes of 100 messages: accepted msg/s and connection resets
// plus workerd process CPU per push for each (all threads of the target's workerd).

import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { Client, FETCH_TOKEN, PUSH_TOKEN, batch, cpuWindow, now, sleep, summary } from "./lib.mjs";

const r2 = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? null : Number(x.toFixed(d)));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Every process below `root` (by parent pid), with its command name. */
function descendants(root) {
  const parent = new Map();
  const comm = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, "utf8");
      comm.set(Number(d), st.slice(st.indexOf("(") + 1, st.lastIndexOf(")")));
      parent.set(Number(d), Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // exited
    }
  }
  const out = [];
  for (const [pid] of parent) {
    for (let p = parent.get(pid), hops = 0; p && hops < 10; p = parent.get(p), hops++) {
      if (p === root) {
        out.push({ pid, comm: comm.get(pid) });
        break;
      }
    }
  }
  return out;
}

/** The product's wrangler.toml for the snapshot in `dir`: no [build] step (build/ is a copy). */
function productConfig(root, dir) {
  const toml = readFileSync(path.join(root, "wrangler.toml"), "utf8");
  const out = [];
  let skip = false;
  for (const line of toml.split("\n")) {
    if (/^\s*\[/.test(line)) skip = /^\s*\[build\]\s*$/.test(line);
    if (!skip) out.push(line);
  }
  writeFileSync(path.join(dir, "wrangler.toml"), out.join("\n"));
}

/** Copies the peer (without node_modules and local state) and installs its packages if it has
 * any beyond wrangler (the project's wrangler runs it). */
function preparePeer(peerPath, dir, log) {
  cpSync(peerPath, dir, {
    recursive: true,
    filter: (src) => !/[/\\](node_modules|\.wrangler)([/\\]|$)/.test(src),
  });
  const pkgFile = path.join(dir, "package.json");
  if (!existsSync(pkgFile)) return;
  const pkg = JSON.parse(readFileSync(pkgFile, "utf8"));
  const deps = { ...(pkg.dependencies ?? {}), ...(pkg.devDependencies ?? {}) };
  delete deps.wrangler;
  if (Object.keys(deps).length === 0) return;
  log(`peer: npm install in ${dir}`);
  const r = spawnSync("npm", ["install", "--no-audit", "--no-fund"], { cwd: dir, encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`peer npm install failed: ${(r.stderr || "").slice(-800)}`);
}

/** Starts `wrangler dev` for the folder `dir`; resolves when /healthz answers. */
async function startWrangler({ root, name, dir, stateDir, log }) {
  const port = await freePort();
  const inspector = await freePort();
  const args = [
    "dev",
    "--config", path.join(dir, "wrangler.toml"),
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(inspector),
    "--local",
    "--persist-to", stateDir,
    "--var", `PUSH_TOKEN:${PUSH_TOKEN}`,
    "--var", `FETCH_TOKEN:${FETCH_TOKEN}`,
    "--show-interactive-dev-session=false",
    "--log-level", "warn",
  ];
  const child = spawn(path.join(root, "node_modules/.bin/wrangler"), args, {
    cwd: dir,
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      NO_UPDATE_NOTIFIER: "1",
      CI: "1",
      BROWSER: "none",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logTail = "";
  const keep = (c) => (logTail = (logTail + c.toString("utf8")).slice(-20_000));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let exited = null;
  child.on("exit", (code, sig) => (exited = `${code ?? sig}`));
  const base = `http://127.0.0.1:${port}`;
  const client = new Client(base);
  const t0 = now();
  for (;;) {
    if (exited !== null) throw new Error(`${name}: wrangler dev exited (${exited})\n${logTail.slice(-2000)}`);
    if (now() - t0 > 120_000) {
      child.kill("SIGTERM");
      throw new Error(`${name}: wrangler dev not ready after 120 s\n${logTail.slice(-2000)}`);
    }
    try {
      const r = await client.request("GET", "/healthz");
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  client.close();
  const workerd = descendants(child.pid).filter((p) => p.comm === "workerd");
  return {
    name,
    base,
    pid: workerd.length ? workerd[workerd.length - 1].pid : null,
    readyMs: now() - t0,
    logTail: () => logTail,
    async stop() {
      if (exited !== null) return;
      const done = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await done;
      clearTimeout(t);
    },
  };
}

const isReset = (e) => ["ECONNRESET", "EPIPE", "ECONNREFUSED", "UND_ERR_SOCKET"].includes(e.code) || /socket hang up/.test(e.message);

/** Pushes `bodies` one after another; latency per push and workerd CPU per push. */
async function sequential(t, stream, bodies, maxMs) {
  const client = new Client(t.base, { sockets: 1 });
  const lat = [];
  const statuses = {};
  const end = cpuWindow(t.pid);
  const t0 = now();
  for (const body of bodies) {
    if (now() - t0 > maxMs) break;
    try {
      const r = await client.push("llm", stream, body);
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      lat.push(r.ms);
    } catch (e) {
      const k = `error ${e.code ?? e.message}`;
      statuses[k] = (statuses[k] ?? 0) + 1;
    }
  }
  const w = end();
  client.close();
  return { lat, statuses, cpu_ms_per_push: w.workerd_ms === null || !lat.length ? null : w.workerd_ms / lat.length, others_pct: w.others_pct };
}

/** `bodies` pushed by `c` concurrent pushers (each takes the next body); accepted msg/s. */
async function concurrent(t, stream, bodies, size, c, maxMs) {
  const client = new Client(t.base, { sockets: c });
  let next = 0;
  let accepted = 0;
  let resets = 0;
  const statuses = {};
  const errors = {};
  const lat = [];
  const end = cpuWindow(t.pid);
  const t0 = now();
  let tEnd = t0;
  const pusher = async () => {
    while (next < bodies.length && now() - t0 < maxMs) {
      const body = bodies[next++];
      try {
        const r = await client.push("llm", stream, body);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        lat.push(r.ms);
        if (r.status === 200) accepted += size;
      } catch (e) {
        if (isReset(e)) resets++;
        const k = `${e.code ?? ""} ${e.message}`.trim();
        errors[k] = (errors[k] ?? 0) + 1;
      }
      tEnd = now();
    }
  };
  await Promise.all(Array.from({ length: c }, pusher));
  const w = end();
  client.close();
  const seconds = (tEnd - t0) / 1000;
  return {
    pushes: next,
    accepted,
    seconds,
    msgs_per_s: seconds > 0 ? accepted / seconds : null,
    resets,
    statuses,
    errors,
    ...summary(lat),
    cpu_ms_per_push: w.workerd_ms === null || !next ? null : w.workerd_ms / next,
    workerd_cpu_pct: w.workerd_ms === null ? null : (w.workerd_ms / 1e3 / w.seconds) * 100,
    others_pct: w.others_pct,
  };
}

export async function sideBySide({ root, peerPath, buildDir, tmpRoot, quick, log, remainingMs, runId }) {
  const out = { peer: peerPath, rounds: [], targets: {}, notes: [] };
  const pdir = path.join(tmpRoot, "side-product");
  mkdirSync(pdir, { recursive: true });
  cpSync(buildDir, path.join(pdir, "build"), { recursive: true });
  productConfig(root, pdir);
  const qdir = path.join(tmpRoot, "side-peer");
  preparePeer(peerPath, qdir, log);

  const n = quick
    ? { rounds: 1, warm: 5, seq: 40, conc: 80, big: 6, bigWarm: 1, resets: 80 }
    : { rounds: Number(process.env.BENCH_ROUNDS ?? 3), warm: 20, seq: 200, conc: 400, big: 30, bigWarm: 3, resets: 400 };
  out.counts = n;

  const targets = [];
  try {
    for (const [name, dir] of [["product", pdir], ["peer", qdir]]) {
      const stateDir = path.join(tmpRoot, `side-state-${name}`);
      log(`side by side: starting ${name} under wrangler dev`);
      const t = await startWrangler({ root, name, dir, stateDir, log });
      log(`side by side: ${name} on ${t.base} (workerd pid ${t.pid}, ready in ${Math.round(t.readyMs)} ms)`);
      targets.push(t);
      out.targets[name] = { base: t.base, workerd_pid: t.pid, ready_ms: r2(t.readyMs, 0) };
    }
    for (let round = 0; round < n.rounds; round++) {
      if (remainingMs() < 60_000) {
        out.notes.push(`rounds after ${round} skipped: out of time`);
        break;
      }
      // Alternate which Worker goes first, so neither always meets a warmer or cooler machine.
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      const prefix = `side-${runId}-r${round}`;
      const rec = { round, first: order[0].name, a: {}, b: {}, c: {}, d: {} };
      const warm = Array.from({ length: n.warm }, (_, i) => batch(`${prefix}-aw`, i * 100, 100));
      const seq = Array.from({ length: n.seq }, (_, i) => batch(`${prefix}-a`, i * 100, 100));
      for (const t of order) {
        log(`side by side round ${round + 1}/${n.rounds}: ${t.name}, (a) ${n.warm} warm-up + ${n.seq} sequential 100-message pushes`);
        await sequential(t, `sa${round}`, warm, 60_000);
        const s = await sequential(t, `sa${round}`, seq, 120_000);
        rec.a[t.name] = { ...summary(s.lat), statuses: s.statuses, cpu_ms_per_push: s.cpu_ms_per_push, others_pct: s.others_pct };
      }
      const conc = Array.from({ length: n.conc }, (_, i) => batch(`${prefix}-b`, i * 100, 100));
      for (const t of order) {
        log(`side by side round ${round + 1}/${n.rounds}: ${t.name}, (b) ${n.conc} pushes of 100 from 8 concurrent pushers`);
        await sequential(t, `sb${round}`, [batch(`${prefix}-bw`, 0, 100)], 10_000);
        rec.b[t.name] = await concurrent(t, `sb${round}`, conc, 100, 8, 120_000);
      }
      const bigWarm = Array.from({ length: n.bigWarm }, (_, i) => batch(`${prefix}-cw`, i * 1000, 1000));
      const big = Array.from({ length: n.big }, (_, i) => batch(`${prefix}-c`, i * 1000, 1000));
      for (const t of order) {
        log(`side by side round ${round + 1}/${n.rounds}: ${t.name}, (c) ${n.big} sequential 1,000-message pushes`);
        await sequential(t, `sc${round}`, bigWarm, 60_000);
        const s = await sequential(t, `sc${round}`, big, 120_000);
        rec.c[t.name] = { ...summary(s.lat), statuses: s.statuses, cpu_ms_per_push: s.cpu_ms_per_push, others_pct: s.others_pct };
      }
      const many = Array.from({ length: n.resets }, (_, i) => batch(`${prefix}-d`, i * 100, 100));
      for (const t of order) {
        log(`side by side round ${round + 1}/${n.rounds}: ${t.name}, (d) ${n.resets} pushes of 100 from 32 concurrent pushers`);
        rec.d[t.name] = await concurrent(t, `sd${round}`, many, 100, 32, 120_000);
      }
      // Count check: every accepted message of (b) and (d) is stored.
      for (const t of targets) {
        const c = new Client(t.base);
        try {
          for (const k of ["b", "d"]) {
            const st = await c.stats(`s${k}${round}`);
            rec[k][t.name].stored = st.stored;
          }
        } catch (e) {
          out.notes.push(`stats check of ${t.name} failed: ${e.message}`);
        } finally {
          c.close();
        }
      }
      out.rounds.push(rec);
    }
  } finally {
    for (const t of targets) {
      const tail = t.logTail().split("\n").filter((l) => /error|reset|exceeded|uncaught/i.test(l)).slice(-10);
      if (tail.length) out.notes.push(`${t.name} wrangler log lines mentioning errors (last 10):\n${tail.join("\n")}`);
      await t.stop().catch(() => {});
    }
  }
  return out;
}

/** Rows of the side-by-side table: per row the median over rounds, the ratio per round. */
export function sideRows(side) {
  const med = (xs) => {
    const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
    return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
  };
  const row = (label, pick, better) => {
    const p = side.rounds.map((r) => pick(r, "product"));
    const q = side.rounds.map((r) => pick(r, "peer"));
    const ratios = side.rounds.map((_, i) => (p[i] !== null && q[i] ? p[i] / q[i] : null));
    return {
      label,
      product: r2(med(p)),
      peer: r2(med(q)),
      ratio: r2(med(ratios)),
      ratios: ratios.map((x) => r2(x)),
      product_rounds: p.map((x) => r2(x)),
      peer_rounds: q.map((x) => r2(x)),
      better,
    };
  };
  const g = (k, f) => (r, who) => (r[k][who] ? f(r[k][who]) : null);
  const n = side.counts;
  return [
    row(`(a) 100-msg push p99 ms (${n.seq} sequential, after ${n.warm} warm-up)`, g("a", (x) => x.p99), "lower"),
    row("(a) 100-msg push p50 ms", g("a", (x) => x.p50), "lower"),
    row("(a) workerd CPU ms per 100-msg push", g("a", (x) => x.cpu_ms_per_push), "lower"),
    row(`(b) accepted msg/s, 8 pushers × ${n.conc} pushes of 100`, g("b", (x) => x.msgs_per_s), "higher"),
    row("(b) workerd CPU ms per push", g("b", (x) => x.cpu_ms_per_push), "lower"),
    row(`(c) 1,000-msg push p50 ms (${n.big} sequential, after ${n.bigWarm} warm-up)`, g("c", (x) => x.p50), "lower"),
    row("(c) 1,000-msg push p99 ms", g("c", (x) => x.p99), "lower"),
    row("(c) workerd CPU ms per 1,000-msg push", g("c", (x) => x.cpu_ms_per_push), "lower"),
    row(`(d) accepted msg/s, 32 pushers × ${n.resets} pushes of 100`, g("d", (x) => x.msgs_per_s), "higher"),
    row("(d) connection resets, 32 pushers", g("d", (x) => x.resets), "lower"),
    row("(b) connection resets, 8 pushers", g("b", (x) => x.resets), "lower"),
  ];
}
