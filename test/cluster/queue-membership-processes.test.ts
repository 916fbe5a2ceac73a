// `espresso ctl grow` / `shrink` on three real server processes: queues placed on two of the three
// nodes grow onto the third (it catches up and becomes a voter), so one original replica can be
// killed and the queue still serves every confirmed message; shrink takes a node out of a queue's
// group and replica set, and refuses to leave a queue with no replica or no live majority.

import { describe, expect, it } from 'vitest';
import type { QueueListing } from '../../src/cluster/queue-listing.js';
import type { MembershipReport } from '../../src/cluster/queue-membership.js';
import { clusterAddress, clusterForFile, eventually, listQueuesOf, runCtl } from '../cli/cluster-nodes.js';

const secret = 'queue-membership-secret';
const { nodes, connect } = clusterForFile('espresso-qmember-', secret);
const queues = ['grow-a', 'grow-b', 'grow-c'];
const perQueue = 100;

async function listQueues(name: string): Promise<QueueListing[]> {
  return listQueuesOf(nodes.get(name)!);
}

async function ctl(via: string, ...args: string[]): Promise<{ code: number | null; report: MembershipReport; stderr: string }> {
  const r = await runCtl(['--cluster-address', clusterAddress(nodes.get(via)!), '--json', ...args], { ESPRESSO_CLUSTER_SECRET: secret });
  // A request refused as a whole prints no report (stderr says why).
  return { code: r.code, report: (r.stdout.trim() === '' ? null : JSON.parse(r.stdout)) as MembershipReport, stderr: r.stderr };
}

const row = (rows: readonly QueueListing[], name: string): QueueListing | undefined => rows.find((q) => q.name === name);

