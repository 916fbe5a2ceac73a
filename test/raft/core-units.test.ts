// Small units of the Raft core: config validation, conf-change encoding and rules, the log's
// conflict search and truncation, and the progress window.

import { describe, expect, it } from 'vitest';
import { logIndex, nodeId, term as toTerm } from '../../src/lib/ids.js';
import {
  ConfChangeKind, EntryType, applyConfChange, decodeConfChange, defaultRaftConfig, encodeConfChange, validateRaftConfig,
} from '../../src/raft/index.js';
import { RaftLog } from '../../src/raft/log.js';
import { Progress } from '../../src/raft/progress.js';
import { MemStorage } from './sim/mem-storage.js';

const entry = (index: number, t: number) => ({ index: logIndex(index), term: toTerm(t), type: EntryType.Normal, data: new Uint8Array(0) });

describe('raft core units', () => {
  it('rejects configs with non-positive limits or an election timeout under two heartbeats', () => {
    expect(validateRaftConfig(defaultRaftConfig)).toEqual([]);
    expect(validateRaftConfig({ ...defaultRaftConfig, maxInflightAppends: 0 })).toEqual(['maxInflightAppends must be a positive integer']);
    expect(validateRaftConfig({ ...defaultRaftConfig, electionTimeoutTicks: 3, heartbeatIntervalTicks: 2 })).toHaveLength(1);
  });

  it('encodes conf changes and refuses ones that make no sense', () => {
    const c = { kind: ConfChangeKind.Promote, node: nodeId('n4') };
    expect(decodeConfChange(encodeConfChange(c))).toEqual(c);
    expect(decodeConfChange(new Uint8Array([9, 65]))).toBeNull();
    const m = { voters: [nodeId('n1')], learners: [nodeId('n2')] };
    expect(applyConfChange(m, { kind: ConfChangeKind.Promote, node: nodeId('n2') })).toEqual({ voters: ['n1', 'n2'], learners: [] });
    expect(applyConfChange(m, { kind: ConfChangeKind.Remove, node: nodeId('n1') })).toBe(m);
  });

  it('finds the first real conflict and truncates only there, keeping durable entries shadowed', () => {
    const st = new MemStorage();
    st.persist({
      group: 'g' as never, snapshot: null, truncateFrom: null, entries: [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)],
      hardState: null, committedEntries: [], readStates: [], failedReads: [], softState: null, membership: null,
    }, () => 0);
    const log = new RaftLog(st, 1, 1);
    expect(log.findConflict([entry(2, 1), entry(3, 2)])).toBe(0);
    expect(log.findConflict([entry(3, 2), entry(4, 3), entry(5, 3)])).toBe(4);
    expect(log.findConflictByTerm(4, 1)).toEqual({ index: 2, term: 1 });
    log.append([entry(4, 3), entry(5, 3)]);
    expect([log.term(3), log.term(4), log.lastIndex()]).toEqual([2, 3, 5]);
    const taken = log.takeEntries(false);
    expect(taken.truncateFrom).toBe(4);
    expect(() => log.append([entry(1, 5)])).toThrow(/committed/);
  });

  it('keeps at most maxInflight appends in flight and frees them as acks arrive', () => {
    const pr = new Progress(1, 2);
    pr.becomeReplicate();
    pr.sent(3, 3);
    pr.sent(5, 2);
    expect(pr.canSend()).toBe(false);
    expect(pr.maybeUpdate(3)).toBe(true);
    expect(pr.canSend()).toBe(true);
    expect(pr.maybeUpdate(2)).toBe(false);
    expect(pr.match).toBe(3);
  });
});
