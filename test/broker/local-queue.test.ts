// The local queue end to end through the QueueBackend interface: real bodies, sinks, events,
// dead-lettering with x-death; time comes from a hand-moved clock and timers fired by the test.
import { describe, expect, it } from 'vitest';
import { LocalQueue, type Timers } from '../../src/broker/local-queue.js';
import type { DeadLetteredMessage, Delivery, QueueEvent, StoredMessage } from '../../src/broker/queue-backend.js';
import { plainFieldValues } from '../../src/queue/dead-letter.js';
import { defaultQueueConfig, type QueueConfig } from '../../src/queue/index.js';

class ManualTimers implements Timers {
  private next: { fn: () => void; atMs: number } | undefined;
  constructor(private readonly clock: { nowMs(): number }) {}
  set(fn: () => void, delayMs: number): unknown {
    this.next = { fn, atMs: this.clock.nowMs() + delayMs };
    return this.next;
  }
  clear(handle: unknown): void {
    if (this.next === handle) this.next = undefined;
  }
  get dueAtMs(): number | undefined {
    return this.next?.atMs;
  }
  fire(): void {
    const t = this.next;
    this.next = undefined;
    t?.fn();
  }
}

function setup(config: Partial<QueueConfig> = {}, dlx: string | null = null) {
  const clock = { t: 10_000, nowMs(): number { return this.t; } };
  const timers = new ManualTimers(clock);
  const deadLettered: DeadLetteredMessage[] = [];
  const events: QueueEvent[] = [];
  const q = new LocalQueue({
    name: 'q1', config: { ...defaultQueueConfig, ...config }, clock, timers,
    deadLetterExchange: dlx, deadLetterRoutingKey: null, onDeadLetter: (m) => deadLettered.push(m), fieldValues: plainFieldValues,
  });
  q.onEvent((e) => events.push(e));
  return { q, clock, timers, deadLettered, events };
}

const msg = (text: string, properties: StoredMessage['properties'] = {}): StoredMessage => ({
  exchange: 'ex', routingKey: 'rk', properties, body: Buffer.from(text),
});
const owner = (channel: string) => ({ node: 'n1', connection: `conn-${channel}`, channel });
const consumeReq = (channel: string, prefetch = 0) => ({ owner: owner(channel), consumerTag: `tag-${channel}`, noAck: false, creditMode: 'auto' as const, prefetch, priority: 0 });

describe('local queue', () => {
  it('delivers bodies in order, and an ack made inside the sink keeps that order', async () => {
    const { q } = setup();
    for (const t of ['a', 'b', 'c']) expect(await q.enqueue(msg(t))).toBe('ok');
    const got: string[] = [];
    await q.consume(consumeReq('ch1', 1), (d) => {
      got.push(d.message.body.toString());
      void q.settle('ch1', [d.msgId]);
    });
    expect(got).toEqual(['a', 'b', 'c']);
    expect(q.stats()).toEqual({ messagesReady: 0, messagesUnacked: 0, bytesReady: 0, bytesUnacked: 0, consumers: 1 });
    expect(q.bodiesHeld).toBe(0);
  });

  it('redelivers a closed channel\'s messages to another consumer with redelivered and a count', async () => {
    const { q } = setup();
    await q.enqueue(msg('x'));
    const first: Delivery[] = [];
    const second: Delivery[] = [];
    await q.consume(consumeReq('a', 10), (d) => first.push(d));
    await q.consume(consumeReq('b', 10), (d) => second.push(d));
    await q.down('connection', 'conn-a');
    expect(first.map((d) => d.redelivered)).toEqual([false]);
    expect(second.map((d) => [d.message.body.toString(), d.redelivered, d.deliveryCount])).toEqual([['x', true, 1]]);
  });

  it('expires a message by its expiration property and dead-letters it with x-death', async () => {
    const { q, clock, timers, deadLettered } = setup({}, 'dlx');
    await q.enqueue(msg('old', { expiration: '100', headers: { h: 1 } }));
    expect(timers.dueAtMs).toBe(10_101);
    clock.t = 10_101;
    timers.fire();
    await q.purge(); // runs after the tick: the queue has applied it
    expect(deadLettered.length).toBe(1);
    const dead = deadLettered[0]!;
    expect(dead).toMatchObject({ queue: 'q1', reason: 'expired', exchange: 'dlx', routingKeys: ['rk'] });
    expect(dead.message.properties.expiration).toBeUndefined();
    expect(dead.message.properties.headers?.['x-death']).toEqual([
      { count: 1, reason: 'expired', queue: 'q1', time: 10, exchange: 'ex', 'routing-keys': ['rk'], 'original-expiration': '100' },
    ]);
    expect(dead.message.body.toString()).toBe('old');
    expect(q.bodiesHeld).toBe(0);
  });

  it('nacks publishes past x-max-length with reject-publish', async () => {
    const { q } = setup({ maxLength: 1, overflow: 'reject-publish' });
    expect(await q.enqueue(msg('1'))).toBe('ok');
    expect(await q.enqueue(msg('2'))).toBe('rejected');
    expect(q.stats().messagesReady).toBe(1);
    expect(q.bodiesHeld).toBe(1);
  });

  it('basic.get returns the message and the count left; an unacked get returns on requeue', async () => {
    const { q } = setup();
    await q.enqueue(msg('1'));
    await q.enqueue(msg('2'));
    const got = await q.get(owner('g'), false);
    expect(got).toMatchObject({ messageCount: 1, redelivered: false });
    expect(got?.message.body.toString()).toBe('1');
    await q.requeue('g', [got!.msgId]);
    const again = await q.get(owner('g'), true);
    expect(again).toMatchObject({ redelivered: true, deliveryCount: 1 });
    expect(again?.message.body.toString()).toBe('1');
    await q.get(owner('g'), true);
    expect(await q.get(owner('g'), true)).toBeNull();
    expect(q.bodiesHeld).toBe(0);
  });

  it('cancels a consumer stuck past x-consumer-timeout with an event and hands its message on', async () => {
    const { q, clock, timers, events } = setup({ consumerTimeoutMs: 1_000 });
    await q.enqueue(msg('m'));
    await q.consume(consumeReq('slow', 1), () => {});
    const others: Delivery[] = [];
    await q.consume(consumeReq('fast', 1), (d) => others.push(d));
    clock.t += 1_001;
    timers.fire();
    await q.purge();
    expect(events).toEqual([{ type: 'consumerCancelled', channel: 'slow', consumerTag: 'tag-slow', reason: 'timeout' }]);
    expect(others.map((d) => [d.message.body.toString(), d.redelivered])).toEqual([['m', true]]);
  });

  it('an unused queue with x-expires is deleted when its timer fires', async () => {
    const { q, clock, timers, events } = setup({ expiresMs: 5_000 });
    await q.enqueue(msg('m'));
    expect(timers.dueAtMs).toBe(15_000);
    clock.t = 15_000;
    timers.fire();
    await q.purge();
    expect(events).toEqual([{ type: 'queueDeleted', reason: 'expired' }]);
    expect(await q.enqueue(msg('late'))).toBe('rejected');
  });

  it('delete cancels consumers and reports the ready count', async () => {
    const { q, events } = setup();
    await q.enqueue(msg('1'));
    await q.enqueue(msg('2'));
    await q.consume(consumeReq('c', 1), () => {});
    expect(await q.delete()).toBe(1);
    expect(events).toEqual([
      { type: 'consumerCancelled', channel: 'c', consumerTag: 'tag-c', reason: 'deleted' },
      { type: 'queueDeleted', reason: 'deleted' },
    ]);
  });
});
