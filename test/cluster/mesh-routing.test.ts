// Three nodes in one process (group host, rpc, metadata group over three voters, AMQP broker each)
// on loopback: replicated queues placed on declare, used from any node with amqplib, and carried
// over the loss of a queue's leader without clients reconnecting.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/broker/auth.js';
import { defaultBrokerConfig } from '../../src/broker/config.js';
import { queueGroupId } from '../../src/broker/queue-registry.js';
import { startBroker, type BrokerServer } from '../../src/broker/server.js';
import { GroupHost } from '../../src/cluster/group-host.js';
import { ReplicatedMetadataClient } from '../../src/cluster/metadata-group.js';
import type { QueueListing } from '../../src/cluster/queue-listing.js';
import { ClusterRpc } from '../../src/cluster/rpc.js';
import { nodeId, type NodeId } from '../../src/lib/ids.js';
import { silentLogger } from '../../src/lib/log.js';
import { SeededRandom } from '../../src/lib/random.js';
import { until } from '../broker/helpers.js';

interface Node {
  readonly id: NodeId;
  readonly host: GroupHost;
  readonly rpc: ClusterRpc;
  readonly metadata: ReplicatedMetadataClient;
  readonly broker: BrokerServer;
  stopped: boolean;
}

const ids = ['n1', 'n2', 'n3'].map(nodeId);
const roots: string[] = [];
let nodes: Node[] = [];
const conns: amqp.ChannelModel[] = [];

