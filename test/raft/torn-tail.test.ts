// A restart that cut a torn tail cannot tell a never-acknowledged write from an acknowledged entry
// it lost. Scripted three-node scenarios: the entry X is committed by a and b only (c cut off), b
// restarts without X, a is down for a while. A node that abstains after a torn tail keeps b and c
// from electing a leader without X; the control run shows that without it X is lost.

import { describe, expect, it } from 'vitest';
import { logIndex, nodeId } from '../../src/lib/ids.js';
import { SeededRandom } from '../../src/lib/random.js';
import { ConfChangeKind, MultiRaft } from '../../src/raft/index.js';
import { G, Harness, bytes, text } from './harness.js';

/** Restarts a crashed node from its storage, as GroupHost does after the WAL recovered. */
function restart(h: Harness, s: string, init: { tornTailAbstainTicks?: number; rebuiltAfter?: number } = {}): void {
  const n = h.node(s);
  n.raft = new MultiRaft(n.id, h.cfg, new SeededRandom(s.charCodeAt(0)));
  const st = n.storage.get(G)!;
  n.applied.set(G, []);
  n.raft.addGroup(G, {
    membership: h.membership(G), hardState: st.hardState, reader: st,
    ...(init.tornTailAbstainTicks !== undefined ? { tornTailAbstainTicks: init.tornTailAbstainTicks } : {}),
    ...(init.rebuiltAfter !== undefined ? { rebuiltAfter: logIndex(init.rebuiltAfter) } : {}),
  });
}

/** X committed by a and b while c is cut off; then a and b crash and b's log loses its tail (X). */
function commitXThenTearB(): Harness {
  const h = new Harness(['a', 'b', 'c']);
  h.startAll();
  h.campaign('a');
  expect(h.leaders()).toEqual(['a']);
  h.isolate('c');
  h.raft('a').propose(G, bytes('X'));
  h.stabilize();
  const xIndex = h.status('a').lastIndex;
  expect(h.status('a').commit).toBe(xIndex);
  h.crash('a');
  h.crash('b');
  const st = h.node('b').storage.get(G)!;
  st.entriesArr.pop();
  st.chains.pop();
  st.hardState = { ...st.hardState, commit: logIndex(Math.min(st.hardState.commit, st.lastIndex())) };
  h.heal();
  return h;
}

const hasX = (h: Harness, s: string): boolean => h.node(s).applied.get(G)!.some((e) => e.data.length > 0 && text(e) === 'X');

describe('torn tail abstention', () => {
  it('a node restarted on a torn tail elects nobody without the leader that holds its lost entry', () => {
    const h = commitXThenTearB();
    restart(h, 'b', { tornTailAbstainTicks: 100 });
    expect(h.status('b').abstaining).toBe(true);
    h.tick(40); // four election timeouts: c alone cannot win, b neither votes nor campaigns
    expect(h.leaders()).toEqual([]);
    restart(h, 'a');
    for (let i = 0; i < 60 && h.leaders().length === 0; i++) h.tick(1);
    expect(h.leaders()).toEqual(['a']);
    h.raft('a').propose(G, bytes('Y'));
    h.tick(5);
    for (const s of ['a', 'b', 'c']) expect(hasX(h, s)).toBe(true);
    expect(h.status('b').abstaining).toBe(false); // the leader's append verified b's log
  });

  it('control: without abstention b and c elect a leader that lacks the committed entry, and it is lost', () => {
    const h = commitXThenTearB();
    restart(h, 'b');
    h.tick(40);
    const [leader] = h.leaders();
    expect(['b', 'c']).toContain(leader);
    h.raft(leader!).propose(G, bytes('Y'));
    h.tick(5);
    // Y is committed on b and c, X (committed earlier by a and b) is gone from the group's history.
    for (const s of ['b', 'c']) {
      expect(h.node(s).applied.get(G)!.some((e) => e.data.length > 0 && text(e) === 'Y')).toBe(true);
      expect(hasX(h, s)).toBe(false);
    }
  });

  it('the abstention ends by itself so that a cluster whose nodes all restarted torn still elects a leader', () => {
    const h = commitXThenTearB();
    restart(h, 'b', { tornTailAbstainTicks: 30 });
    restart(h, 'a', { tornTailAbstainTicks: 30 });
    h.tick(20);
    expect(h.leaders()).toEqual([]);
    for (let i = 0; i < 80 && h.leaders().length === 0; i++) h.tick(1);
    expect(h.leaders().length).toBe(1);
  });
});

describe('rebuilt replica', () => {
  it('grants no vote and never campaigns until a config entry after its re-add makes it a voter', () => {
    const h = new Harness(['a', 'b', 'c']);
    h.startAll();
    h.campaign('a');
    h.raft('a').propose(G, bytes('one'));
    h.stabilize();
    // c's log was damaged: discarded (term kept); the leader removes it and re-adds it as a learner.
    h.crash('c');
    const st = h.node('c').storage.get(G)!;
    st.entriesArr = [];
    st.chains = [];
    st.hardState = { ...st.hardState, commit: logIndex(0) };
    h.raft('a').proposeConfChange(G, { kind: ConfChangeKind.Remove, node: nodeId('c') });
    h.stabilize();
    const added = h.raft('a').proposeConfChange(G, { kind: ConfChangeKind.AddLearner, node: nodeId('c') });
    expect(added.ok).toBe(true);
    h.stabilize();
    restart(h, 'c', { rebuiltAfter: added.ok ? added.index : 0 });
    h.tick(30);
    expect(h.status('c').abstaining).toBe(true);
    expect(h.status('c').lastIndex).toBe(h.status('a').lastIndex); // caught up as a learner
    expect(h.status('c').role).toBe('follower');
    const promoted = h.raft('a').proposeConfChange(G, { kind: ConfChangeKind.Promote, node: nodeId('c') });
    expect(promoted.ok).toBe(true);
    h.tick(5);
    expect(h.status('c').abstaining).toBe(false);
    expect(h.status('c').membership.voters).toEqual(['a', 'b', 'c'].map(nodeId));
  });
  it('a follower that lost acknowledged entries while the leader kept leading gets them again from that leader', () => {
    const h = new Harness(['a', 'b', 'c']);
    h.startAll();
    h.campaign('a');
    for (let i = 0; i < 5; i++) h.raft('a').propose(G, bytes(`e${i}`));
    h.stabilize();
    const last = h.status('a').lastIndex;
    expect(h.status('b').lastIndex).toBe(last);
    // b crashes and comes back with its last three entries gone (a truncated segment); a still leads
    // and its progress says b matched `last`.
    h.crash('b');
    const st = h.node('b').storage.get(G)!;
    for (let i = 0; i < 3; i++) {
      st.entriesArr.pop();
      st.chains.pop();
    }
    st.hardState = { ...st.hardState, commit: logIndex(Math.min(st.hardState.commit, st.lastIndex())) };
    restart(h, 'b');
    h.raft('a').propose(G, bytes('after'));
    for (let i = 0; i < 30 && h.status('b').lastIndex < last + 1; i++) h.tick(1);
    expect(h.leaders()).toEqual(['a']);
    expect(h.status('b').lastIndex).toBe(last + 1);
    expect(h.node('b').applied.get(G)!.filter((e) => e.data.length > 0).map(text)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'after']);
  });
});
