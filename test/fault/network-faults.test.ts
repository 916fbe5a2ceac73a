// Real 3-node cluster with every inter-node link behind a proxy: a minority cut off, the leader
// isolated, the leader unable to send (one-way), and all links slow and dropping connections, while
// producers confirm and consumers ack. Nothing confirmed may be lost.

import { describe, expect, it } from 'vitest';
import type { NemesisName } from '../../cluster/nemesis.js';
import { expectSafeAndRecovered, shortRun, shortRunTimeoutMs } from './short-run.js';

describe('fault suite: network faults', () => {
  it('loses no confirmed message through partitions, an isolated leader, a one-way cut and flaky links', async () => {
    const ops: NemesisName[] = ['partition-majority', 'isolate-leader', 'one-way', 'flaky-links'];
    const r = await shortRun(ops, 202);
    expectSafeAndRecovered(r, ops);
    expect(r.ops.flatMap((o) => o.problems)).toEqual([]);
  }, shortRunTimeoutMs);
});
