// Starts the worker with `wrangler dev` the way `npm start` does (scripts/start.sh: local mode,
// loopback only, state under --persist-to), for tests that should see what a user running
// `npm start` sees, through real HTTP:
//  - a free 127.0.0.1 port (and a free inspector port), found by binding port 0;
//  - a throwaway state directory (KV, Durable Objects) removed by stop();
//  - the tokens (and any extra vars) in a temporary env file given with --env-file, so the
//    project's own .dev.vars is neither read nor written;
//  - the built build/: it must be up to date (the rule of scripts/build.sh); wrangler's [build]
//    command (scripts/build.sh) then only says "up to date" and nothing is compiled in a test.
// Every wait is bounded; stop() ends the whole process group (wrangler and its workerd).
//
//   const dev = await startWranglerDev();          // { url, port, pushToken, fetchToken, logs(), stop() }
//   try { await fetch(`${dev.url}/healthz`); } finally { await dev.stop(); }

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WRANGLER = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const BUILT = path.join(ROOT, "build", "index.js");
// The sources scripts/build.sh compares build/index.js with.
const SOURCES = ["src", "core/src", "openapi", "schema", "Cargo.toml", "Cargo.lock", "core/Cargo.toml"];

// 40-character test secrets, the same as tests/e2e/harness.mjs uses.
export const PUSH_TOKEN = "pushTOKEN-e2e-0123456789abcdefghijklmnop";
export const FETCH_TOKEN = "fetchTOKEN-e2e-0123456789abcdefghijklmno";

/** A port nobody listens on at the moment, on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function newestMtime(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const e of readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, e)));
  return newest;
}

/** Throws unless build/index.js exists and no source is newer (so wrangler will not compile). */
export function assertBuildUpToDate() {
  if (!existsSync(BUILT)) throw new Error("build/index.js is missing: run `bash scripts/build.sh` first");
  const built = statSync(BUILT).mtimeMs;
  for (const s of SOURCES) {
    const p = path.join(ROOT, s);
    if (existsSync(p) && newestMtime(p) > built) {
      throw new Error(`build/ is older than ${s}: run \`bash scripts/build.sh\` first (npm test does)`);
    }
  }
}

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");

/**
 * Starts `wrangler dev` on a free loopback port with throwaway state, and waits until
 * GET /healthz answers 200. Options: `vars` (extra worker vars, e.g. {ACK_DEADLINE_MS: "300"}),
 * `pushToken`, `fetchToken`, `readyTimeoutMs` (default 90 s), `stopTimeoutMs` (default 10 s).
 * Returns { url, port, pushToken, fetchToken, stateDir, logs(), stop() }.
 */
export async function startWranglerDev({
  vars = {},
  pushToken = PUSH_TOKEN,
  fetchToken = FETCH_TOKEN,
  readyTimeoutMs = 90_000,
  stopTimeoutMs = 10_000,
} = {}) {
  assertBuildUpToDate();
  const dir = mkdtempSync(path.join(tmpdir(), "icc-wrangler-dev-"));
  const stateDir = path.join(dir, "state");
  const envFile = path.join(dir, "dev.vars");
  const lines = Object.entries({ PUSH_TOKEN: pushToken, FETCH_TOKEN: fetchToken, ...vars })
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${JSON.stringify(String(v))}`);
  writeFileSync(envFile, `${lines.join("\n")}\n`, { mode: 0o600 });

  const port = await freePort();
  const inspectorPort = await freePort();
  const child = spawn(
    process.execPath,
    [WRANGLER, "dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort),
      "--local", "--persist-to", stateDir, "--env-file", envFile, "--show-interactive-dev-session=false"],
    {
      cwd: ROOT,
      detached: true, // its own process group, so stop() reaches workerd too
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
    },
  );
  let output = "";
  const collect = (chunk) => {
    if (output.length < 4_000_000) output += chunk.toString("utf8");
    if (process.env.E2E_LOG) process.stderr.write(chunk);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });

  let stopped = false;
  async function stop() {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      const signalGroup = (sig) => {
        try {
          process.kill(-child.pid, sig);
        } catch {
          // the group is gone already
        }
      };
      signalGroup("SIGTERM");
      const timer = setTimeout(() => signalGroup("SIGKILL"), stopTimeoutMs);
      await exitPromise;
      clearTimeout(timer);
      signalGroup("SIGKILL"); // stragglers of the group (workerd), if any
    }
    rmSync(dir, { recursive: true, force: true });
  }

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  try {
    for (;;) {
      if (exited) throw new Error(`wrangler dev exited (${exited.code ?? exited.signal}) before it was ready`);
      if (Date.now() > deadline) throw new Error(`wrangler dev not ready within ${readyTimeoutMs} ms`);
      if (/Ready on http/.test(stripAnsi(output))) {
        try {
          const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
          const body = await res.text();
          if (res.status === 200) break;
          if (res.status === 503) throw new Error(`worker misconfigured: ${body}`);
        } catch (err) {
          if (/misconfigured/.test(err.message)) throw err;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (err) {
    await stop();
    err.message += `\n--- wrangler dev output (tail) ---\n${stripAnsi(output).slice(-4000)}`;
    throw err;
  }

  return {
    url,
    port,
    pushToken,
    fetchToken,
    stateDir,
    /** Everything wrangler dev (and the worker's console) printed so far. */
    logs: () => stripAnsi(output),
    stop,
  };
}
