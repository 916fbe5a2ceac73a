// Behaviour of the queue state machine, one rule per test, driven through apply().
import { describe, expect, it } from 'vitest';
import { counters, recount } from '../../src/queue/index.js';
import { Harness, deliveries, ofType, owner } from './harness.js';

describe('assignment', () => {
  it('delivers in publish order and refills a prefetch window on ack', () => {
    const h = new Harness();
    const ids = [h.publish(), h.publish(), h.publish()];
    const { key, effects } = h.consume('ch1', { prefetch: 2 });
    expect(deliveries(effects).map((d) => d.msgId)).toEqual([ids[0], ids[1]]);
    expect(deliveries(effects).every((d) => d.consumerKey === key && !d.redelivered)).toBe(true);
    const after = h.run({ type: 'settle', channel: 'ch1', msgIds: [ids[0]!] });
    expect(deliveries(after).map((d) => d.msgId)).toEqual([ids[2]]);
    expect(ofType(after, 'dropped')[0]?.msgIds).toEqual([ids[0]]);
  });

  it('round-robins between consumers of equal priority', () => {
    const h = new Harness();
    const a = h.consume('a').key;
    const b = h.consume('b').key;
    const effects = [1, 2, 3, 4].flatMap(() => h.run({ type: 'enqueue', sizeBytes: 1, priority: 0, ttlMs: null }));
    expect(deliveries(effects).map((d) => d.consumerKey)).toEqual([a, b, a, b]);
  });

  it('serves higher-priority consumers first while they have credit', () => {
    const h = new Harness();
    const low = h.consume('low').key;
    const high = h.consume('high', { priority: 5, prefetch: 2 }).key;
    const effects = [1, 2, 3].flatMap(() => h.run({ type: 'enqueue', sizeBytes: 1, priority: 0, ttlMs: null }));
    expect(deliveries(effects).map((d) => d.consumerKey)).toEqual([high, high, low]);
  });

  it('serves returned messages first, then the highest message priority', () => {
    const h = new Harness({ maxPriority: 9 });
    const low = h.publish({ priority: 1 });
    const high = h.publish({ priority: 7 });
    const clamped = h.publish({ priority: 200 });
    const { key, effects } = h.consume('c', { prefetch: 1 });
    expect(deliveries(effects).map((d) => d.msgId)).toEqual([clamped]);
    const back = h.run({ type: 'return', channel: 'c', msgIds: [clamped] });
    // the returned message comes back first, redelivered, with one failed delivery counted
    expect(deliveries(back)).toEqual([{ consumerKey: key, msgId: clamped, redelivered: true, deliveryCount: 1 }]);
    const next = h.run({ type: 'settle', channel: 'c', msgIds: [clamped] });
    expect(deliveries(next).map((d) => d.msgId)).toEqual([high]);
    const last = h.run({ type: 'settle', channel: 'c', msgIds: [high] });
    expect(deliveries(last).map((d) => d.msgId)).toEqual([low]);
  });

  it('ignores message priority when the queue has no x-max-priority', () => {
    const h = new Harness();
    const first = h.publish({ priority: 0 });
    h.publish({ priority: 9 });
    const { effects } = h.consume('c', { prefetch: 1 });
    expect(deliveries(effects).map((d) => d.msgId)).toEqual([first]);
  });

  it('granted credit: delivers only what credit commands allow', () => {
    const h = new Harness();
    [1, 2, 3].forEach(() => h.publish());
    const { key, effects } = h.consume('c', { granted: true, prefetch: 0 });
    expect(deliveries(effects)).toEqual([]);
    const one = h.run({ type: 'credit', consumerKey: key, credit: 2, mode: 'add' });
    expect(deliveries(one).length).toBe(2);
    // acks do not refill granted credit
    const acked = h.run({ type: 'settle', channel: 'c', msgIds: deliveries(one).map((d) => d.msgId) });
    expect(deliveries(acked)).toEqual([]);
    expect(deliveries(h.run({ type: 'credit', consumerKey: key, credit: 5, mode: 'set' })).length).toBe(1);
  });

  it('no-ack consumers settle on delivery and the body is released after it', () => {
    const h = new Harness();
    const id = h.publish();
    const { effects } = h.consume('c', { noAck: true });
    const types = effects.map((e) => e.type);
    expect(types.indexOf('deliver')).toBeLessThan(types.indexOf('dropped'));
    expect(ofType(effects, 'dropped')[0]?.msgIds).toEqual([id]);
    expect(counters(h.state)).toMatchObject({ ready: 0, unacked: 0 });
  });
});

