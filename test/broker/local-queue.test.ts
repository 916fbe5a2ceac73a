// The local queue end to end through the QueueBackend interface: real bodies, sinks, events,
// dead-lettering with x-death; time comes from a hand-moved clock and timers fired by the test.
import fc from 'fast-check';
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

describe('local queue under random use', () => {
  type Step =
    | { t: 'publish'; ttl: boolean }
    | { t: 'consume'; ch: number; prefetch: number }
    | { t: 'ack' | 'nack' | 'reject'; ch: number }
    | { t: 'get'; ch: number; noAck: boolean }
    | { t: 'down'; ch: number }
    | { t: 'purge' }
    | { t: 'time'; ms: number };
  const ch = fc.integer({ min: 0, max: 2 });
  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ t: fc.constant('publish' as const), ttl: fc.boolean() }),
    fc.record({ t: fc.constant('consume' as const), ch, prefetch: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ t: fc.constantFrom('ack' as const, 'nack' as const, 'reject' as const), ch }),
    fc.record({ t: fc.constant('get' as const), ch, noAck: fc.boolean() }),
    fc.record({ t: fc.constant('down' as const), ch }),
    fc.record({ t: fc.constant('purge' as const) }),
    fc.record({ t: fc.constant('time' as const), ms: fc.integer({ min: 0, max: 200 }) }),
  );

  it('holds exactly the bodies of live messages and hands out each with its own body', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { maxLength: 60 }), fc.boolean(), async (steps, dlx) => {
        const { q, clock, timers } = setup({ deliveryLimit: 2, maxLength: 4 }, dlx ? 'dlx' : null);
        const bodyOf = new Map<number, string>();
        const held = new Map<string, number[]>();
        let published = 0;
        let tag = 0;
        const seen = (channel: string, msgId: number, body: string, keep: boolean): void => {
          expect(bodyOf.get(msgId) ?? body).toBe(body);
          bodyOf.set(msgId, body);
          if (keep) held.set(channel, [...(held.get(channel) ?? []), msgId]);
        };
        for (const s of steps) {
          const channel = `ch${'ch' in s ? s.ch : 0}`;
          if (s.t === 'publish') await q.enqueue(msg(`m${++published}`, s.ttl ? { expiration: '100' } : {}));
          if (s.t === 'consume') {
            const req = { ...consumeReq(channel, s.prefetch), consumerTag: `t${++tag}` };
            await q.consume(req, (d) => seen(channel, d.msgId, d.message.body.toString(), true));
          }
          if (s.t === 'ack' || s.t === 'nack' || s.t === 'reject') {
            const ids = held.get(channel) ?? [];
            held.set(channel, []);
            if (s.t === 'ack') await q.settle(channel, ids);
            else if (s.t === 'nack') await q.requeue(channel, ids);
            else await q.discard(channel, ids);
          }
          if (s.t === 'get') {
            const got = await q.get(owner(channel), s.noAck);
            if (got !== null) seen(channel, got.msgId, got.message.body.toString(), !s.noAck);
          }
          if (s.t === 'down') {
            held.set(channel, []);
            await q.down('channel', channel);
          }
          if (s.t === 'purge') await q.purge();
          if (s.t === 'time') {
            clock.t += s.ms;
            if (timers.dueAtMs !== undefined && timers.dueAtMs <= clock.t) timers.fire();
          }
          const stats = q.stats();
          expect(q.bodiesHeld).toBe(stats.messagesReady + stats.messagesUnacked);
        }
      }),
      { numRuns: 100, seed: 31 },
    );
  });
});
