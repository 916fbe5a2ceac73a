// The long model check of the write-ahead log: many seeds of random operation sequences compared
// with an in-memory model (test/storage/model-harness.ts). Bounded by --seeds and --steps.
// Run: npx tsx bench/storage-model.ts [--from 1] [--seeds 200] [--steps 200]

import { runModelSeed } from '../test/storage/model-harness.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const from = arg('from', 1);
const seeds = Math.min(arg('seeds', 200), 100_000);
const steps = Math.min(arg('steps', 200), 100_000);

async function main(): Promise<void> {
  const started = performance.now();
  for (let seed = from; seed < from + seeds; seed++) {
    try {
      await runModelSeed(seed, steps);
    } catch (e) {
      console.log(`FAILED at seed ${seed} (replay: --from ${seed} --seeds 1 --steps ${steps}): ${String(e)}`);
      process.exitCode = 1;
      return;
    }
  }
  console.log(`OK: ${seeds} seeds x ${steps} steps agree with the model (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}

await main();
