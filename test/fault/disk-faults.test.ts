// Real 3-node cluster, one follower killed and its newest WAL segment damaged (tail cut off, or
// bits flipped), then restarted under load: the node must come back or refuse to start naming the
// damage (checksums), never serve from it silently; a refusing node is replaced as an operator
// would (forget-node, wipe, add-node, start) and catches up; nothing confirmed may be lost.

import { describe, expect, it } from 'vitest';
import type { NemesisName } from '../../cluster/nemesis.js';
import { expectSafeAndRecovered, shortRun, shortRunTimeoutMs } from './short-run.js';

/** The damaged node came back by itself, or refused naming the damage (see nemesis restartDamaged). */
const detectedOrRecovered = /came back by itself|refused to start on damaged data/;

describe('fault suite: disk faults', () => {
  for (const [op, seed] of [['disk-truncate', 303], ['disk-bitflip', 304]] as Array<[NemesisName, number]>) {
    it(`loses no confirmed message when a follower restarts on a WAL with ${op === 'disk-truncate' ? 'its tail cut off' : 'flipped bits'}`, async () => {
      const r = await shortRun([op], seed);
      expectSafeAndRecovered(r, [op]);
      expect(r.ops[0]!.target).toMatch(detectedOrRecovered);
      // A node that refused its damaged data was replaced (forget, wipe, add) and caught up.
      expect(r.ops.flatMap((o) => o.problems)).toEqual([]);
    }, shortRunTimeoutMs);
  }
});
