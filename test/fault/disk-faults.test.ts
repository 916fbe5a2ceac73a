// Real 3-node cluster, one follower killed and its newest WAL segment damaged (tail cut off, or
// bits flipped), then restarted under load: the node must come back or refuse to start naming the
// damage (checksums), never serve from it silently; nothing confirmed may be lost.

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
      // Nothing went wrong but (at most) the rebuild of a node that refused its damaged data.
      expect(r.ops.flatMap((o) => o.problems).filter((p) => !/did not (come back|start after healing)/.test(p) || !/refused/.test(r.ops[0]!.target))).toEqual([]);
    }, shortRunTimeoutMs);
  }
});