afterEach(async () => {
  for (const c of conns.splice(0)) await c.close().catch(() => undefined);
  for (const n of nodes) await stop(n);
  nodes = [];
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

async function startCluster(): Promise<Node[]> {
  const root = mkdtempSync(join(tmpdir(), 'espresso-mesh-'));
  roots.push(root);
  const hosts = await Promise.all(ids.map((id, i) => GroupHost.start({
    nodeId: id, dataDir: join(root, id), listen: { host: '127.0.0.1', port: 0 }, secret: 'mesh-test', random: new SeededRandom(i + 1),
  })));
  for (const a of hosts) for (const b of hosts) if (a !== b) a.addPeer(b.nodeId, `127.0.0.1:${b.port}`);
  const rpcs = hosts.map((h) => new ClusterRpc(h.transport, silentLogger));
  const metas = await Promise.all(hosts.map((h, i) => ReplicatedMetadataClient.start({
    groupHost: h, members: ids, rpc: rpcs[i]!, defaultUser: { name: 'guest', passwordHash: hashPassword('guest'), tags: ['administrator'] },
    self: { id: h.nodeId, clusterAddress: `127.0.0.1:${h.port}`, amqpAddress: '', version: 'test' },
  })));
  const started: Node[] = [];
  for (let i = 0; i < hosts.length; i++) {
    const host = hosts[i]!;
    const broker = await startBroker({ ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0 }, {
      logger: silentLogger, clock: { nowMs: () => Date.now() }, cluster: { groupHost: host, metadata: metas[i]!, rpc: rpcs[i]! },
    });
    started.push({ id: host.nodeId, host, rpc: rpcs[i]!, metadata: metas[i]!, broker, stopped: false });
  }
  nodes = started;
  return started;
}

async function stop(n: Node): Promise<void> {
  if (n.stopped) return;
  n.stopped = true;
  await n.broker.close();
  n.rpc.close();
  await n.metadata.close();
  await n.host.close();
}

async function connect(n: Node): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(`amqp://guest:guest@127.0.0.1:${n.broker.port}`);
  conns.push(c);
  return c;
}

function recordOf(n: Node, queue: string) {
  return n.metadata.state.vhosts.get('/')?.queues.get(queue)?.record;
}

/** The running node whose host leads the queue's group. */
function leaderOf(queue: string): Node | undefined {
  return nodes.find((n) => !n.stopped && n.host.status(queueGroupId('/', queue))?.role === 'leader');
}

describe('replicated queues across three nodes (mesh routing)', () => {
  it('places three replicas with preferred leaders spread, and a message published on n1 is consumed on n3', async () => {
    const [n1, , n3] = await startCluster();
    const pubConn = await connect(n1!);
    const pub = await pubConn.createConfirmChannel();
    for (const q of ['a', 'b', 'c']) await pub.assertQueue(q, { durable: true });
    const replicaSets = ['a', 'b', 'c'].map((q) => recordOf(n1!, q)!.replicas);
    for (const r of replicaSets) expect([...r].sort()).toEqual(ids);
    // Each node is the preferred leader of one of the three queues.
    expect(replicaSets.map((r) => r[0]).sort()).toEqual(ids);
    // Every node hosts every group, and the preferred leader leads.
    await until(() => ['a', 'b', 'c'].every((q) => leaderOf(q)?.id === recordOf(n1!, q)!.replicas[0]), 10_000, 'preferred leaders');
    for (const n of nodes) for (const q of ['a', 'b', 'c']) expect(n.host.status(queueGroupId('/', q))).not.toBeNull();

    const bodies = Array.from({ length: 60 }, (_, i) => `m${i}`);
    for (const q of ['a', 'b', 'c']) for (const b of bodies) pub.sendToQueue(q, Buffer.from(b), { persistent: true });
    await pub.waitForConfirms();

    const subConn = await connect(n3!);
    const sub = await subConn.createChannel();
    await sub.prefetch(10);
    const got = new Map<string, string[]>([['a', []], ['b', []], ['c', []]]);
    for (const q of ['a', 'b', 'c']) {
      await sub.consume(q, (m) => {
        if (m === null) return;
        got.get(q)!.push(`${m.content.toString()}${m.fields.redelivered ? '*' : ''}`);
        sub.ack(m);
      });
    }
    await until(() => [...got.values()].every((g) => g.length === bodies.length), 10_000, 'every message on n3');
    for (const [q, g] of got) expect({ q, g }).toEqual({ q, g: bodies });
    // The acks were committed: the queues are empty on every replica.
    const unacked = (n: Node, q: string): number => n.broker.context.queues.ensure(recordOf(n, q)!).stats().messagesUnacked;
    await until(() => nodes.every((n) => ['a', 'b', 'c'].every((q) => unacked(n, q) === 0)), 5_000, 'acks applied on every replica');

    // ctl list-queues, asked of n2: one line per queue with its leader, members and lag, from every node's replicas.
    const listing = JSON.parse(new TextDecoder().decode(await n1!.rpc.call(ids[1]!, 'ctl.list-queues', new Uint8Array(0)))) as QueueListing[];
    expect(listing.map((q) => q.name)).toEqual(['a', 'b', 'c']);
    for (const q of listing) {
      expect(q.leader).toBe(recordOf(n1!, q.name)!.replicas[0]);
      expect([...q.members].sort()).toEqual(ids);
      expect(q.reportedBy).toEqual(ids);
      expect(Object.keys(q.followerLag ?? {}).sort()).toEqual(ids.filter((id) => id !== q.leader));
      expect(q.commitIndex).toBeGreaterThan(60); // 60 enqueues, the register and the (coalesced) settles
    }
    for (const q of listing) expect([q.ready, q.unacked, q.consumers]).toEqual([0, 0, 1]);
  });

  it('serves a one-replica queue to the nodes that do not host it, and its delete cancels their consumers', async () => {
    const [n1, n2, n3] = await startCluster();
    const declarer = await (await connect(n1!)).createChannel();
    await declarer.assertQueue('solo', { durable: true, arguments: { 'x-quorum-initial-group-size': 1 } });
    expect(recordOf(n1!, 'solo')!.replicas).toEqual(['n1']);
    await until(() => leaderOf('solo')?.id === 'n1', 10_000, 'n1 leads solo');
    for (const n of [n2!, n3!]) expect(n.host.status(queueGroupId('/', 'solo'))).toBeNull();

    const pub = await (await connect(n2!)).createConfirmChannel();
    const sub = await (await connect(n3!)).createChannel();
    const got: string[] = [];
    let cancelled = false;
    await sub.consume('solo', (m) => {
      if (m === null) {
        cancelled = true; // basic.cancel from the server
        return;
      }
      got.push(m.content.toString());
      sub.ack(m);
    });
    for (let i = 0; i < 20; i++) pub.sendToQueue('solo', Buffer.from(`s${i}`), { persistent: true });
    await pub.waitForConfirms();
    await until(() => got.length === 20, 10_000, '20 messages on n3');
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `s${i}`));
    // The declare-ok of a node without a replica carries the leader's counters.
    const declared = await pub.checkQueue('solo');
    expect(declared.consumerCount).toBe(1);

    await pub.deleteQueue('solo');
    await until(() => cancelled, 10_000, 'basic.cancel at the consumer on n3');
    await until(() => n1!.host.status(queueGroupId('/', 'solo')) === null, 10_000, 'the group gone from n1');
  });

  it('returns the messages of a consumer cut off from the leader to another consumer, and cancels it when its node is back', async () => {
    const [n1, n2, n3] = await startCluster();
    const pub = await (await connect(n1!)).createConfirmChannel();
    await pub.assertQueue('p', { durable: true });
    await until(() => leaderOf('p')?.id === 'n1', 10_000, 'n1 leads p');
    const far = await (await connect(n3!)).createChannel();
    await far.prefetch(10);
    const farGot: string[] = [];
    let farCancelled = false;
    await far.consume('p', (m) => {
      if (m === null) farCancelled = true;
      else farGot.push(m.content.toString());
    });
    for (let i = 0; i < 10; i++) pub.sendToQueue('p', Buffer.from(`p${i}`), { persistent: true });
    await pub.waitForConfirms();
    await until(() => farGot.length === 10, 10_000, '10 held on n3');

    // Cut n1 <-> n3 (n2 still reaches both): after the down grace n1 returns n3's messages.
    n1!.host.transport.disconnect(n3!.id);
    n3!.host.transport.disconnect(n1!.id);
    const near = await (await connect(n2!)).createChannel();
    const nearGot: Array<{ body: string; redelivered: boolean }> = [];
    await near.consume('p', (m) => {
      if (m === null) return;
      nearGot.push({ body: m.content.toString(), redelivered: m.fields.redelivered });
      near.ack(m);
    });
    await until(() => nearGot.length >= 10, 20_000, 'n3\'s messages redelivered on n2');
    expect(nearGot.map((g) => g.body).sort()).toEqual([...farGot].sort());
    expect(nearGot.every((g) => g.redelivered)).toBe(true);
    expect(farCancelled).toBe(false);

    n1!.host.addPeer(n3!.id, `127.0.0.1:${n3!.host.port}`);
    n3!.host.addPeer(n1!.id, `127.0.0.1:${n1!.host.port}`);
    await until(() => farCancelled, 10_000, 'basic.cancel for the consumer on n3 once the link is back');
  }, 40_000);

  it('a queue deleted and declared again at once starts empty on every replica', async () => {
    const [n1, n2] = await startCluster();
    const ch = await (await connect(n1!)).createConfirmChannel();
    await ch.assertQueue('again', { durable: true });
    for (let i = 0; i < 5; i++) ch.sendToQueue('again', Buffer.from(`old${i}`), { persistent: true });
    await ch.waitForConfirms();
    await ch.deleteQueue('again');
    await ch.assertQueue('again', { durable: true });
    ch.sendToQueue('again', Buffer.from('fresh'), { persistent: true });
    await ch.waitForConfirms();
    const sub = await (await connect(n2!)).createChannel();
    const got: string[] = [];
    await sub.consume('again', (m) => {
      if (m !== null) got.push(m.content.toString());
    }, { noAck: true });
    await until(() => got.length >= 1, 10_000, 'the fresh message');
    await until(() => nodes.every((n) => n.host.status(queueGroupId('/', 'again')) !== null), 5_000, 'every replica hosted again');
    const listing = JSON.parse(new TextDecoder().decode(await n1!.rpc.call(ids[2]!, 'ctl.list-queues', new Uint8Array(0)))) as QueueListing[];
    expect(got).toEqual(['fresh']);
    expect(listing.find((q) => q.name === 'again')?.reportedBy).toEqual(ids);
  });

  it('a consumer closing its channel on one node returns its unacked messages to a consumer on another', async () => {
    const [n1, n2, n3] = await startCluster();
    const pub = await (await connect(n1!)).createConfirmChannel();
    await pub.assertQueue('handover', { durable: true });
    for (let i = 0; i < 8; i++) pub.sendToQueue('handover', Buffer.from(`h${i}`), { persistent: true });
    await pub.waitForConfirms();
    const firstConn = await connect(n3!);
    const first = await firstConn.createChannel();
    await first.prefetch(8);
    const held: string[] = [];
    await first.consume('handover', (m) => { if (m !== null) held.push(m.content.toString()); });
    await until(() => held.length === 8, 10_000, '8 held on n3');
    const second = await (await connect(n2!)).createChannel();
    const got: Array<{ body: string; redelivered: boolean }> = [];
    await second.consume('handover', (m) => {
      if (m === null) return;
      got.push({ body: m.content.toString(), redelivered: m.fields.redelivered });
      second.ack(m);
    });
    await first.close();
    await until(() => got.length === 8, 10_000, 'the 8 on n2');
    expect(got.map((g) => g.body)).toEqual(held);
    expect(got.every((g) => g.redelivered)).toBe(true);
  });

  it('ctl.rebalance hands a queue back to its preferred leader while a consumer on another node keeps receiving', async () => {
    const [n1, n2, n3] = await startCluster();
    const pub = await (await connect(n3!)).createConfirmChannel();
    await pub.assertQueue('moved', { durable: true });
    await until(() => leaderOf('moved')?.id === 'n1', 10_000, 'n1 leads moved');
    const sub = await (await connect(n2!)).createChannel();
    const got: string[] = [];
    await sub.consume('moved', (m) => {
      if (m === null) return;
      got.push(m.content.toString());
      sub.ack(m);
    });
    n1!.host.transferLeadership(queueGroupId('/', 'moved'), n2!.id);
    await until(() => leaderOf('moved')?.id === 'n2', 10_000, 'n2 leads moved after the transfer');
    for (let i = 0; i < 20; i++) pub.sendToQueue('moved', Buffer.from(`v${i}`), { persistent: true });
    await pub.waitForConfirms();

    const answer = JSON.parse(new TextDecoder().decode(await n3!.rpc.call(ids[0]!, 'ctl.rebalance', new Uint8Array(0)))) as { moved: string[] };
    expect(answer.moved).toEqual(['//moved -> n1']);
    await until(() => leaderOf('moved')?.id === 'n1', 10_000, 'n1 leads moved again');
    for (let i = 20; i < 40; i++) pub.sendToQueue('moved', Buffer.from(`v${i}`), { persistent: true });
    await pub.waitForConfirms();
    await until(() => new Set(got).size === 40, 10_000, 'all 40 at the consumer');
  });

  it('keeps publishing and consuming through the loss of the queue leader: confirmed messages all arrive, unacked ones redelivered', async () => {
    await startCluster();
    const declarer = await connect(nodes[0]!);
    const dch = await declarer.createChannel();
    await dch.assertQueue('jobs', { durable: true });
    const leader = await (async () => {
      await until(() => leaderOf('jobs') !== undefined, 10_000, 'a leader of jobs');
      return leaderOf('jobs')!;
    })();
    const [pubNode, subNode] = nodes.filter((n) => n !== leader);
    const pub = await (await connect(pubNode!)).createConfirmChannel();
    const subConn = await connect(subNode!);
    const sub = await subConn.createChannel();
    await sub.prefetch(100);
    const seen: Array<{ body: string; redelivered: boolean }> = [];
    const held: amqp.ConsumeMessage[] = [];
    let acking = false;
    await sub.consume('jobs', (m) => {
      if (m === null) return;
      seen.push({ body: m.content.toString(), redelivered: m.fields.redelivered });
      if (acking) sub.ack(m);
      else held.push(m);
    });
    for (let i = 0; i < 30; i++) pub.sendToQueue('jobs', Buffer.from(`before${i}`), { persistent: true });
    await pub.waitForConfirms();
    await until(() => seen.length === 30, 10_000, 'first deliveries');

    await stop(leader);
    // Published while there is no leader: the node retries on the new one; the confirm means committed.
    for (let i = 0; i < 30; i++) pub.sendToQueue('jobs', Buffer.from(`after${i}`), { persistent: true });
    await pub.waitForConfirms();
    const successor = leaderOf('jobs');
    expect(successor).toBeDefined();
    expect(successor).not.toBe(leader);

    acking = true;
    for (const m of held.splice(0)) sub.ack(m);
    const bodies = (): Set<string> => new Set(seen.map((s) => s.body));
    await until(() => bodies().size === 60, 15_000, 'all 60 messages at the consumer');
    // The 30 delivered but unacked when the leader went came again, flagged redelivered.
    for (let i = 0; i < 30; i++) expect(seen.some((s) => s.body === `before${i}` && s.redelivered)).toBe(true);
    for (let i = 0; i < 30; i++) expect(seen.some((s) => s.body === `after${i}`)).toBe(true);
    // Published while the leader was gone, retried on the new one: still first delivered in publish order.
    const firstSeen = (b: string): number => seen.findIndex((s) => s.body === b);
    const order = Array.from({ length: 30 }, (_, i) => firstSeen(`after${i}`));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  }, 40_000);
});
