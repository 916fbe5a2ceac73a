// `tsx cluster/recheck.ts <history.json> [seed nodes queues producers consumers]`: runs the checker
// again on a kept run's raw history (FAULT_KEEP=1 or chaos keep it beside the node logs) and prints
// the report table, so a verdict can be re-derived after the checker changes.

import { readFileSync } from 'node:fs';
import { check, type History } from './checker.js';
import { renderMarkdown } from './report.js';

const [file, ...rest] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: tsx cluster/recheck.ts <history.json> [seed nodes queues producers consumers]\n');
  process.exit(64);
}
const history = JSON.parse(readFileSync(file, 'utf8')) as History;
const [seed, nodes, queues, producers, consumers] = rest.map(Number);
const verdict = check(history);
const ops = history.ops.map((op) => ({ ...op, problems: [] }));
const queueCount = queues ?? new Set(history.publishes.map((p) => p.queue)).size;
process.stdout.write(renderMarkdown({
  seed: seed ?? 0, nodes: nodes ?? 0, queues: queueCount, producers: producers ?? 0, consumers: consumers ?? 0,
  durationMs: history.endMs - history.startMs, reconnects: 0, drainMissing: 0, finalDrainFound: 0, undrainable: [],
}, verdict, ops, history.startMs));
process.exitCode = verdict.ok ? 0 : 1;