describe('ctl grow and shrink on three server processes', () => {
  let grown = '';
  let original: string[] = [];

  it('grow adds the missing node to every queue: three voters, no follower lag, and one original replica may die', async () => {
    const pub = await (await connect('n1')).createConfirmChannel();
    for (const q of queues) {
      await pub.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': 2 } });
      for (let i = 0; i < perQueue; i++) pub.sendToQueue(q, Buffer.from(`${q}-${i}`), { persistent: true });
    }
    await pub.waitForConfirms();
    let before: QueueListing[] = [];
    await eventually('each queue led, on two nodes', async () => {
      before = await listQueues('n1');
      return queues.every((q) => row(before, q)?.leader != null && row(before, q)!.members.length === 2);
    });
    original = [...row(before, 'grow-a')!.members];
    grown = ['n1', 'n2', 'n3'].find((n) => !original.includes(n))!;

    // Each queue lacks one node (placement spreads them): growing every node puts each queue on all three.
    for (const node of ['n1', 'n2', 'n3']) {
      const g = await ctl('n2', 'grow', node);
      expect(g.code, g.stderr).toBe(0);
      expect(g.report.failed).toBe(0);
      expect(g.report.results.map((r) => r.name)).toEqual(queues);
      for (const r of g.report.results) {
        const added = !row(before, r.name)!.members.includes(node);
        expect(r.outcome).toBe(added ? 'added' : 'skipped');
        expect(r.members).toContain(node);
        if (added) expect(r.members).toHaveLength(3);
      }
    }
    await eventually('three members everywhere, followers caught up', async () => {
      const rows = await listQueues('n1');
      return queues.every((q) => {
        const x = row(rows, q);
        return x !== undefined && x.members.length === 3 && x.followerLag !== null &&
          Object.keys(x.followerLag).length === 2 && Object.values(x.followerLag).every((lag) => lag === 0) && x.reportedBy.length === 3;
      });
    });
    // A second grow changes nothing.
    const again = await ctl('n1', 'grow', grown);
    expect(again.code).toBe(0);
    expect(again.report.results.every((r) => r.outcome === 'skipped')).toBe(true);

    // One of grow-a's two original replicas dies: the grown node makes the majority.
    const victim = original.find((n) => n !== 'n1') ?? original[0]!;
    nodes.get(victim)!.child.kill('SIGKILL');
    await nodes.get(victim)!.exited;
    nodes.delete(victim);
    const sub = await (await connect(grown)).createChannel();
    await sub.prefetch(50);
    const got = new Set<string>();
    await sub.consume('grow-a', (m) => {
      if (m === null) return;
      got.add(m.content.toString());
      sub.ack(m);
    });
    await eventually('every confirmed message of grow-a consumed', () => Promise.resolve(got.size >= perQueue), 30_000);
    expect([...got].sort()).toEqual(Array.from({ length: perQueue }, (_, i) => `grow-a-${i}`).sort());
  }, 90_000);

  it('shrink refuses to leave a queue without a live majority, removes a node whose removal is safe', async () => {
    const alive = [...nodes.keys()];
    expect(alive).toHaveLength(2);
    const dead = ['n1', 'n2', 'n3'].find((n) => !alive.includes(n))!;
    const other = alive.find((n) => n !== grown)!;
    // A node not in the cluster is refused.
    const unknown = await ctl(other, 'grow', 'n9');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/refused: .*n9 is not a node of this cluster/);
    // Taking a live node out of grow-b would leave it one live voter of two: refused, nothing changed.
    const refused = await ctl(other, 'shrink', grown, '--queue-pattern', '^grow-b$');
    expect(refused.code).toBe(1);
    expect(refused.report.results).toHaveLength(1);
    expect(refused.report.results[0]!.outcome).toBe('failed');
    expect(row(await listQueues(other), 'grow-b')!.members).toContain(grown);

    // The dead node goes from grow-b and grow-c: the two live ones keep their majority.
    const s = await ctl(grown, 'shrink', dead, '--queue-pattern', '^grow-[bc]$');
    expect(s.code, JSON.stringify(s.report)).toBe(0);
    for (const r of s.report.results) {
      expect(r.outcome).toBe('removed');
      expect([...r.members].sort()).toEqual([...alive].sort());
    }
    await eventually('grow-b and grow-c without the dead node', async () => {
      const rows = await listQueues(other);
      return ['grow-b', 'grow-c'].every((q) => row(rows, q)?.leader != null && !row(rows, q)!.members.includes(dead));
    });
    // A node that is down is not grown onto a queue it is not on (it could not catch up).
    const down = await ctl(other, 'grow', dead, '--queue-pattern', '^grow-[bc]$');
    expect(down.code).toBe(1);
    expect(down.report.results.map((r) => r.outcome)).toEqual(['failed', 'failed']);
    expect(down.report.results[0]!.detail).toContain('not connected');
    expect(row(await listQueues(other), 'grow-b')!.members).not.toContain(dead);
    // Now grow-c is on two live voters; taking out the one that leads it (it hands leadership over
    // first) leaves one voter of one: allowed.
    const leadC = row(await listQueues(other), 'grow-c')!.leader!;
    const keepC = alive.find((n) => n !== leadC)!;
    expect(alive).toContain(leadC);
    const s2 = await ctl(keepC, 'shrink', leadC, '--queue-pattern', '^grow-c$');
    expect(s2.code, JSON.stringify(s2.report)).toBe(0);
    expect(s2.report.results[0]!.outcome).toBe('removed');
    expect(s2.report.results[0]!.members).toEqual([keepC]);
    await eventually('grow-c led by the other node alone, its replica gone from the removed one', async () => {
      const x = row(await listQueues(keepC), 'grow-c');
      return x !== undefined && x.leader === keepC && x.members.length === 1 && x.members[0] === keepC && !x.reportedBy.includes(leadC);
    });
    expect(nodes.get(leadC)!.output()).toContain('replica removed from this node');
    // Its last replica stays.
    const last = await ctl(leadC, 'shrink', keepC, '--queue-pattern', '^grow-c$');
    expect(last.code).toBe(1);
    expect(last.report.results[0]!.outcome).toBe('failed');
    expect(last.report.results[0]!.detail).toContain('at least one');
    // And the queue still serves its messages, through the node that left it too.
    const ch = await (await connect(leadC)).createChannel();
    const m = await ch.get('grow-c', { noAck: true });
    expect(m === false ? null : m.content.toString()).toBe('grow-c-0');
  }, 60_000);
});
