// Random operation sequences against a plain in-memory model of each group's log (see
// model-harness.ts); a failure names the seed, the step and the operation.

import { describe, it } from 'vitest';
import { runModelSeed } from './model-harness.js';

describe('write-ahead log against a model', () => {
  it('agrees with the model over random appends, truncations, live ranges, hard states, installed snapshots, compactions and reopens', async () => {
    for (let seed = 1; seed <= 12; seed++) await runModelSeed(seed, 150);
  });
});
