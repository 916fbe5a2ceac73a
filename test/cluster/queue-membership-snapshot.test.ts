// A node grown into a queue whose log was compacted behind a snapshot (thousands of messages went
// through it) catches up from that snapshot: after one original replica is killed, the messages
// still in the queue (held unacked while the snapshot was taken, then returned) come from it. The
// killed replica restarted later is taken in again.

import { describe, expect, it } from 'vitest';
import type { QueueListing } from '../../src/cluster/queue-listing.js';
import { clusterAddress, clusterForFile, eventually, listQueuesOf, runCtl, startNode } from '../cli/cluster-nodes.js';

const secret = 'queue-membership-snapshot-secret';
const { nodes, conns, connect } = clusterForFile('espresso-qmember-snap-', secret);
const keepers = 50;
/** Enough enqueues and settles to pass the 4096-entry snapshot threshold of replicated queues. */
const churn = 3_000;

async function listing(name: string, queue: string): Promise<QueueListing | undefined> {
  return (await listQueuesOf(nodes.get(name)!)).find((q) => q.name === queue);
}

describe('ctl grow onto a queue with a compacted log', () => {
  it('the new replica catches up from the snapshot and serves the queue once an original replica is gone', async () => {
    const c1 = await connect('n1');
    const pub = await c1.createConfirmChannel();
    await pub.assertQueue('deep', { durable: true, arguments: { 'x-quorum-initial-group-size': 2 } });
    for (let i = 0; i < keepers; i++) pub.sendToQueue('deep', Buffer.from(`keep-${i}`), { persistent: true });
    await pub.waitForConfirms();
    // The keepers stay unacked on one channel while the churn goes through another and is acked.
    const holderConn = await connect('n1');
    const holder = await holderConn.createChannel();
    await holder.prefetch(keepers);
    let held = 0;
    await holder.consume('deep', (m) => {
      if (m !== null) held++;
    });
    await eventually('keepers held', () => Promise.resolve(held === keepers));
    const worker = await c1.createChannel();
    await worker.prefetch(200);
    let acked = 0;
    await worker.consume('deep', (m) => {
      if (m === null) return;
      worker.ack(m);
      acked++;
    });
    for (let i = 0; i < churn; i++) pub.sendToQueue('deep', Buffer.from(`churn-${i}`), { persistent: true });
    await pub.waitForConfirms();
    await eventually('churn consumed', () => Promise.resolve(acked === churn), 30_000);
    await worker.close();
    await holder.close(); // the keepers return to the queue, redelivered
    await eventually('keepers back in the queue', async () => (await listing('n1', 'deep'))?.ready === keepers);

    const before = (await listing('n1', 'deep'))!;
    expect(before.members).toHaveLength(2);
    const grown = ['n1', 'n2', 'n3'].find((n) => !before.members.includes(n))!;
    const g = await runCtl(['--cluster-address', clusterAddress(nodes.get('n1')!), 'grow', grown, '--queue-pattern', '^deep$'], { ESPRESSO_CLUSTER_SECRET: secret });
    expect(g.code, g.stdout + g.stderr).toBe(0);
    expect(g.stdout).toMatch(/1 added, 0 skipped, 0 failed/);
    await eventually('three voters, no lag', async () => {
      const x = await listing('n1', 'deep');
      return x !== undefined && x.members.length === 3 && x.followerLag !== null && Object.values(x.followerLag).every((l) => l === 0);
    });

    const victim = before.members.find((n) => n !== 'n1') ?? before.members[0]!;
    const survivor = ['n1', 'n2', 'n3'].find((n) => n !== victim && n !== grown)!;
    // n1 holds the connections: close them before n1 may go.
    for (const c of conns.splice(0)) await c.close().catch(() => undefined);
    const victimSpec = nodes.get(victim)!.spec;
    nodes.get(victim)!.child.kill('SIGKILL');
    await nodes.get(victim)!.exited;
    nodes.delete(victim);
    const sub = await (await connect(grown)).createChannel();
    const got: Array<{ body: string; redelivered: boolean }> = [];
    await sub.consume('deep', (m) => {
      if (m === null) return;
      got.push({ body: m.content.toString(), redelivered: m.fields.redelivered });
      sub.ack(m);
    });
    await eventually(`the keepers consumed on ${grown} with ${survivor}`, () => Promise.resolve(got.length >= keepers), 30_000);
    expect(got.map((x) => x.body).sort()).toEqual(Array.from({ length: keepers }, (_, i) => `keep-${i}`).sort());
    expect(got.every((x) => x.redelivered)).toBe(true);

    // The killed replica comes back with its old log: the group takes it in again, three voters in step.
    const back = startNode(victimSpec);
    nodes.set(victim, back);
    await back.ready;
    await eventually('three voters reporting, no lag, after the restart', async () => {
      const x = await listing(grown, 'deep');
      return x !== undefined && x.members.length === 3 && x.reportedBy.length === 3 && x.followerLag !== null &&
        Object.keys(x.followerLag).length === 2 && Object.values(x.followerLag).every((l) => l === 0);
    }, 30_000);
    expect((await listing(victim, 'deep'))!.ready).toBe(0);
  }, 90_000);
});
