// Single active consumer, consumer priorities and x-death on durable (replicated) queues, with the
// publisher and the consumers on different nodes of three real server processes: each test fails
// when its feature is switched off (round-robin over the consumers, no dead-letter headers).

import type amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { clusterForFile, eventually, listQueuesOf } from '../cli/cluster-nodes.js';

const secret = 'consumer-features-secret';
const { nodes, connect } = clusterForFile('espresso-consumer-features-', secret);

interface Got {
  body: string;
  redelivered: boolean;
  msg: amqp.ConsumeMessage;
}

/** Consumes `queue` on `ch` without acking; what arrives is pushed to the returned list. */
async function hold(ch: amqp.Channel, queue: string, options: amqp.Options.Consume = {}): Promise<{ got: Got[]; tag: string }> {
  const got: Got[] = [];
  const { consumerTag } = await ch.consume(queue, (m) => {
    if (m !== null) got.push({ body: m.content.toString(), redelivered: m.fields.redelivered, msg: m });
  }, options);
  return { got, tag: consumerTag };
}

async function publish(ch: amqp.ConfirmChannel, queue: string, bodies: readonly string[]): Promise<void> {
  for (const b of bodies) ch.sendToQueue(queue, Buffer.from(b), { persistent: true });
  await ch.waitForConfirms();
}

/** Waits until the queue, asked on `ch`'s node, counts `n` consumers (both registrations committed). */
async function consumers(ch: amqp.Channel, queue: string, n: number): Promise<void> {
  await eventually(`${n} consumers on ${queue}`, async () => (await ch.checkQueue(queue)).consumerCount === n);
}

