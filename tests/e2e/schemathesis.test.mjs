// The API description (openapi/openapi.yaml) against the worker, by a tool we did not write:
// schemathesis (PyPI, installed by scripts/setup.sh into .venv-schemathesis) generates requests
// from the description and checks every answer against it. It runs against `wrangler dev`
// started as `npm start` starts it (tests/e2e/wrangler_dev.mjs: free loopback port, throwaway
// state), after a few documented samples were pushed so streams exist.
//
// Bounded: at most MAX_EXAMPLES cases per operation and MAX_TIME_S for the whole run (plus the
// process timeout below). Checks: no 5xx, status codes, content types, response bodies and
// headers as described. Stateful links are followed (a page's next_after → the next page,
// consumer PUT → GET and read as that consumer). Every operation is included, the
// `v3` ones (redrive, dead letters, tail handshake, recording download, the console page) too.
//
// Also here: the description and the receipt schema are served without a token, byte for byte
// as in the repository.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startWranglerDev, ROOT, PUSH_TOKEN, FETCH_TOKEN } from "./wrangler_dev.mjs";

const ST = path.join(ROOT, ".venv-schemathesis", "bin", "st");
const DESCRIPTION = path.join(ROOT, "openapi", "openapi.yaml");
const MAX_EXAMPLES = 25;
const MAX_TIME_S = 150;

const sample = (product, type) => readFileSync(path.join(ROOT, "tests", "fixtures", "icc", product, `${type}.json`));

async function push(url, address, body) {
  const res = await fetch(`${url}/icc/${address}?token=${PUSH_TOKEN}`, { method: "POST", body });
  assert.equal(res.status, 200, `${address}: ${await res.text()}`);
}

/** Runs schemathesis; resolves {code, out}. Killed after timeoutMs. */
function runSchemathesis(args, { timeoutMs }) {
  return new Promise((resolve, reject) => {
    const child = spawn(ST, args, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, SCHEMATHESIS_TELEMETRY: "false", NO_COLOR: "1", COLUMNS: "160" },
    });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`schemathesis still running after ${timeoutMs} ms\n${out.slice(-4000)}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

test("schemathesis finds nothing outside the description (wrangler dev)", { timeout: 300_000 }, async (t) => {
  if (!existsSync(ST)) {
    // scripts/setup.sh installs it; `npm test` runs setup first.
    assert.fail(`${ST} is missing: run \`bash scripts/setup.sh\``);
  }
  // Short long polls, so a generated wait=… does not hold the run.
  const dev = await startWranglerDev({ vars: { MAX_WAIT_S: "1" } });
  const dir = mkdtempSync(path.join(tmpdir(), "icc-schemathesis-"));
  t.after(async () => {
    await dev.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // Streams to read: default (llm samples), shop1 (bot), and a consumer on default.
  await push(dev.url, "llm", sample("llm", "LlmSmartCallReport"));
  await push(dev.url, "llm", sample("llm", "LlmSmartCallRecord"));
  await push(dev.url, "bot/shop1", sample("bot", "VoiceCallReportAiccs"));
  await push(dev.url, "agent/shop1", "not json");

  // The description and the schema it references, served without a token.
  const yaml = await fetch(`${dev.url}/v1/openapi.yaml`);
  assert.equal(yaml.status, 200);
  assert.match(yaml.headers.get("content-type"), /^application\/yaml/);
  assert.equal(await yaml.text(), readFileSync(DESCRIPTION, "utf8"));
  const schema = await fetch(`${dev.url}/schema/receipt.v1.schema.json`);
  assert.equal(schema.status, 200);
  assert.match(schema.headers.get("content-type"), /^application\/schema\+json/);
  assert.deepEqual(await schema.json(), JSON.parse(readFileSync(path.join(ROOT, "schema", "receipt.v1.schema.json"), "utf8")));
  const post = await fetch(`${dev.url}/v1/openapi.yaml`, { method: "POST" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");

  // Both tokens through the description's security schemes.
  const config = path.join(dir, "schemathesis.toml");
  writeFileSync(
    config,
    [
      "[auth.openapi.pushToken]",
      `api_key = ${JSON.stringify(PUSH_TOKEN)}`,
      "[auth.openapi.fetchToken]",
      `bearer = ${JSON.stringify(FETCH_TOKEN)}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const junit = path.join(dir, "junit.xml");
  const { code, out } = await runSchemathesis(
    [
      "--config-file", config,
      "run", DESCRIPTION,
      "--url", dev.url,
      "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
      "--phases", "examples,coverage,fuzzing,stateful",
      "--max-examples", String(MAX_EXAMPLES),
      "--max-time", String(MAX_TIME_S),
      "--request-timeout", "10",
      "--workers", "1",
      "--seed", "1",
      "--report", "junit",
      "--report-junit-path", junit,
    ],
    { timeoutMs: (MAX_TIME_S + 60) * 1000 },
  );
  const summary = out.split("\n").filter((l) => /test cases|passed|failed|generated|operations/i.test(l)).join("\n");
  t.diagnostic(summary);
  assert.equal(code, 0, `schemathesis failed (exit ${code}):\n${out.slice(-8000)}`);
  // Every generated case passed (warnings, e.g. "mostly rejected generated data", are not failures).
  const cases = out.match(/(\d+) generated, (\d+) passed/);
  assert.ok(cases && cases[1] === cases[2] && Number(cases[1]) > 0, out.slice(-4000));
});
