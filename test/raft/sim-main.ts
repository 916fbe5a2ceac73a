// `npm run sim -- --seed N [--seeds K] [--trace] [--unsafe FLAG]`: replays one seed (or K seeds
// from N) of the Raft simulation and prints each failure with the command that replays it.
// `--unsafe` runs a deliberately broken core (a flag of UnsafeTestFlags, e.g. readWithoutQuorum,
// countOldTermEntries): then the failures are the catches, and their count is what to look at.

import type { UnsafeTestFlags } from '../../src/raft/index.js';
import { runSeed } from './sim/simulator.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const seed = Number(arg('seed') ?? '1');
const seeds = Number(arg('seeds') ?? '1');
const trace = process.argv.includes('--trace');
const unsafeFlags = ['commitWithoutQuorum', 'countOldTermEntries', 'ackBeforePersist', 'readWithoutQuorum'] as const satisfies ReadonlyArray<keyof UnsafeTestFlags>;
const unsafeFlag = arg('unsafe') as (typeof unsafeFlags)[number] | undefined;
if (unsafeFlag !== undefined && !unsafeFlags.includes(unsafeFlag)) {
  console.error(`--unsafe: one of ${unsafeFlags.join(', ')}`);
  process.exit(64);
}
const unsafe: UnsafeTestFlags | undefined = unsafeFlag === undefined ? undefined : { [unsafeFlag]: true };
let failures = 0;
const started = process.hrtime.bigint();
for (let s = seed; s < seed + seeds; s++) {
  const r = runSeed({ seed: s, ...(unsafe !== undefined ? { unsafe } : {}), ...(trace ? { trace: (l: string) => console.log(l) } : {}) });
  if (!r.ok) {
    failures++;
    console.log(`seed ${s} FAILED at tick ${r.tick}: ${r.violation}\n  ${r.summary}\n  replay: ${r.replay}`);
  } else if (seeds === 1) {
    console.log(`seed ${s} ok: ${r.tick} ticks, ${r.committed} entries committed, ${r.summary}`);
  }
}
const ms = Number(process.hrtime.bigint() - started) / 1e6;
console.log(`${seeds} seed(s)${unsafeFlag !== undefined ? ` of a core with ${unsafeFlag}` : ''}, ${failures} failed, ${ms.toFixed(0)} ms (${(seeds / (ms / 1000)).toFixed(0)} seeds/s)`);
process.exitCode = failures > 0 ? 1 : 0;
