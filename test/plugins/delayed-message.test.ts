// x-delayed-message on one in-process node: x-delayed-type is required and checked (406), a
// declare makes the 32 delay queues, a message without x-delay is routed at once and one with it
// after the delay (routed with the bindings of that moment, as x-delayed-type routes), and a
// delete of the exchange takes its delay queues (and held messages) with it. A delayed message is
// delivered with x-delay negated and without the delay queues' x-death entries.

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type StartedNode } from '../../src/cli/library.js';
import { delayQueueName } from '../../plugins/delayed-message.js';

let node: StartedNode;
let conn: amqp.ChannelModel;

beforeAll(async () => {
  node = await startNode({ plugins: ['delayed-message'] });
  conn = await amqp.connect(node.amqpUrl);
  conn.on('error', () => undefined);
});

afterAll(async () => {
  await conn?.close().catch(() => undefined);
  await node?.stop();
});

async function closedWith(action: (ch: amqp.Channel) => Promise<unknown>): Promise<string> {
  const ch = await conn.createChannel();
  ch.on('error', () => undefined);
  return action(ch).then(() => 'no error', (e: Error) => e.message);
}

describe('x-delayed-message', () => {
  it('needs an x-delayed-type it can route by', async () => {
    expect(await closedWith((ch) => ch.assertExchange('no-type', 'x-delayed-message'))).toContain("406 (PRECONDITION-FAILED) with message \"PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing exchange type");
    expect(await closedWith((ch) => ch.assertExchange('bad-type', 'x-delayed-message', { arguments: { 'x-delayed-type': 'x-delayed-message' } }))).toContain("'x-delayed-type' must be one of direct, fanout, topic, headers");
  });

  it('routes at once without x-delay, after it with, by the bindings of that moment', async () => {
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange('timer', 'x-delayed-message', { durable: true, arguments: { 'x-delayed-type': 'topic' } });
    for (let k = 0; k < 32; k++) await ch.checkQueue(delayQueueName('timer', k));
    await ch.assertQueue('early', { durable: true });
    await ch.bindQueue('early', 'timer', 'jobs.*');
    const start = Date.now();
    ch.publish('timer', 'jobs.a', Buffer.from('now'));
    ch.publish('timer', 'jobs.b', Buffer.from('later'), { headers: { 'x-delay': 1200 } });
    ch.publish('timer', 'jobs.c', Buffer.from('negative'), { headers: { 'x-delay': -10 } });
    await ch.waitForConfirms();
    // Bound after the publish, before the delay ends: the delayed message reaches it too.
    await ch.assertQueue('late-binder', { durable: true });
    await ch.bindQueue('late-binder', 'timer', 'jobs.#');
    const arrivals: Array<{ queue: string; body: string; ms: number; headers: unknown }> = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(JSON.stringify(arrivals))), 15_000);
      for (const q of ['early', 'late-binder']) {
        void ch.consume(q, (m) => {
          if (m === null) return;
          arrivals.push({ queue: q, body: m.content.toString(), ms: Date.now() - start, headers: m.properties.headers });
          if (arrivals.length === 4) {
            clearTimeout(timer);
            resolve();
          }
        }, { noAck: true });
      }
    });
    const later = arrivals.filter((a) => a.body === 'later');
    expect(later.map((a) => a.queue).sort()).toEqual(['early', 'late-binder']);
    for (const a of later) expect(a.ms).toBeGreaterThanOrEqual(1150);
    // As RabbitMQ's plugin delivers it: x-delay negated, no trace of the delay queues.
    for (const a of later) expect(a.headers).toEqual({ 'x-delay': -1200 });
    expect(arrivals.filter((a) => a.queue === 'early' && a.body !== 'later').map((a) => a.body).sort()).toEqual(['negative', 'now']);
  });

  it('takes its delay queues with it when deleted', async () => {
    const ch = await conn.createChannel();
    await ch.assertExchange('short-lived', 'x-delayed-message', { arguments: { 'x-delayed-type': 'direct' } });
    await ch.checkQueue(delayQueueName('short-lived', 31));
    await ch.deleteExchange('short-lived');
    expect(await closedWith((c) => c.checkQueue(delayQueueName('short-lived', 0)))).toContain('404');
    expect(await closedWith((c) => c.checkQueue(delayQueueName('short-lived', 31)))).toContain('404');
  });
});
