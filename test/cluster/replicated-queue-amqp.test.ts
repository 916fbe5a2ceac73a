// A real AMQP client (amqplib) against a broker whose durable queues are Raft groups on a group
// host, with metadata in its Raft group too: confirmed messages and unacked ones survive a restart
// of the node (broker and host closed, started again on the same data dir).

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
import { MeshQueue } from '../../src/cluster/mesh-queue.js';
import { nodeId } from '../../src/lib/ids.js';
import { silentLogger } from '../../src/lib/log.js';
import { until } from '../broker/helpers.js';

interface Node {
  host: GroupHost;
  broker: BrokerServer;
}

const roots: string[] = [];
const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await stop(n);
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

async function start(dataDir: string): Promise<Node> {
  const host = await GroupHost.start({ nodeId: nodeId('n1'), dataDir, listen: { host: '127.0.0.1', port: 0 }, secret: 's' });
  const metadata = await ReplicatedMetadataClient.start({
    groupHost: host, members: [host.nodeId], defaultUser: { name: 'guest', passwordHash: hashPassword('guest'), tags: ['administrator'] },
  });
  const broker = await startBroker({ ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0 }, {
    logger: silentLogger, clock: { nowMs: () => Date.now() }, cluster: { groupHost: host, metadata },
  });
  // Until the node context hands the registry its group host itself.
  broker.context.queues.attachGroupHost(host);
  const n = { host, broker };
  nodes.push(n);
  return n;
}

async function stop(n: Node): Promise<void> {
  const i = nodes.indexOf(n);
  if (i >= 0) nodes.splice(i, 1);
  await n.broker.close();
  await n.host.close();
}

describe('durable queues over AMQP are replicated', () => {
  it('keeps confirmed messages and returns unacked ones redelivered after a node restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-rqa-'));
    roots.push(dir);
    let node = await start(dir);
    let conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${node.broker.port}`);
    const pub = await conn.createConfirmChannel();
    await pub.assertQueue('jobs', { durable: true });
    expect(node.broker.context.queues.get('/', 'jobs')).toBeInstanceOf(MeshQueue);
    expect(node.host.status(queueGroupId('/', 'jobs'))?.role).toBe('leader');
    for (let i = 0; i < 100; i++) pub.sendToQueue('jobs', Buffer.from(`m${i}`), { persistent: true, headers: { i } });
    await pub.waitForConfirms();
    const sub = await conn.createChannel();
    await sub.prefetch(10);
    const first: amqp.ConsumeMessage[] = [];
    await new Promise<void>((resolve) => {
      void sub.consume('jobs', (m) => {
        if (m === null) return;
        first.push(m);
        if (first.length === 10) resolve();
      });
    });
    // Ack 4 of the 10 held (and wait for their settle to be committed: a confirm after it is ordered).
    for (const m of first.slice(0, 4)) sub.ack(m);
    await sub.checkQueue('jobs');
    await pub.checkQueue('jobs');
    await conn.close();
    const unacked = first.slice(4).map((m) => m.content.toString());
    // The settles and the channel's down are in the log in that order: once the down is applied,
    // the acks are committed (a node stopped earlier may lose them: at-least-once, not this test).
    const q = node.broker.context.queues.get('/', 'jobs')!;
    await until(() => q.stats().messagesUnacked === 0 && q.stats().messagesReady === 96);
    await stop(node);

    node = await start(dir);
    conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${node.broker.port}`);
    const ch = await conn.createChannel();
    const got: amqp.ConsumeMessage[] = [];
    await new Promise<void>((resolve) => {
      void ch.consume('jobs', (m) => {
        if (m === null) return;
        got.push(m);
        if (got.length === 96) resolve();
      }, { noAck: true });
    });
    // Returned messages (delivered, not acked) come first, redelivered, then the rest in order.
    const bodies = got.map((m) => m.content.toString());
    const returned = unacked.length;
    expect(returned).toBeGreaterThanOrEqual(6);
    expect(bodies.slice(0, returned)).toEqual(unacked);
    expect(got.slice(0, returned).every((m) => m.fields.redelivered)).toBe(true);
    expect(bodies.slice(returned)).toEqual(Array.from({ length: 96 - returned }, (_, i) => `m${i + 4 + returned}`));
    // Messages the client never saw may still be flagged: the queue handed them to the channel.
    const seen = new Set(first.map((m) => m.content.toString()));
    expect(got.filter((m) => seen.has(m.content.toString())).every((m) => m.fields.redelivered)).toBe(true);
    expect(got.find((m) => m.content.toString() === 'm20')!.properties.headers).toMatchObject({ i: 20 });
    await conn.close();
  });

  it('serves basic.get, nack with requeue, purge, TTL dead-lettering and delete through the log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-rqa-'));
    roots.push(dir);
    const node = await start(dir);
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${node.broker.port}`);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('dead', { durable: true });
    await ch.assertQueue('work', { durable: true, arguments: { 'x-message-ttl': 50, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dead' } });
    await ch.assertQueue('plain', { durable: true });
    expect(node.broker.context.queues.get('/', 'work')).toBeInstanceOf(MeshQueue);
    expect(node.host.status(queueGroupId('/', 'work'))?.role).toBe('leader');
    ch.sendToQueue('plain', Buffer.from('a'), { persistent: true });
    ch.sendToQueue('plain', Buffer.from('b'), { persistent: true });
    await ch.waitForConfirms();
    const a = await ch.get('plain');
    expect(a && a.content.toString()).toBe('a');
    ch.nack(a as amqp.GetMessage, false, true);
    const again = await ch.get('plain', { noAck: true });
    expect(again && again.content.toString()).toBe('a');
    expect(again && again.fields.redelivered).toBe(true);
    expect((await ch.purgeQueue('plain')).messageCount).toBe(1);

    // Expiry runs on the leader's timer, whose firing is a tick command in the log.
    ch.sendToQueue('work', Buffer.from('late'), { persistent: true });
    await ch.waitForConfirms();
    const dead = node.broker.context.queues.get('/', 'dead')!;
    await until(() => dead.stats().messagesReady === 1, 5000, 'dead-lettered message');
    const d = await ch.get('dead', { noAck: true });
    expect(d && d.content.toString()).toBe('late');
    expect(JSON.stringify(d && d.properties.headers)).toContain('expired');

    expect((await ch.deleteQueue('dead')).messageCount).toBe(0);
    await until(() => node.host.status(queueGroupId('/', 'dead')) === null, 5000, 'the queue group removed');
    await conn.close();
  });
});
