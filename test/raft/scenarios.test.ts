// Readable Raft scenarios on a scripted cluster: the Raft paper's Figures 7 and 8, pre-vote rejoin,
// one-way partitions, check-quorum, transfer, read index, membership, snapshots, coalescing.

import { describe, expect, it } from 'vitest';
import { groupId, logIndex, nodeId, term as toTerm } from '../../src/lib/ids.js';
import type { GroupId } from '../../src/lib/ids.js';
import { ConfChangeKind } from '../../src/raft/index.js';
import type { Message } from '../../src/raft/index.js';
import { G, Harness, bytes, text } from './harness.js';

const dropAll = (): boolean => true;

describe('raft scenarios', () => {
  it('elects one leader and commits a proposal on every node', () => {
    const h = new Harness(['n1', 'n2', 'n3']);
    h.startAll();
    h.campaign('n1');
    expect(h.leaders()).toEqual(['n1']);
    const r = h.raft('n1').propose(G, bytes('hello'));
    expect(r.ok).toBe(true);
    h.stabilize();
    for (const n of ['n1', 'n2', 'n3']) expect(h.node(n).applied.get(G)!.map(text)).toContain('hello');
    expect(h.raft('n2').propose(G, bytes('x'))).toMatchObject({ ok: false, reason: 'not_leader', leaderHint: 'n1' });
  });

  it('Figure 7: followers missing entries or holding extra ones converge, truncated at the first mismatch', () => {
    const h = new Harness(['n1', 'a', 'b', 'c', 'd', 'e', 'f']);
    h.setLog('n1', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6], 7);
    h.setLog('a', [1, 1, 1, 4, 4, 5, 5, 6, 6], 6);
    h.setLog('b', [1, 1, 1, 4], 4);
    h.setLog('c', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], 6);
    h.setLog('d', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], 7);
    h.setLog('e', [1, 1, 1, 4, 4, 4, 4], 4);
    h.setLog('f', [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 3);
    h.startAll();
    h.campaign('n1');
    expect(h.leaders()).toEqual(['n1']);
    expect(h.status('n1').term).toBe(8);
    const want = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8];
    for (const n of ['n1', 'a', 'b', 'c', 'd', 'e', 'f']) expect(h.logTerms(n), n).toEqual(want);
    const firstTruncation = (n: string): number | undefined => h.node(n).truncations[0]?.from;
    expect([firstTruncation('a'), firstTruncation('b')]).toEqual([undefined, undefined]);
    expect(firstTruncation('c')).toBe(11);
    expect(firstTruncation('d')).toBe(11);
    expect(firstTruncation('e')).toBe(6);
    expect(firstTruncation('f')).toBe(4);
    expect(h.status('n1').commit).toBe(11);
  });

  function figure8(countOldTermEntries: boolean): Harness {
    const h = new Harness(['n1', 'n2', 'n3', 'n4', 'n5'], [G], undefined, {
      maxEntriesPerAppend: 1, unsafe: { countOldTermEntries },
    });
    for (const n of ['n1', 'n2', 'n3', 'n4', 'n5']) h.setLog(n, [1], 1);
    h.startAll();
    // (a) n1 leads term 2 and its entry 2 reaches n2 only.
    h.raft('n1').campaign(G);
    h.stabilize((m) => m.type === 'append' && m.from === 'n1' && m.to !== 'n2');
    expect(h.leaders()).toEqual(['n1']);
    expect(h.logTerms('n2')).toEqual([1, 2]);
    h.crash('n1');
    h.pending = [];
    // (b) n5 leads term 3 with n3 and n4, writes its own entry 2, and crashes before sending it.
    h.raft('n5').campaign(G);
    h.stabilize((m) => m.type === 'append');
    expect(h.leaders()).toEqual(['n5']);
    expect(h.logTerms('n5')).toEqual([1, 3]);
    h.crash('n5');
    h.pending = [];
    // (c) n1 restarts and leads term 4; its term-2 entry 2 reaches a majority, its entry 3 nobody.
    h.start('n1');
    h.raft('n1').campaign(G);
    h.stabilize();
    h.raft('n1').campaign(G);
    const probes = new Map<string, number>();
    const firstProbe = (m: Message): boolean => {
      const k = (probes.get(m.to) ?? 0) + 1;
      probes.set(m.to, k);
      return k === 1 && (m.to === 'n2' || m.to === 'n3');
    };
    // n2 takes the first probe (entry 3); n3 rejects it (it lacks entry 2) and then gets entry 2
    // alone; every other copy of entry 3 is lost. Entry 2 is on a majority, entry 3 is not.
    h.stabilize((m) => m.type === 'append' && m.entries.some((e) => e.index >= 3) && !firstProbe(m));
    expect(h.leaders()).toEqual(['n1']);
    expect(h.status('n1').term).toBe(4);
    expect([h.logTerms('n1'), h.logTerms('n2'), h.logTerms('n3')]).toEqual([[1, 2, 4], [1, 2, 4], [1, 2]]);
    return h;
  }

  it('Figure 8: an old-term entry on a majority is not committed, and a later leader may overwrite it', () => {
    const h = figure8(false);
    expect(h.status('n1').commit).toBeLessThan(2);
    // (d) n1 crashes; once the lease expires n5 (last term 3) wins term 5 and overwrites entry 2.
    h.crash('n1');
    h.pending = [];
    h.start('n5');
    h.tick(12, dropAll);
    h.raft('n5').campaign(G);
    h.stabilize();
    if (h.leaders().length === 0) {
      h.raft('n5').campaign(G);
      h.stabilize();
    }
    expect(h.leaders()).toEqual(['n5']);
    for (const n of ['n2', 'n3', 'n4', 'n5']) expect(h.logTerms(n).slice(0, 2), n).toEqual([1, 3]);
    expect(h.node('n2').truncations.map((t) => t.from)).toContain(2);
    // Nothing reported committed was lost: no node ever applied the term-2 entry at index 2.
    for (const n of h.nodes.values()) expect(n.applied.get(G)!.some((e) => e.index === 2 && e.term === 2)).toBe(false);
  });

  it('Figure 8 with the old-term counting bug: the leader commits an entry a later leader overwrites', () => {
    const h = figure8(true);
    expect(h.status('n1').commit).toBe(2);
    expect(h.node('n1').applied.get(G)!.some((e) => e.index === 2 && e.term === 2)).toBe(true);
  });

  it('pre-vote: a partitioned node rejoins without raising its term or deposing the leader', () => {
    const h = new Harness(['n1', 'n2', 'n3']);
    h.startAll();
    h.campaign('n1');
    const t = h.status('n1').term;
    h.isolate('n3');
    h.tick(60);
    expect(h.status('n3').term).toBe(t);
    h.heal();
    h.tick(6);
    expect(h.leaders()).toEqual(['n1']);
    expect(h.status('n1').term).toBe(t);
    expect(h.status('n3').leader).toBe('n1');
  });

  it('one-way partition: a node that cannot hear the leader does not disrupt it', () => {
    const h = new Harness(['n1', 'n2', 'n3']);
    h.startAll();
    h.campaign('n1');
    const t = h.status('n1').term;
    h.block('n1', 'n3');
    h.tick(60);
    expect(h.leaders()).toEqual(['n1']);
    expect(h.status('n1').term).toBe(t);
    expect(h.status('n2').term).toBe(t);
    h.raft('n1').propose(G, bytes('still works'));
    h.tick(2);
    expect(h.node('n2').applied.get(G)!.map(text)).toContain('still works');
  });

  it('check-quorum: an isolated leader steps down and the majority elects another', () => {
    const h = new Harness(['n1', 'n2', 'n3']);
    h.startAll();
    h.campaign('n1');
    h.isolate('n1');
    h.tick(45);
    expect(h.status('n1').role).not.toBe('leader');
    const leaders = h.leaders();
    expect(leaders.length).toBe(1);
    expect(['n2', 'n3']).toContain(leaders[0]);
  });

  it('transfers leadership to a lagging follower once it caught up, dropping proposals meanwhile', () => {
    const h = new Harness(['n1', 'n2', 'n3']);
    h.startAll();
    h.campaign('n1');
    h.block('n1', 'n3');
    for (let i = 0; i < 5; i++) h.raft('n1').propose(G, bytes(`p${i}`));
    h.stabilize();
    expect(h.status('n3').lastIndex).toBeLessThan(h.status('n1').lastIndex);
    h.heal();
    expect(h.raft('n1').transferLeadership(G, nodeId('n3')).ok).toBe(true);
    expect(h.raft('n1').propose(G, bytes('during'))).toMatchObject({ ok: false, reason: 'dropped' });
    // Lost appends are noticed after half an election timeout without acks; then it catches up.
    h.tick(8);
    expect(h.leaders()).toEqual(['n3']);
    expect(h.node('n3').applied.get(G)!.map(text)).toEqual(expect.arrayContaining(['p0', 'p4']));
  });

  it('read index: answers after a quorum round, and fails reads of a leader that lost its majority', () => {
    const h = new Harness(['n1', 'n2', 'n3']);
    h.startAll();
    h.campaign('n1');
    h.raft('n1').propose(G, bytes('w'));
    h.stabilize();
    const commit = h.status('n1').commit;
    expect(h.raft('n1').readIndex(G, 7).ok).toBe(true);
    h.stabilize();
    expect(h.node('n1').readStates).toEqual([{ requestId: 7, index: commit }]);
    h.isolate('n1');
    h.raft('n1').readIndex(G, 8);
    h.stabilize();
    expect(h.node('n1').readStates.map((r) => r.requestId)).not.toContain(8);
    h.tick(30);
    expect(h.node('n1').failedReads).toContain(8);
  });

  it('adds a learner, promotes it, and removes the leader, which steps down', () => {
    const ids = ['n1', 'n2', 'n3', 'n4'];
    const h = new Harness(ids, [G], () => ({ voters: ['n1', 'n2', 'n3'].map(nodeId), learners: [] }));
    h.startAll();
    h.campaign('n1');
    h.raft('n1').propose(G, bytes('before'));
    h.stabilize();
    expect(h.status('n4').role).toBe('follower');
    expect(h.raft('n1').proposeConfChange(G, { kind: ConfChangeKind.AddLearner, node: nodeId('n4') }).ok).toBe(true);
    expect(h.raft('n1').proposeConfChange(G, { kind: ConfChangeKind.Promote, node: nodeId('n4') })).toMatchObject({ ok: false, reason: 'pending_change' });
    h.tick(2);
    expect(h.node('n4').applied.get(G)!.map(text)).toContain('before');
    expect(h.status('n4').membership.learners).toEqual(['n4']);
    expect(h.raft('n1').proposeConfChange(G, { kind: ConfChangeKind.Promote, node: nodeId('n4') }).ok).toBe(true);
    h.tick(2);
    expect(h.status('n2').membership.voters).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(h.raft('n1').proposeConfChange(G, { kind: ConfChangeKind.Remove, node: nodeId('n1') }).ok).toBe(true);
    h.tick(2);
    expect(h.status('n1').role).toBe('follower');
    h.tick(40);
    const leaders = h.leaders();
    expect(leaders.length).toBe(1);
    expect(['n2', 'n3', 'n4']).toContain(leaders[0]);
    const r = h.raft(leaders[0]!).propose(G, bytes('after'));
    expect(r.ok).toBe(true);
    h.tick(2);
    expect(h.node('n4').applied.get(G)!.map(text)).toContain('after');
  });

  it('refuses a membership change until the new leader has committed an entry of its own term', () => {
    const h = new Harness(['n1', 'n2', 'n3', 'n4'], [G], () => ({ voters: ['n1', 'n2', 'n3'].map(nodeId), learners: [] }));
    h.startAll();
    h.raft('n1').campaign(G);
    h.stabilize((m) => m.type === 'append');
    expect(h.leaders()).toEqual(['n1']);
    const add = { kind: ConfChangeKind.AddLearner, node: nodeId('n4') };
    expect(h.raft('n1').proposeConfChange(G, add)).toMatchObject({ ok: false, reason: 'pending_change' });
    h.tick(6);
    expect(h.raft('n1').proposeConfChange(G, add).ok).toBe(true);
  });

  it('a snapshot that demotes a partitioned voter to learner stops it from campaigning', () => {
    const h = new Harness(['n1', 'n2', 'n3']);
    h.startAll();
    h.campaign('n1');
    h.isolate('n3');
    h.raft('n1').proposeConfChange(G, { kind: ConfChangeKind.Remove, node: nodeId('n3') });
    h.tick(2);
    expect(h.raft('n1').proposeConfChange(G, { kind: ConfChangeKind.AddLearner, node: nodeId('n3') }).ok).toBe(true);
    for (let i = 0; i < 5; i++) h.raft('n1').propose(G, bytes(`x${i}`));
    h.tick(2);
    const s1 = h.status('n1');
    expect(s1.membership).toEqual({ voters: ['n1', 'n2'], learners: ['n3'] });
    const meta = { index: logIndex(s1.applied), term: toTerm(s1.term), membership: s1.membership };
    h.raft('n1').compact(G, meta);
    h.node('n1').storage.get(G)!.compact({ meta, data: new Uint8Array(4) });
    expect(h.status('n3').membership.voters).toContain('n3');
    h.heal();
    h.tick(20);
    expect(h.node('n3').storage.get(G)!.snap?.meta.index).toBe(s1.applied);
    expect(h.status('n3').membership).toEqual({ voters: ['n1', 'n2'], learners: ['n3'] });
    h.isolate('n3');
    h.tick(60);
    expect(h.status('n3').role).toBe('follower');
    h.heal();
    h.tick(4);
    expect(h.leaders()).toEqual(['n1']);
    expect(h.status('n1').term).toBe(s1.term);
  });

  it('a new member far behind a compacted log gets the snapshot in chunks', () => {
    const ids = ['n1', 'n2', 'n3', 'n4'];
    const h = new Harness(ids, [G], () => ({ voters: ['n1', 'n2', 'n3'].map(nodeId), learners: [] }), { snapshotChunkBytes: 16 });
    h.startAll();
    h.campaign('n1');
    for (let i = 0; i < 10; i++) h.raft('n1').propose(G, bytes(`e${i}`));
    h.stabilize();
    const st = h.node('n1').storage.get(G)!;
    const at = h.status('n1').applied;
    const meta = { index: logIndex(at), term: toTerm(h.status('n1').term), membership: h.status('n1').membership };
    const data = new Uint8Array(100).map((_, i) => i);
    h.raft('n1').compact(G, meta);
    st.compact({ meta, data });
    h.raft('n1').proposeConfChange(G, { kind: ConfChangeKind.AddLearner, node: nodeId('n4') });
    h.trace = [];
    h.tick(20);
    const chunks = h.trace.filter((m) => m.type === 'snapshot');
    expect(chunks.length).toBeGreaterThanOrEqual(7);
    const n4 = h.node('n4').storage.get(G)!;
    expect(n4.snap?.meta.index).toBe(at);
    expect(n4.snap?.data).toEqual(data);
    expect(h.status('n4').commit).toBe(h.status('n1').commit);
  });

  it('coalesces heartbeats: one message per peer per interval for all shared groups', () => {
    const groups: GroupId[] = Array.from({ length: 50 }, (_, i) => groupId(`q${i}`));
    const h = new Harness(['n1', 'n2', 'n3'], groups);
    h.startAll();
    for (const g of groups) h.raft('n1').campaign(g);
    h.stabilize();
    for (const g of groups) expect(h.status('n1', g).role).toBe('leader');
    h.tick(4);
    const seen: Message[] = [];
    for (let i = 0; i < 10; i++) {
      for (const n of h.nodes.values()) n.raft!.tick();
      h.processAll();
      seen.push(...h.pending);
      h.stabilize();
    }
    const fromLeader = seen.filter((m) => m.from === 'n1');
    expect(fromLeader.every((m) => m.type === 'heartbeat' && m.items.length === 50)).toBe(true);
    expect(fromLeader.length).toBe(2 * (10 / h.cfg.heartbeatIntervalTicks));
  });

  it('idle groups with a healthy leader cost no per-tick work: followers wake about once per election timeout', () => {
    const groups: GroupId[] = Array.from({ length: 300 }, (_, i) => groupId(`q${i}`));
    const h = new Harness(['n1', 'n2', 'n3'], groups);
    h.startAll();
    for (const g of groups) h.raft('n1').campaign(g);
    h.stabilize();
    h.tick(10);
    const before = h.raft('n2').counters.wakeups;
    const ticks = 100;
    h.tick(ticks);
    const wakeups = h.raft('n2').counters.wakeups - before;
    // A per-tick design would do 300 x 100 = 30,000 group visits; the wheel does one per timeout.
    expect(wakeups).toBeLessThanOrEqual((groups.length * ticks) / h.cfg.electionTimeoutTicks);
    expect(h.leaders(groups[0])).toEqual(['n1']);
  });

  it('holds vote and append acknowledgements until the Ready that justifies them is persisted', () => {
    const h = new Harness(['n1', 'n2', 'n3']);
    h.startAll();
    h.raft('n1').campaign(G);
    h.processAll();
    h.deliver(); // pre-votes reach n2 and n3
    h.deliver(); // their answers reach n1, which persists its new term and asks for real votes
    const n2 = h.raft('n2');
    for (const m of h.pending.filter((x) => x.to === 'n2')) n2.step(m);
    const r = n2.ready();
    expect(r.messages.filter((m) => m.type === 'vote-response')).toEqual([]);
    expect(r.messagesAfterPersist.some((m) => m.type === 'vote-response' && !m.reject)).toBe(true);
    expect(r.groups[0]!.hardState).toMatchObject({ vote: 'n1' });
    n2.advance(r);
  });
});