describe('settle, return, discard, down', () => {
  it('ignores a settle from a channel that does not hold the message', () => {
    const h = new Harness();
    const id = h.publish();
    h.consume('a', { prefetch: 1 });
    expect(h.run({ type: 'settle', channel: 'b', msgIds: [id] })).toEqual([]);
    expect(counters(h.state).unacked).toBe(1);
  });

  it('returns every message of a closed channel to the next consumer, redelivered', () => {
    const h = new Harness();
    const ids = [h.publish(), h.publish()];
    h.consume('a', { prefetch: 5 });
    const b = h.consume('b', { prefetch: 5 }).key;
    const effects = h.run({ type: 'down', scope: 'channel', id: 'a' });
    expect(deliveries(effects)).toEqual(ids.map((msgId) => ({ consumerKey: b, msgId, redelivered: true, deliveryCount: 1 })));
    expect(counters(h.state).consumers).toBe(1);
  });

  it('a node going down takes all consumers of that node', () => {
    const h = new Harness();
    h.consume('a', { node: 'n2' });
    h.consume('b', { node: 'n2', connection: 'other' });
    h.consume('c', { node: 'n3' });
    h.run({ type: 'down', scope: 'node', id: 'n2' });
    expect(counters(h.state).consumers).toBe(1);
  });

  it('dead-letters a rejected message when the queue has a DLX, drops it otherwise', () => {
    for (const deadLetter of [true, false]) {
      const h = new Harness({ deadLetter });
      const id = h.publish();
      h.consume('c', { prefetch: 1 });
      const effects = h.run({ type: 'discard', channel: 'c', msgIds: [id] });
      if (deadLetter) expect(ofType(effects, 'deadLetter')).toEqual([{ type: 'deadLetter', msgIds: [id], reason: 'rejected' }]);
      else expect(ofType(effects, 'dropped')[0]?.msgIds).toEqual([id]);
    }
  });

  it('dead-letters a message past the delivery limit', () => {
    const h = new Harness({ deliveryLimit: 2, deadLetter: true });
    const id = h.publish();
    h.consume('c', { prefetch: 1 });
    expect(deliveries(h.run({ type: 'return', channel: 'c', msgIds: [id] }))[0]?.deliveryCount).toBe(1);
    expect(deliveries(h.run({ type: 'return', channel: 'c', msgIds: [id] }))[0]?.deliveryCount).toBe(2);
    const third = h.run({ type: 'return', channel: 'c', msgIds: [id] });
    expect(deliveries(third)).toEqual([]);
    expect(ofType(third, 'deadLetter')).toEqual([{ type: 'deadLetter', msgIds: [id], reason: 'delivery_limit' }]);
  });

  it('a cancelled consumer keeps its unacked messages until it acks them', () => {
    const h = new Harness();
    const id = h.publish();
    const { key } = h.consume('c', { prefetch: 1 });
    h.run({ type: 'cancel', consumerKey: key });
    h.publish();
    expect(counters(h.state)).toMatchObject({ consumers: 0, unacked: 1, ready: 1 });
    h.run({ type: 'settle', channel: 'c', msgIds: [id] });
    expect(counters(h.state)).toMatchObject({ unacked: 0, ready: 1 });
    expect(h.state.holders.size).toBe(0);
  });
});

describe('get and purge', () => {
  it('basic.get takes the next message and reports how many remain', () => {
    const h = new Harness();
    const first = h.publish();
    h.publish();
    const effects = h.run({ type: 'get', owner: owner('g'), noAck: false });
    expect(ofType(effects, 'getResult')).toEqual([{ type: 'getResult', msgId: first, redelivered: false, deliveryCount: 0, remaining: 1 }]);
    // an unacked get returns to the queue when its channel closes
    h.run({ type: 'down', scope: 'channel', id: 'g' });
    const again = h.run({ type: 'get', owner: owner('g2'), noAck: true });
    expect(ofType(again, 'getResult')[0]).toMatchObject({ msgId: first, redelivered: true });
  });

  it('get on an empty queue says empty', () => {
    const h = new Harness();
    expect(ofType(h.run({ type: 'get', owner: owner('g'), noAck: true }), 'getEmpty').length).toBe(1);
  });

  it('purge removes ready messages only', () => {
    const h = new Harness();
    h.publish();
    h.publish();
    h.publish();
    h.consume('c', { prefetch: 1 });
    const effects = h.run({ type: 'purge' });
    expect(ofType(effects, 'purged')).toEqual([{ type: 'purged', count: 2 }]);
    expect(counters(h.state)).toMatchObject({ ready: 0, unacked: 1 });
  });
});

