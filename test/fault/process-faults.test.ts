// Real 3-node cluster under process faults while producers confirm and consumers ack: kill -9 of
// the leader and restart, SIGSTOP/SIGCONT of the leader, a rolling restart of every node, and a
// node forgotten and added back (ctl) under load. Nothing confirmed may be lost.

import { describe, expect, it } from 'vitest';
import type { NemesisName } from '../../cluster/nemesis.js';
import { expectSafeAndRecovered, shortRun, shortRunTimeoutMs } from './short-run.js';

describe('fault suite: process faults', () => {
  it('loses no confirmed message through leader kill -9, pause, rolling restart and a membership change', async () => {
    const ops: NemesisName[] = ['kill-leader', 'pause', 'rolling-restart', 'membership'];
    const r = await shortRun(ops, 101);
    expectSafeAndRecovered(r, ops);
    expect(r.ops.flatMap((o) => o.problems)).toEqual([]);
  }, shortRunTimeoutMs);
});
