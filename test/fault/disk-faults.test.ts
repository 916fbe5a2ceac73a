// Real 3-node cluster, one follower killed and its newest WAL segment damaged (tail cut off, or
// bits flipped), then restarted under load: the node must come back by itself, rebuilding every
// group it found damaged (checksums) from its peers with no operator step, never serving or voting
// from the damaged log; nothing confirmed may be lost.

import { describe, expect, it } from 'vitest';
import type { NemesisName } from '../../cluster/nemesis.js';
import { expectSafeAndRecovered, shortRun, shortRunTimeoutMs } from './short-run.js';

/** The damaged node came back by itself (see nemesis restartDamaged). */
const recoveredByItself = /came back by itself/;

describe('fault suite: disk faults', () => {
  for (const [op, seed] of [['disk-truncate', 303], ['disk-bitflip', 304]] as Array<[NemesisName, number]>) {
    it(`loses no confirmed message when a follower restarts on a WAL with ${op === 'disk-truncate' ? 'its tail cut off' : 'flipped bits'}`, async () => {
      const r = await shortRun([op], seed);
      expectSafeAndRecovered(r, [op]);
      expect(r.ops[0]!.target).toMatch(recoveredByItself);
      // Every damaged group was rebuilt from the peers in time.
      expect(r.ops.flatMap((o) => o.problems)).toEqual([]);
    }, shortRunTimeoutMs);
  }
});
