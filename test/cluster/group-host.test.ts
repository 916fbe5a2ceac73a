// The group host on three real nodes (loopback transports, WALs in temp dirs): elections,
// replication in one order everywhere, group commit across many groups, leader failover, restart.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/lib/log.js';
import { ConfChangeKind } from '../../src/raft/index.js';
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

  it('replicates a 16 MiB entry and many groups of 1 MiB entries sent in the same cycle (batches cut to fit the link)', async () => {
    h = new Harness();
    const errors: string[] = [];
    const logger = createLogger({ sink: (l) => { if (l.includes('"error"')) errors.push(l); }, clock: { nowMs: () => Date.now() }, level: 'error', component: 'test' });
    await h.startAll({ logger });
    const groups = Array.from({ length: 48 }, (_, i) => h!.createGroup(`big${i}`));
    groups.forEach((g) => h!.hosts.get(ids[0]!)!.campaign(g));
    for (const g of groups) await h.waitForLeader(g);
    const mib = 1024 * 1024;
    const payload = (g: GroupId, n: number, size: number): string => `${g}:${n}:`.padEnd(size, 'x');
    // 48 groups x 2 MiB to each follower in one turn: one RaftBatch would exceed the transport's payload limit.
    await Promise.all(groups.map((g) => proposeAll(h!, g, [payload(g, 0, mib), payload(g, 1, mib)])));
    await proposeAll(h, groups[0]!, [payload(groups[0]!, 2, 16 * mib)]);
    await h.until(() => groups.every((g) => allApplied(h!, g, g === groups[0] ? 3 : 2)), 'every entry applied on all three', 60_000);
    for (const g of groups) {
      for (const id of ids) expect(h.appliedOn(id, g).map((p) => [p.slice(0, 12), p.length])).toEqual(h.appliedOn(ids[0]!, g).map((p) => [p.slice(0, 12), p.length]));
    }
    expect(h.appliedOn(ids[2]!, groups[0]!)[2]).toHaveLength(16 * mib);
    // Nothing had to be dropped for size (and retransmitted): every batch fitted the link.
    expect(errors).toEqual([]);
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
    // Term and commit come back from the WAL before any message is exchanged.
    for (const id of ids) {
      const s = h.hosts.get(id)!.status(g1)!;
      expect(s.term).toBe(terms.get(id));
      expect(s.commit).toBeGreaterThanOrEqual(31);
      expect(s.lastIndex).toBeGreaterThanOrEqual(31);
    }
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

describe('group host membership and leadership', () => {
  it('hands leadership to the follower it is asked to', async () => {
    h = new Harness();
    await h.startAll();
    const g = h.createGroup('q1');
    await proposeAll(h, g, ['a']);
    const leader = h.leaderOf(g)!;
    const target = ids.find((id) => id !== leader.nodeId)!;
    await h.until(() => allApplied(h!, g, 1), 'target caught up');
    leader.transferLeadership(g, target);
    await h.until(() => h!.leaderOf(g)?.nodeId === target, `${target} leads`);
    await proposeAll(h, g, ['b']);
    expect(h.appliedOn(target, g)).toEqual(['a', 'b']);
  });

  it('a learner added to a two-voter group gets the log, and once promoted the group survives losing a voter', async () => {
    h = new Harness();
    await h.startAll();
    const [n1, n2, n3] = ids as [NodeId, NodeId, NodeId];
    const g = h.createGroupOn('q1', [n1, n2], [n1, n2]);
    await proposeAll(h, g, ['a', 'b']);
    h.createGroupOn('q1', [n3], [n1, n2]);
    let leader = h.leaderOf(g)!;
    await leader.proposeConfChange(g, { kind: ConfChangeKind.AddLearner, node: n3 });
    await h.until(() => h!.appliedOn(n3, g).length >= 2, 'the learner has the log');
    // Promote is refused until the learner's match index is known to the leader: retry, bounded.
    for (let i = 0; ; i++) {
      const r = await leader.proposeConfChange(g, { kind: ConfChangeKind.Promote, node: n3 }).then(() => 'ok', (e: unknown) => e);
      if (r === 'ok') break;
      expect(isOperatingError(r, OperatingErrorCode.BadConfig) && i < 50).toBe(true);
      await proposeAll(h, g, [`nudge${i}`]);
    }
    expect(leader.status(g)!.membership.voters).toContain(n3);
    const survivor = leader.nodeId === n1 ? n2 : n1;
    await h.close(leader.nodeId);
    leader = await h.waitForLeader(g, 'a leader among the two left');
    await leader.propose(g, text('after'));
    await h.until(() => h!.appliedOn(survivor, g).at(-1) === 'after' && h!.appliedOn(n3, g).at(-1) === 'after', 'both left applied');
    expect(h.appliedOn(n3, g)).toEqual(h.appliedOn(survivor, g));
  });
});

describe('group host snapshots', () => {
  it('a host that missed compacted entries catches up from the leader\'s snapshot, and a restart applies from the snapshot', async () => {
    h = new Harness();
    await h.startAll();
    const g = h.createGroup('q1');
    const first = Array.from({ length: 30 }, (_, i) => `a${i}`);
    await proposeAll(h, g, first);
    await h.until(() => allApplied(h!, g, 30), 'all applied');
    const lagging = ids.find((id) => id !== h!.leaderOf(g)!.nodeId)!;
    const others = ids.filter((id) => id !== lagging);
    await h.close(lagging);
    const second = Array.from({ length: 20 }, (_, i) => `b${i}`);
    await proposeAll(h, g, second);
    await h.until(() => allApplied(h!, g, 50, others), 'the two applied');
    for (const id of others) await h.snapshot(id, g);
    for (const id of others) expect(h.hosts.get(id)!.status(g)!.firstIndex).toBeGreaterThan(40);

    await h.startAll({}, [lagging]);
    h.createGroupOn('q1', [lagging]);
    await proposeAll(h, g, ['after']);
    await h.until(() => allApplied(h!, g, 51), 'the lagging host caught up');
    const expected = [...first, ...second, 'after'];
    for (const id of ids) expect(h.appliedOn(id, g)).toEqual(expected);
    expect(h.snapshotsInstalled.get(`${lagging}/${g}`)).toBe(1);

    await h.closeAll();
    await h.startAll();
    h.recreateGroups();
    await h.until(() => allApplied(h!, g, 51), 're-applied after restart');
    for (const id of ids) expect(h.appliedOn(id, g)).toEqual(expected);
    // Every host now starts from a snapshot: the leader's two and the lagging host's installed one.
    for (const id of ids) expect(h.snapshotsInstalled.get(`${id}/${g}`)).toBeGreaterThanOrEqual(1);
  });
});

describe('group host with a damaged log', () => {
  it('keeps a group whose log is corrupted mid-way out of Raft (in repair), logs an error naming it, and the other two carry on', async () => {
    h = new Harness();
    await h.startAll();
    const g1 = h.createGroup('q1');
    const g2 = h.createGroup('q2');
    const bodies = Array.from({ length: 20 }, (_, i) => `q1-body-${i}-${'z'.repeat(40)}`);
    await proposeAll(h, g1, bodies);
    await proposeAll(h, g2, ['fine']);
    await h.until(() => allApplied(h!, g1, 20) && allApplied(h!, g2, 1), 'applied before damage');
    await h.closeAll();
    flipByteOf(join(h.root, 'n1', 'wal'), bodies[3]!);

    const lines: string[] = [];
    const logger = createLogger({ sink: (l) => lines.push(l), clock: { nowMs: () => 0 }, level: 'error', component: 'test' });
    await h.startAll({ logger });
    const n1 = ids[0]!;
    const errors = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['level'] === 'error');
    expect(errors.some((l) => String(l['groups']).split(',').includes('q1') && l['node'] === n1)).toBe(true);
    // Hosted in repair (src/cluster/group-repair.ts drives it; not running here): out of Raft.
    h.createGroupOn('q1', [n1]);
    expect(h.hosts.get(n1)!.groupsToRepair().map((r) => r.id)).toEqual([g1]);
    expect(h.hosts.get(n1)!.status(g1)).toBeNull();
    h.createGroupOn('q1', ids.slice(1));
    h.createGroupOn('q2', ids);
    await proposeAll(h, g1, ['after-damage']);
    await h.until(() => allApplied(h!, g1, 21, ids.slice(1)), 'q1 on the two intact hosts');
    for (const id of ids.slice(1)) expect(h.appliedOn(id, g1)).toEqual([...bodies, 'after-damage']);
    await proposeAll(h, g2, ['still']);
    await h.until(() => allApplied(h!, g2, 2), 'q2 everywhere');
  });
});

/** Flips one byte inside the stored body `text` in whichever WAL segment of `dir` holds it. */
function flipByteOf(dir: string, body: string): void {
  const needle = Buffer.from(body);
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.wal'))) {
    const file = join(dir, name);
    const bytes = readFileSync(file);
    const at = bytes.indexOf(needle);
    if (at < 0) continue;
    bytes[at + 5] = bytes[at + 5]! ^ 0x5a;
    writeFileSync(file, bytes);
    return;
  }
  throw new Error(`body not found in ${dir}`);
}
