// The group host on three real nodes (loopback transports, WALs in temp dirs): elections,
// replication in one order everywhere, group commit across many groups, leader failover, restart.

import { afterEach, describe, expect, it } from 'vitest';
import { isOperatingError, OperatingErrorCode } from '../../src/lib/errors.js';
import type { GroupId, NodeId } from '../../src/lib/ids.js';
import { Harness, ids, text } from './cluster-harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

async function proposeAll(harness: Harness, g: GroupId, payloads: string[]): Promise<void> {
  const leader = await harness.waitForLeader(g);
  await Promise.all(payloads.map((p) => leader.propose(g, text(p))));
}

function allApplied(harness: Harness, g: GroupId, n: number, nodes: readonly NodeId[] = ids): boolean {
  return nodes.every((id) => harness.appliedOn(id, g).length >= n);
}

describe('group host', () => {
  it('a group over three hosts elects a leader and applies proposals in the same order on all three', async () => {
    h = new Harness();
    await h.startAll();
    const g = h.createGroup('q1');
    const payloads = Array.from({ length: 200 }, (_, i) => `m${i}`);
    await proposeAll(h, g, payloads);
    const leader = h.leaderOf(g)!;
    // Resolved means applied on the leader already.
    expect(h.appliedOn(leader.nodeId, g)).toEqual(payloads);
    await h.until(() => allApplied(h!, g, 200), 'all three applied 200');
    for (const id of ids) expect(h.appliedOn(id, g)).toEqual(payloads);
  });

  it('refuses a proposal on a follower with NotLeader naming the leader', async () => {
    h = new Harness();
    await h.startAll();
    const g = h.createGroup('q1');
    const leader = await h.waitForLeader(g);
    await leader.propose(g, text('first'));
    await h.until(() => allApplied(h!, g, 1), 'followers know the leader');
    const follower = [...h.hosts.values()].find((x) => x !== leader)!;
    const err = await follower.propose(g, text('x')).catch((e: unknown) => e);
    expect(isOperatingError(err, OperatingErrorCode.NotLeader)).toBe(true);
    expect((err as { details: Record<string, string> }).details.leader).toBe(leader.nodeId);
  });

  it('fifty groups share one fdatasync per cycle: far fewer fsyncs than entries', async () => {
    h = new Harness();
    await h.startAll();
    const groups = Array.from({ length: 50 }, (_, i) => h!.createGroup(`g${i}`));
    // Spread leaders so every host leads some groups.
    groups.forEach((g, i) => h!.hosts.get(ids[i % 3]!)!.campaign(g));
    for (const g of groups) await h.waitForLeader(g);
    const before = [...h.hosts.values()].map((x) => x.stats());
    const perGroup = 20;
    await Promise.all(groups.map((g) => proposeAll(h!, g, Array.from({ length: perGroup }, (_, i) => `${g}-${i}`))));
    await h.until(() => groups.every((g) => allApplied(h!, g, perGroup)), 'all groups applied everywhere');
    const after = [...h.hosts.values()].map((x) => x.stats());
    const fsyncs = after.reduce((s, a, i) => s + a.wal.fsyncs - before[i]!.wal.fsyncs, 0);
    const entries = after.reduce((s, a, i) => s + a.entriesPersisted - before[i]!.entriesPersisted, 0);
    expect(entries).toBeGreaterThanOrEqual(3 * 50 * perGroup);
    expect(fsyncs).toBeGreaterThan(0);
    expect(fsyncs * 10).toBeLessThan(entries);
    for (const g of groups) {
      const expected = h.appliedOn(ids[0]!, g);
      expect(expected).toHaveLength(perGroup);
      for (const id of ids) expect(h.appliedOn(id, g)).toEqual(expected);
    }
  });

  it('when the leader host closes another host leads and proposals continue', async () => {
    h = new Harness();
    await h.startAll();
    const g = h.createGroup('q1');
    await proposeAll(h, g, ['a', 'b', 'c']);
    const old = h.leaderOf(g)!;
    await h.close(old.nodeId);
    const rest = ids.filter((id) => id !== old.nodeId);
    const next = await h.waitForLeader(g, 'a new leader');
    expect(next.nodeId).not.toBe(old.nodeId);
    await proposeAll(h, g, ['d', 'e']);
    await h.until(() => allApplied(h!, g, 5, rest), 'survivors applied all');
    for (const id of rest) expect(h.appliedOn(id, g)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('after all three hosts close and reopen the committed entries are all there and new proposals commit', async () => {
    h = new Harness();
    await h.startAll();
    const g1 = h.createGroup('q1');
    const g2 = h.createGroup('q2');
    const first = Array.from({ length: 30 }, (_, i) => `x${i}`);
    await proposeAll(h, g1, first);
    await proposeAll(h, g2, ['only']);
    await h.until(() => allApplied(h!, g1, 30) && allApplied(h!, g2, 1), 'applied before restart');
    const terms = new Map(ids.map((id) => [id, h!.hosts.get(id)!.status(g1)!.term]));
    await h.closeAll();

    await h.startAll();
    h.recreateGroups();
    // Re-delivered from the start (no snapshot was taken): every committed entry comes back.
    await h.until(() => allApplied(h!, g1, 30) && allApplied(h!, g2, 1), 're-applied after restart');
    for (const id of ids) {
      expect(h.appliedOn(id, g1).slice(0, 30)).toEqual(first);
      expect(h.hosts.get(id)!.status(g1)!.term).toBeGreaterThanOrEqual(terms.get(id)!);
    }
    await proposeAll(h, g1, ['after']);
    await h.until(() => allApplied(h!, g1, 31), 'new entry everywhere');
    for (const id of ids) expect(h.appliedOn(id, g1)).toEqual([...first, 'after']);
    for (const id of ids) expect(h.appliedOn(id, g2)).toEqual(['only']);
  });
});
