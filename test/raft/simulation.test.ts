// Runs the seeded Raft simulation over thousands of seeds (safety after every tick, then liveness
// after healing), and proves the checker fails on a deliberately broken core.

import { describe, expect, it } from 'vitest';
import { runSeed } from './sim/simulator.js';

const SEEDS = 2000;
const BATCHES = 4;

function runRange(from: number, count: number): string[] {
  const failures: string[] = [];
  for (let s = from; s < from + count; s++) {
    const r = runSeed({ seed: s });
    if (!r.ok) failures.push(`seed ${s} at tick ${r.tick}: ${r.violation}\n  ${r.summary}\n  replay: ${r.replay}`);
  }
  return failures;
}

describe('raft simulation', () => {
  for (let b = 0; b < BATCHES; b++) {
    const from = 1 + (b * SEEDS) / BATCHES;
    it(`keeps every safety invariant and converges after healing, seeds ${from}..${from + SEEDS / BATCHES - 1}`, () => {
      const failures = runRange(from, SEEDS / BATCHES);
      expect(failures, failures.slice(0, 3).join('\n')).toEqual([]);
    });
  }

  it('replays a seed exactly', () => {
    const a = runSeed({ seed: 4242 });
    const b = runSeed({ seed: 4242 });
    expect(b).toEqual(a);
    expect(a.committed).toBeGreaterThan(10);
  });

  it('catches a leader that commits without a majority within 20 seeds', () => {
    const caught: string[] = [];
    for (let s = 1; s <= 20 && caught.length === 0; s++) {
      const r = runSeed({ seed: s, unsafe: { commitWithoutQuorum: true } });
      if (!r.ok) caught.push(r.violation ?? '');
    }
    expect(caught.length).toBe(1);
    expect(caught[0]).toMatch(/state machine safety|leader completeness|log matching|commit/);
  });

  it('catches acks and votes sent before they are durable (amnesia after a crash) within 100 seeds', () => {
    let caught: string | null = null;
    for (let s = 1; s <= 100 && caught === null; s++) {
      const r = runSeed({ seed: s, unsafe: { ackBeforePersist: true } });
      if (!r.ok) caught = r.violation;
    }
    expect(caught).toMatch(/state machine safety|leader completeness|log matching|two leaders|voted twice/);
  });
});