describe('limits and time', () => {
  it('drop-head keeps the newest x-max-length messages and dead-letters the rest as maxlen', () => {
    const h = new Harness({ maxLength: 2, deadLetter: true });
    const ids = [h.publish(), h.publish()];
    const effects = h.run({ type: 'enqueue', sizeBytes: 10, priority: 0, ttlMs: null });
    expect(ofType(effects, 'deadLetter')).toEqual([{ type: 'deadLetter', msgIds: [ids[0]], reason: 'maxlen' }]);
    expect(counters(h.state).ready).toBe(2);
  });

  it('reject-publish refuses over x-max-length-bytes; reject-publish-dlx also dead-letters', () => {
    const h = new Harness({ maxLengthBytes: 25, overflow: 'reject-publish-dlx', deadLetter: true });
    h.publish({ size: 20 });
    const effects = h.run({ type: 'enqueue', sizeBytes: 10, priority: 0, ttlMs: null });
    expect(ofType(effects, 'enqueueResult')[0]?.outcome).toBe('rejected');
    expect(ofType(effects, 'deadLetter')[0]).toMatchObject({ msgIds: [h.index], reason: 'maxlen' });
    expect(counters(h.state)).toMatchObject({ ready: 1, readyBytes: 20 });
  });

  it('expires messages by the lower of queue and message TTL, asking for a timer', () => {
    const h = new Harness({ messageTtlMs: 1_000, deadLetter: true });
    const a = h.publish({ ttlMs: 100 });
    const b = h.publish();
    h.timeMs += 101;
    const tick = h.run({ type: 'tick' });
    expect(ofType(tick, 'deadLetter')).toEqual([{ type: 'deadLetter', msgIds: [a], reason: 'expired' }]);
    expect(ofType(tick, 'timer')[0]?.atMs).toBe(1_000 + 1_000 + 1);
    h.timeMs = 2_001;
    expect(ofType(h.run({ type: 'tick' }), 'deadLetter')[0]?.msgIds).toEqual([b]);
  });

  it('uses the largest time seen when the leader clock goes backwards', () => {
    const h = new Harness({ messageTtlMs: 100 });
    h.timeMs = 5_000;
    h.run({ type: 'touch' });
    h.timeMs = 1_000;
    const id = h.publish();
    h.timeMs = 5_050;
    expect(counters(h.state).ready).toBe(1);
    h.timeMs = 5_101;
    expect(ofType(h.run({ type: 'tick' }), 'dropped')[0]?.msgIds).toEqual([id]);
  });

  it('a consumer that holds a message past x-consumer-timeout is cancelled and its messages return', () => {
    const h = new Harness({ consumerTimeoutMs: 500 });
    const id = h.publish();
    const { key, effects } = h.consume('slow', { prefetch: 1 });
    expect(ofType(effects, 'timer')[0]?.atMs).toBe(1_000 + 501);
    const other = h.consume('other', { prefetch: 1 }).key;
    h.timeMs += 501;
    const tick = h.run({ type: 'tick' });
    expect(ofType(tick, 'consumerCancelled')).toEqual([{ type: 'consumerCancelled', consumerKey: key, reason: 'timeout', owner: owner('slow'), tag: `ctag-slow-${key}` }]);
    expect(deliveries(tick)).toEqual([{ consumerKey: other, msgId: id, redelivered: true, deliveryCount: 1 }]);
  });

  it('a delete cancels every consumer by owner and tag, though it clears the holders first', () => {
    const h = new Harness();
    const a = h.consume('a', { node: 'n2#inc', connection: 'c7' }).key;
    const b = h.consume('b').key;
    h.run({ type: 'get', owner: owner('g'), noAck: false });
    const effects = h.run({ type: 'delete' });
    expect(h.state.holders.size).toBe(0);
    expect(ofType(effects, 'consumerCancelled')).toEqual([
      { type: 'consumerCancelled', consumerKey: a, reason: 'deleted', owner: owner('a', 'c7', 'n2#inc'), tag: `ctag-a-${a}` },
      { type: 'consumerCancelled', consumerKey: b, reason: 'deleted', owner: owner('b'), tag: `ctag-b-${b}` },
    ]);
    const late = h.run({ type: 'register', owner: owner('late'), tag: 'late-tag', creditMode: 'auto', prefetch: 0, priority: 0, noAck: false });
    expect(ofType(late, 'consumerCancelled')).toEqual([{ type: 'consumerCancelled', consumerKey: h.index, reason: 'deleted', owner: owner('late'), tag: 'late-tag' }]);
  });

  it('x-expires deletes an unused queue, and consumers keep it alive', () => {
    const h = new Harness({ expiresMs: 1_000 });
    const { key } = h.consume('c');
    h.timeMs += 5_000;
    expect(ofType(h.run({ type: 'tick' }), 'queueExpired')).toEqual([]);
    const cancel = h.run({ type: 'cancel', consumerKey: key });
    expect(ofType(cancel, 'timer')[0]?.atMs).toBe(h.timeMs + 1_000);
    h.timeMs += 1_000;
    expect(ofType(h.run({ type: 'tick' }), 'queueExpired').length).toBe(1);
    expect(ofType(h.run({ type: 'enqueue', sizeBytes: 1, priority: 0, ttlMs: null }), 'enqueueResult')[0]?.outcome).toBe('rejected');
  });
});

