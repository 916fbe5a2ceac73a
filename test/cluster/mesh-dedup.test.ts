// A publish forwarded to a queue's leader that commits it and dies before its answer gets back is
// retried on the next leader with the same identity: the message is stored and delivered once.

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
import { decodeCall, meshMethods } from '../../src/cluster/queue-wire.js';
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
  broker: BrokerServer | null;
  stopped: boolean;
}

const ids = ['n1', 'n2', 'n3'].map(nodeId);
const roots: string[] = [];
let nodes: Node[] = [];
const conns: amqp.ChannelModel[] = [];
/** The node that, once it has applied the next forwarded enqueue, stops instead of answering. */
let dieAfterCommit: Node | null = null;
let answersLost = 0;
/** The node that holds forwarded enqueues unprocessed (as if cut off) until released. */
let holdEnqueues: Node | null = null;
let held: Array<() => void> = [];

afterEach(async () => {
  dieAfterCommit = null;
  holdEnqueues = null;
  for (const release of held.splice(0)) release();
  for (const c of conns.splice(0)) await c.close().catch(() => undefined);
  for (const n of nodes) await stop(n);
  nodes = [];
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

/**
 * The mesh's 'q.call' handler of `node`, run as it is; when the node is marked, an enqueue it has
 * committed and applied is not answered: the node stops first (the caller sees it go down). When
 * it holds enqueues, they wait unprocessed (a leader cut off from the caller).
 */
function losingAnswers(node: () => Node, rpc: ClusterRpc): void {
  const register = rpc.handle.bind(rpc);
  rpc.handle = (method, handler) => register(method, method !== meshMethods.call ? handler : async (from, payload) => {
    if (holdEnqueues === node() && decodeCall(payload).command.type === 'enqueue') await new Promise<void>((resolve) => held.push(resolve));
    const answer = await handler(from, payload);
    if (dieAfterCommit !== node() || decodeCall(payload).command.type !== 'enqueue') return answer;
    dieAfterCommit = null;
    answersLost++;
    await stop(node());
    throw new Error('the node stopped before answering');
  });
}

async function startCluster(): Promise<Node[]> {
  const root = mkdtempSync(join(tmpdir(), 'espresso-mesh-dedup-'));
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
  nodes = hosts.map((host, i) => ({ id: host.nodeId, host, rpc: rpcs[i]!, metadata: metas[i]!, broker: null, stopped: false }));
  for (const n of nodes) {
    losingAnswers(() => n, n.rpc);
    n.broker = await startBroker({ ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0 }, {
      logger: silentLogger, clock: { nowMs: () => Date.now() }, cluster: { groupHost: n.host, metadata: n.metadata, rpc: n.rpc },
    });
  }
  return nodes;
}

async function stop(n: Node): Promise<void> {
  if (n.stopped) return;
  n.stopped = true;
  await n.broker?.close();
  n.rpc.close();
  await n.metadata.close();
  await n.host.close();
}

async function connect(n: Node): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(`amqp://guest:guest@127.0.0.1:${n.broker!.port}`);
  conns.push(c);
  return c;
}

function leaderOf(queue: string): Node | undefined {
  return nodes.find((n) => !n.stopped && n.host.status(queueGroupId('/', queue))?.role === 'leader');
}

describe('a publish retried across a leader change (mesh routing)', () => {
  it('is delivered exactly once, in publish order, when the leader committed it and died before answering', async () => {
    await startCluster();
    const declarer = await (await connect(nodes[0]!)).createChannel();
    await declarer.assertQueue('once', { durable: true });
    await until(() => leaderOf('once') !== undefined, 10_000, 'a leader of once');
    const leader = leaderOf('once')!;
    const [pubNode, subNode] = nodes.filter((n) => n !== leader);
    const pub = await (await connect(pubNode!)).createConfirmChannel();
    for (let i = 0; i < 5; i++) pub.sendToQueue('once', Buffer.from(`m${i}`), { persistent: true });
    await pub.waitForConfirms();

    // The next forwarded publish commits on the leader, which then stops without answering: the
    // publishing node retries it on the next leader.
    dieAfterCommit = leader;
    pub.sendToQueue('once', Buffer.from('m5'), { persistent: true });
    await pub.waitForConfirms();
    expect(answersLost).toBe(1);
    expect(leader.stopped).toBe(true);
    for (let i = 6; i < 10; i++) pub.sendToQueue('once', Buffer.from(`m${i}`), { persistent: true });
    await pub.waitForConfirms();

    const sub = await (await connect(subNode!)).createChannel();
    const seen: string[] = [];
    await sub.consume('once', (m) => {
      if (m === null) return;
      seen.push(`${m.content.toString()}${m.fields.redelivered ? '*' : ''}`);
      sub.ack(m);
    });
    await until(() => seen.length >= 10, 10_000, 'ten deliveries');
    // Anything more would have come with the first ten (they are all ready): wait for the acks to commit.
    await until(() => subNode!.broker!.context.queues.ensure(nodes[0]!.metadata.state.vhosts.get('/')!.queues.get('once')!.record).stats().messagesUnacked === 0, 5_000, 'acks applied');
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
  }, 40_000);

  it('keeps publish order when a later publish finds a new leader while earlier ones still wait on the old one', async () => {
    await startCluster();
    const declarer = await (await connect(nodes[0]!)).createChannel();
    await declarer.assertQueue('ordered', { durable: true });
    await until(() => leaderOf('ordered') !== undefined, 10_000, 'a leader of ordered');
    const group = queueGroupId('/', 'ordered');
    const oldLeader = leaderOf('ordered')!;
    const [pubNode, newLeader] = nodes.filter((n) => n !== oldLeader);
    const pub = await (await connect(pubNode!)).createConfirmChannel();
    for (let i = 0; i < 3; i++) pub.sendToQueue('ordered', Buffer.from(`m${i}`), { persistent: true });
    await pub.waitForConfirms();

    // m3..m5 reach the old leader and wait there unprocessed; leadership moves on meanwhile.
    holdEnqueues = oldLeader;
    for (let i = 3; i < 6; i++) pub.sendToQueue('ordered', Buffer.from(`m${i}`), { persistent: true });
    await until(() => held.length === 3, 5_000, 'three publishes held on the old leader');
    oldLeader.host.transferLeadership(group, newLeader!.id);
    await until(() => pubNode!.host.leader(group) === newLeader!.id, 10_000, 'the publishing node sees the new leader');
    // Published after the move: without care these commit on the new leader before m3..m5.
    for (let i = 6; i < 9; i++) pub.sendToQueue('ordered', Buffer.from(`m${i}`), { persistent: true });
    await pub.waitForConfirms();

    const sub = await (await connect(newLeader!)).createChannel();
    const seen: string[] = [];
    await sub.consume('ordered', (m) => {
      if (m === null) return;
      seen.push(`${m.content.toString()}${m.fields.redelivered ? '*' : ''}`);
      sub.ack(m);
    }, { noAck: false });
    await until(() => seen.length >= 9, 10_000, 'nine deliveries');
    expect(seen).toEqual(Array.from({ length: 9 }, (_, i) => `m${i}`));
  }, 40_000);
});
