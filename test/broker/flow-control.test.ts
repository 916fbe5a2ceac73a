// Publisher flow control seen from real clients: a publisher outrunning a stuck consumer stops
// being read (its writes back up) with the queue held near the documented limit, and carries on
// once the consumer acks; a queue without consumers, or consumed on the publisher's own
// connection, never holds a publisher back.

import amqp from 'amqplib';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limits } from '../../src/broker/limits.js';
import type { BrokerServer } from '../../src/broker/server.js';
import { startTestBroker, until, url } from './helpers.js';

let broker: BrokerServer;
const opened: ChannelModel[] = [];

beforeAll(async () => {
  broker = await startTestBroker();
});
afterAll(async () => {
  for (const c of opened) await c.close().catch(() => {});
  await broker.close();
});

async function open(): Promise<Channel> {
  const c = await amqp.connect(url(broker));
  opened.push(c);
  const ch = await c.createChannel();
  ch.on('error', () => {});
  return ch;
}

/** Ready messages as a client sees them (queue.declare passive from its own connection). */
async function depth(observer: Channel, queue: string): Promise<number> {
  return (await observer.checkQueue(queue)).messageCount;
}

const high = limits.flowReadyHighMessages;

describe('publisher flow control', () => {
  it('holds a publisher whose consumer does not ack beyond its prefetch, and resumes it on acks', async () => {
    const [consumer, publisher, observer] = [await open(), await open(), await open()];
    const queue = 'flow.stuck';
    await observer.assertQueue(queue, { durable: false });
    const prefetch = 10;
    await consumer.prefetch(prefetch);
    const held: ConsumeMessage[] = [];
    let acking = false;
    let received = 0;
    await consumer.consume(queue, (m) => {
      if (m === null) return;
      received++;
      if (acking) consumer.ack(m);
      else held.push(m);
    });

    // 16 KiB bodies: what the broker refuses to read must overflow the kernel's socket buffers.
    const total = 4 * high;
    const body = Buffer.alloc(16 * 1024, 7);
    let refusedWrite = false;
    let drained = false;
    publisher.on('drain', () => (drained = true));
    for (let i = 0; i < total; i++) {
      if (!publisher.publish('', queue, body)) refusedWrite = true;
    }
    expect(refusedWrite).toBe(true);

    await until(() => held.length === prefetch, 10_000, 'the consumer to fill its prefetch');
    let seen = 0;
    for (let i = 0; i < 2000 && seen < high; i++) seen = await depth(observer, queue);
    expect(seen).toBeGreaterThanOrEqual(high);
    // Held: every look shows the queue at the limit (the publish that crossed it included),
    // while the publisher's writes stay backed up.
    for (let i = 0; i < 20; i++) {
      const n = await depth(observer, queue);
      expect(n).toBeLessThanOrEqual(high + 1);
    }
    expect(drained).toBe(false);
    expect(received).toBe(prefetch);

    acking = true;
    for (const m of held.splice(0)) consumer.ack(m);
    await until(() => received === total, 30_000, 'every message to be delivered after the acks');
    expect(await depth(observer, queue)).toBe(0);
  });

  it('two connections that each consume what the other publishes do not hold each other for good', async () => {
    const [a, b, observer] = [await open(), await open(), await open()];
    await observer.assertQueue('flow.ab', { durable: false });
    await observer.assertQueue('flow.ba', { durable: false });
    const counts = { a: 0, b: 0 };
    for (const [ch, queue, key] of [[a, 'flow.ba', 'a'], [b, 'flow.ab', 'b']] as const) {
      await ch.prefetch(10);
      await ch.consume(queue, (m) => {
        if (m === null) return;
        counts[key]++;
        ch.ack(m); // the ack queues behind this connection's own publishes
      });
    }
    const total = 3 * high;
    const body = Buffer.alloc(8 * 1024, 1);
    for (let i = 0; i < total; i++) {
      a.publish('', 'flow.ab', body);
      b.publish('', 'flow.ba', body);
    }
    await until(() => counts.a === total && counts.b === total, 30_000, 'both queues to be consumed');
  });

  it('never holds a publisher to a queue without consumers: the backlog grows past the limit', async () => {
    const publisher = await open();
    const confirmed = await (opened.at(-1)!).createConfirmChannel();
    const queue = 'flow.backlog';
    await publisher.assertQueue(queue, { durable: false });
    const total = 3 * high;
    for (let i = 0; i < total; i++) confirmed.publish('', queue, Buffer.alloc(64));
    await confirmed.waitForConfirms();
    expect(await depth(publisher, queue)).toBe(total);
  });

  it('does not hold a connection that consumes the backed-up queue itself (its acks must get through)', async () => {
    const conn = await amqp.connect(url(broker));
    opened.push(conn);
    const ch = await conn.createConfirmChannel();
    const queue = 'flow.self';
    await ch.assertQueue(queue, { durable: false });
    await ch.prefetch(5);
    let received = 0;
    await ch.consume(queue, () => void received++);
    const total = 3 * high;
    for (let i = 0; i < total; i++) ch.publish('', queue, Buffer.alloc(64));
    await ch.waitForConfirms();
    await until(() => received === 5, 5000, 'the prefetch to fill');
    expect(await depth(ch, queue)).toBe(total - 5);
  });
});