const bodies = (prefix: string, n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${from + i}`);

describe('consumer features on replicated queues, consumers on two nodes', () => {
  it('single active consumer: one consumer gets everything while it is active, the next on another node takes over on cancel and on close', async () => {
    const pub = await (await connect('n1')).createConfirmChannel();
    await pub.assertQueue('sac', { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-single-active-consumer': true } });
    const first = await (await connect('n2')).createChannel();
    await first.prefetch(100);
    const a = await hold(first, 'sac');
    await consumers(pub, 'sac', 1);
    const second = await (await connect('n3')).createChannel();
    await second.prefetch(100);
    const b = await hold(second, 'sac');
    await consumers(pub, 'sac', 2);

    // Both have room for all 20: round-robin would give the second half of them.
    await publish(pub, 'sac', bodies('m', 20));
    await eventually('all 20 with the active consumer', () => Promise.resolve(a.got.length === 20));
    expect(a.got.map((g) => g.body)).toEqual(bodies('m', 20));
    expect(b.got).toEqual([]);

    // Cancelled, the first keeps its 20 unacked; the second becomes active for what comes next.
    await first.cancel(a.tag);
    await publish(pub, 'sac', bodies('m', 5, 20));
    await eventually('the next 5 with the second consumer', () => Promise.resolve(b.got.length === 5));
    expect(b.got.map((g) => g.body)).toEqual(bodies('m', 5, 20));

    // Its channel closed, the first one's messages go back and to the active consumer, redelivered.
    await first.close();
    await eventually('the 20 returned to the second consumer', () => Promise.resolve(b.got.length === 25));
    expect(b.got.slice(5).map((g) => g.body)).toEqual(bodies('m', 20));
    expect(b.got.slice(5).every((g) => g.redelivered)).toBe(true);
    for (const g of b.got) second.ack(g.msg);
    await eventually('sac drained', async () => (await pub.checkQueue('sac')).messageCount === 0);
  }, 60_000);

  it('consumer priorities: the higher x-priority consumer on one node is served first, the lower one on another node only when it is full', async () => {
    const pub = await (await connect('n1')).createConfirmChannel();
    await pub.assertQueue('prio', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const lowCh = await (await connect('n2')).createChannel();
    await lowCh.prefetch(100);
    const low = await hold(lowCh, 'prio', { arguments: { 'x-priority': 1 } });
    const highCh = await (await connect('n3')).createChannel();
    await highCh.prefetch(6);
    const high = await hold(highCh, 'prio', { arguments: { 'x-priority': 10 } });
    await consumers(pub, 'prio', 2);

    // The high one takes its 6 first; round-robin would have given it every other message.
    await publish(pub, 'prio', bodies('p', 8));
    await eventually('8 delivered', () => Promise.resolve(low.got.length + high.got.length === 8));
    expect(high.got.map((g) => g.body)).toEqual(bodies('p', 6));
    expect(low.got.map((g) => g.body)).toEqual(bodies('p', 2, 6));

    // Room again on the high one: the next messages go there, not to the low one with room to spare.
    // (Acks from n3 and publishes from n1 race to the leader: publish once the acks took effect.)
    for (const g of high.got) highCh.ack(g.msg);
    await eventually('the high consumer\'s acks applied', async () => (await listQueuesOf(nodes.get('n1')!)).find((q) => q.name === 'prio')?.unacked === 2);
    await publish(pub, 'prio', bodies('p', 4, 8));
    await eventually('4 more with the high consumer', () => Promise.resolve(high.got.length === 10));
    expect(high.got.slice(6).map((g) => g.body)).toEqual(bodies('p', 4, 8));
    expect(low.got.length).toBe(2);
    for (const g of high.got.slice(6)) highCh.ack(g.msg);
    for (const g of low.got) lowCh.ack(g.msg);
  }, 60_000);

  it('x-death: a message rejected on one node and expired in a second queue goes round twice, each death counted, and arrives on another node with the headers RabbitMQ writes', async () => {
    const setup = await (await connect('n1')).createConfirmChannel();
    await setup.assertExchange('dlx.work', 'fanout', { durable: true });
    // work: rejected messages go to dlx.work -> parked; parked: expired ones back to work.
    await setup.assertQueue('work', { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': 'dlx.work' } });
    await setup.assertQueue('parked', {
      durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-message-ttl': 100, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'work' },
    });
    await setup.bindQueue('parked', 'dlx.work', '');
    const worker = await (await connect('n2')).createChannel();
    const arrivals: amqp.ConsumeMessage[] = [];
    await worker.consume('work', (m) => {
      if (m === null) return;
      arrivals.push(m);
      // Rejected twice, taken the third time.
      if (arrivals.length < 3) worker.nack(m, false, false);
      else worker.ack(m);
    });
    await publish(setup, 'work', ['job']);
    await eventually('the third arrival', () => Promise.resolve(arrivals.length === 3), 30_000);

    expect(arrivals[0]!.properties.headers?.['x-death']).toBeUndefined();
    const h = arrivals[2]!.properties.headers!;
    const deaths = h['x-death'] as unknown as Array<Record<string, unknown>>;
    // Newest first, one entry per {queue, reason}, each with its count and the first death's details.
    expect(deaths.map((d) => [d['queue'], d['reason'], d['count']])).toEqual([['parked', 'expired', 2], ['work', 'rejected', 2]]);
    expect(deaths[1]!['exchange']).toBe('');
    expect(deaths[1]!['routing-keys']).toEqual(['work']);
    expect(deaths[0]!['exchange']).toBe('dlx.work');
    expect(deaths[0]!['routing-keys']).toEqual(['work']);
    // An AMQP timestamp (seconds), amqplib's decoding of type T: the first death of each kind, just now.
    for (const d of deaths) {
      const t = d['time'] as { '!': string; value: number };
      expect(t['!']).toBe('timestamp');
      expect(Math.abs(t.value - Date.now() / 1000)).toBeLessThan(60);
    }
    expect([h['x-first-death-queue'], h['x-first-death-reason'], h['x-first-death-exchange']]).toEqual(['work', 'rejected', '']);
    expect([h['x-last-death-queue'], h['x-last-death-reason'], h['x-last-death-exchange']]).toEqual(['parked', 'expired', 'dlx.work']);
    expect(arrivals[2]!.content.toString()).toBe('job');
    await eventually('both queues empty', async () =>
      (await setup.checkQueue('work')).messageCount === 0 && (await setup.checkQueue('parked')).messageCount === 0);
  }, 60_000);
});
