// The `[vars]` of wrangler.toml, so tests and the benchmark run the worker with the same
// defaults a deploy gets. Only the simple `KEY = "value"` lines that section uses are read.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const WRANGLER_TOML = fileURLToPath(new URL("../wrangler.toml", import.meta.url));

export function wranglerVars(file = WRANGLER_TOML) {
  const vars = {};
  let inVars = false;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const t = line.trim();
    if (t.startsWith("[")) inVars = t === "[vars]";
    else if (inVars) {
      const m = /^([A-Z0-9_]+)\s*=\s*"([^"]*)"\s*(#.*)?$/.exec(t);
      if (m) vars[m[1]] = m[2];
    }
  }
  return vars;
}