describe('single active consumer', () => {
  it('only the first consumer gets messages; the next takes over when it goes', () => {
    const h = new Harness({ singleActiveConsumer: true });
    const a = h.consume('a', { prefetch: 10 }).key;
    const b = h.consume('b', { prefetch: 10 }).key;
    const effects = [1, 2].flatMap(() => h.run({ type: 'enqueue', sizeBytes: 1, priority: 0, ttlMs: null }));
    expect(deliveries(effects).map((d) => d.consumerKey)).toEqual([a, a]);
    const handed = h.run({ type: 'down', scope: 'channel', id: 'a' });
    expect(deliveries(handed).map((d) => d.consumerKey)).toEqual([b, b]);
  });

  it('a higher-priority consumer takes over once the active one has settled', () => {
    const h = new Harness({ singleActiveConsumer: true });
    h.consume('a', { prefetch: 1 });
    const id = h.publish();
    const hi = h.consume('hi', { prefetch: 1, priority: 10 }).key;
    const next = h.publish();
    expect(h.state.ready).toBe(1); // the old active one quiesces: no new messages for it
    const settled = h.run({ type: 'settle', channel: 'a', msgIds: [id] });
    expect(deliveries(settled)).toEqual([{ consumerKey: hi, msgId: next, redelivered: false, deliveryCount: 0 }]);
  });
});

describe('counters', () => {
  it('keeps ready/unacked/bytes/consumers equal to a full recount', () => {
    const h = new Harness({ maxPriority: 3 });
    h.publish({ size: 7, priority: 2 });
    h.publish({ size: 9 });
    h.consume('c', { prefetch: 1 });
    h.publish({ size: 11, priority: 3 });
    expect(counters(h.state)).toEqual(recount(h.state));
    expect(counters(h.state)).toEqual({ ready: 2, readyBytes: 20, unacked: 1, unackedBytes: 7, consumers: 1 });
  });
});

describe('config changes (policies)', () => {
  it('lowering x-max-length drops from the head at once; raising x-max-priority keeps order', () => {
    const h = new Harness({ deadLetter: true });
    const ids = [h.publish({ priority: 5 }), h.publish({ priority: 1 }), h.publish({ priority: 9 })];
    const lowered = h.run({ type: 'config', config: { ...h.state.config, maxLength: 2 } });
    expect(ofType(lowered, 'deadLetter')).toEqual([{ type: 'deadLetter', msgIds: [ids[0]], reason: 'maxlen' }]);
    h.run({ type: 'config', config: { ...h.state.config, maxPriority: 9 } });
    // messages enqueued before priorities existed keep their level-0 FIFO order
    const { effects } = h.consume('c');
    expect(deliveries(effects).map((d) => d.msgId)).toEqual([ids[1], ids[2]]);
  });
});
