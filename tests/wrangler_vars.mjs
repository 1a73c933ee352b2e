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

/**
 * The `[[queues.producers]]` and `[[queues.consumers]]` of wrangler.toml as Miniflare options
 * (`queueProducers`, `queueConsumers`), so tests bind the queues a deploy gets.
 */
export function wranglerQueues(file = WRANGLER_TOML) {
  const producers = {};
  const consumers = {};
  let cur = null;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const t = line.trim();
    if (t === "[[queues.producers]]") cur = { kind: "p" };
    else if (t === "[[queues.consumers]]") cur = { kind: "c" };
    else if (t.startsWith("[")) cur = null;
    else if (cur) {
      const m = /^([a-z_]+)\s*=\s*(?:"([^"]*)"|(\d+))\s*$/.exec(t);
      if (!m) continue;
      cur[m[1]] = m[2] ?? Number(m[3]);
      if (cur.kind === "p" && cur.binding && cur.queue) producers[cur.binding] = { queueName: cur.queue };
      if (cur.kind === "c" && cur.queue) {
        consumers[cur.queue] = {
          maxBatchSize: cur.max_batch_size,
          maxBatchTimeout: cur.max_batch_timeout,
          maxRetries: cur.max_retries,
          deadLetterQueue: cur.dead_letter_queue,
        };
        for (const k of Object.keys(consumers[cur.queue])) {
          if (consumers[cur.queue][k] === undefined) delete consumers[cur.queue][k];
        }
      }
    }
  }
  return { queueProducers: producers, queueConsumers: consumers };
}
