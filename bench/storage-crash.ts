// The long crash-consistency run: many SIGKILL-and-recover rounds of the storage crash child
// (test/storage/crash-child.ts), checking after each that every acknowledged entry survived.
// Run: npx tsx bench/storage-crash.ts [--rounds 40] [--seed 1] [--acks-max 5000]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCrashRounds } from '../test/storage/crash-harness.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const rounds = Math.min(arg('rounds', 40), 1000);
const seed = arg('seed', 1);
const acksMax = arg('acks-max', 5000);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'espresso-crash-'));
  try {
    const started = performance.now();
    const results = await runCrashRounds(dir, seed, rounds, acksMax);
    const problems = results.flatMap((r) => r.problems);
    const acks = results.reduce((n, r) => n + r.acks, 0);
    const recovery = results.map((r) => r.recoveryMs).sort((a, b) => a - b);
    console.log(`seed ${seed}: ${results.length} rounds, ${acks} acknowledgements, ` +
      `${results.at(-1)?.entriesChecked ?? 0} entries checked in the last round, recovery median ${recovery[recovery.length >> 1] ?? 0} ms, ` +
      `max ${recovery.at(-1) ?? 0} ms, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    if (problems.length > 0) {
      console.log(`FAILED (replay with --seed ${seed}):\n${problems.slice(0, 20).join('\n')}`);
      process.exitCode = 1;
    } else {
      console.log('OK: every acknowledged entry survived every kill');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
