// Crash consistency: a child process appends with group-committed flushes and reports each
// acknowledged entry; it is SIGKILLed at random points; every acknowledged entry must survive.

import { describe, expect, it } from 'vitest';
import { runCrashRounds } from './crash-harness.js';
import { tempDir } from './helpers.js';

describe('crash consistency', () => {
  it('keeps every acknowledged entry intact across SIGKILLs at random points', async () => {
    const t = tempDir('crash');
    try {
      const results = await runCrashRounds(t.dir, 20261123, 4, 600);
      expect(results.flatMap((r) => r.problems)).toEqual([]);
      expect(results).toHaveLength(4);
      expect(results.reduce((n, r) => n + r.acks, 0)).toBeGreaterThan(4);
      expect(results.at(-1)!.entriesChecked).toBeGreaterThan(0);
    } finally {
      t.remove();
    }
  });

  it('keeps every acknowledged entry intact when writes also fail half-written and are retried', async () => {
    const t = tempDir('crashfault');
    try {
      const results = await runCrashRounds(t.dir, 20261124, 4, 600, true);
      expect(results.flatMap((r) => r.problems)).toEqual([]);
      expect(results).toHaveLength(4);
      expect(results.reduce((n, r) => n + r.acks, 0)).toBeGreaterThan(4);
    } finally {
      t.remove();
    }
  });
});
