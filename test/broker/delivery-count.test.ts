// x-delivery-count as RabbitMQ 4 quorum queues set it: absent on the first delivery, then the
// number of failed deliveries (a long), on basic.deliver and basic.get-ok, for local and
// replicated queues, seen through amqplib.

import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerServer } from '../../src/broker/server.js';
import { startTestBroker, url } from './helpers.js';
import { startReplicatedNode, type ReplicatedNode } from './replicated-node.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function local(): Promise<string> {
  const b: BrokerServer = await startTestBroker();
  cleanups.push(() => b.close());
  return url(b);
}

async function replicated(): Promise<string> {
  const n: ReplicatedNode = await startReplicatedNode();
  cleanups.push(() => n.stop());
  return n.url;
}

async function open(u: string): Promise<amqp.Channel> {
  const conn = await amqp.connect(u);
  cleanups.push(async () => { await conn.close().catch(() => {}); });
  return conn.createChannel();
}

/** Consumes three deliveries of one message, rejecting the first two with requeue. */
async function countsOverConsume(ch: amqp.Channel, queue: string): Promise<Array<unknown>> {
  const seen: amqp.ConsumeMessage[] = [];
  await new Promise<void>((resolve) => {
    void ch.consume(queue, (m) => {
      if (m === null) return;
      seen.push(m);
      if (seen.length < 3) ch.reject(m, true);
      else { ch.ack(m); resolve(); }
    });
  });
  expect(seen.map((m) => m.fields.redelivered)).toEqual([false, true, true]);
  expect(seen.every((m) => m.content.toString() === 'again')).toBe(true);
  expect(seen[0]!.properties.headers?.['keep']).toBe('me');
  expect(seen[2]!.properties.headers?.['keep']).toBe('me');
  return seen.map((m) => m.properties.headers?.['x-delivery-count']);
}

async function countsOverGet(ch: amqp.Channel, queue: string): Promise<Array<unknown>> {
  const counts: unknown[] = [];
  for (let i = 0; i < 3; i++) {
    const m = await ch.get(queue, { noAck: false });
    if (m === false) throw new Error('queue unexpectedly empty');
    counts.push(m.properties.headers?.['x-delivery-count']);
    if (i < 2) ch.nack(m, false, true);
    else ch.ack(m);
  }
  return counts;
}

describe.each([
  ['a local queue', local, false],
  ['a replicated queue', replicated, true],
])('x-delivery-count on %s', (_name, start, durable) => {
  it('is absent on the first delivery and counts rejects with requeue after it (basic.deliver)', async () => {
    const ch = await open(await start());
    await ch.assertQueue('dc', { durable });
    ch.sendToQueue('dc', Buffer.from('again'), { headers: { keep: 'me' } });
    expect(await countsOverConsume(ch, 'dc')).toEqual([undefined, 1, 2]);
  });

  it('is absent on the first get and counts nacks with requeue after it (basic.get-ok)', async () => {
    const ch = await open(await start());
    await ch.assertQueue('dg', { durable });
    ch.sendToQueue('dg', Buffer.from('again'));
    expect(await countsOverGet(ch, 'dg')).toEqual([undefined, 1, 2]);
  });
});
