// Publishers as a user sees them (amqplib on a node with replicated queues): a queue is a buffer,
// so a slow consumer never slows its publisher and the publisher's other calls are answered at
// once; what holds a publisher back is the node's own pace (credit flow: a disk that cannot keep
// up leaves the connection unread while its unfinished enqueues are at the bound, and it carries
// on when the disk catches up) and the resource alarms (disk-alarm.test.ts, wire-protocol.test.ts).

import amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { limits } from '../../src/broker/limits.js';
import { FaultyIo } from '../storage/faulty-io.js';
import { until } from './helpers.js';
import { startReplicatedNode, type ReplicatedNode } from './replicated-node.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(io?: FaultyIo): Promise<ReplicatedNode> {
  const n = await startReplicatedNode(io === undefined ? {} : { storageIo: io });
  cleanups.push(() => n.stop());
  return n;
}

async function connect(n: ReplicatedNode): Promise<ChannelModel> {
  const conn = await amqp.connect(n.url);
  cleanups.push(async () => { await conn.close().catch(() => {}); });
  return conn;
}

describe('a queue is a buffer', () => {
  it('confirms all 5,000 messages of a publisher while a slow consumer (prefetch 1, 100 ms each) has taken a few', async () => {
    const n = await node();
    const consumerConn = await connect(n);
    const publisherConn = await connect(n);
    const blocked: string[] = [];
    publisherConn.on('blocked', (reason: string) => blocked.push(reason));
    const consumer = await consumerConn.createChannel();
    await consumer.assertQueue('jobs', { durable: true });
    await consumer.prefetch(1);
    let taken = 0;
    const timers = new Set<NodeJS.Timeout>();
    cleanups.push(() => { for (const t of timers) clearTimeout(t); });
    await consumer.consume('jobs', (m) => {
      if (m === null) return;
      const t = setTimeout(() => {
        timers.delete(t);
        taken++;
        consumer.ack(m);
      }, 100);
      timers.add(t);
    });

    const publisher = await publisherConn.createConfirmChannel();
    const body = Buffer.alloc(1024, 1);
    const total = 5000;
    for (let i = 0; i < total; i++) publisher.publish('', 'jobs', body, { persistent: true });
    await publisher.waitForConfirms();
    // Held to the consumer's pace (10 a second) these would take 500 s; here they are all
    // confirmed while the consumer has worked through a handful.
    expect(taken).toBeLessThan(500);
    // The publisher's connection answers its other calls at once, and the queue holds the backlog.
    const other = await publisherConn.createChannel();
    const depth = (await other.checkQueue('jobs')).messageCount;
    expect(depth).toBeGreaterThan(total - 500);
    expect(blocked).toEqual([]);
  });
});

describe('credit flow', () => {
  it('stops reading a publisher whose enqueues the disk cannot keep up with, and carries on when it catches up', async () => {
    const io = new FaultyIo();
    const n = await node(io);
    const conn = await connect(n);
    const setup = await conn.createChannel();
    await setup.assertQueue('ingest', { durable: true });
    const bystander = await (await connect(n)).createChannel();

    const release = io.holdSyncs();
    const publisher = await conn.createConfirmChannel();
    const total = 3 * limits.inFlightMessagesMax;
    const body = Buffer.alloc(100, 2);
    for (let i = 0; i < total; i++) publisher.publish('', 'ingest', body, { persistent: true });
    const confirmed = publisher.waitForConfirms();
    const publisherFlow = (): ReturnType<ReplicatedNode['broker']['connectionFlow']>[number] =>
      n.broker.connectionFlow().find((c) => c.inFlight > 0 || c.holds > 0)!;
    await until(() => n.broker.connectionFlow().some((c) => c.state === 'flow'), 20_000, 'the publisher to be held');

    // Held: the node reads no more of it than the bound (plus the one socket read in hand), while
    // a call on the same connection waits and another connection is answered.
    const sameConnection = setup.checkQueue('ingest');
    let answered = false;
    void sameConnection.then(() => (answered = true));
    for (let i = 0; i < 20; i++) {
      expect((await bystander.checkQueue('ingest')).queue).toBe('ingest');
      expect(publisherFlow().state).toBe('flow');
      expect(publisherFlow().inFlight).toBeLessThan(limits.inFlightMessagesMax + 1000);
    }
    expect(answered).toBe(false);

    release();
    await confirmed;
    expect((await sameConnection).messageCount).toBeGreaterThan(0);
    expect((await bystander.checkQueue('ingest')).messageCount).toBe(total);
    const after = publisherFlow();
    expect(after.state).toBe('running');
    expect(after.holds).toBeGreaterThanOrEqual(1);
  });
});
