// The queue's cumulative counts that /metrics reports per queue: accepted enqueues, deliveries
// (and redeliveries), acks and dead-letters, counted by the state machine itself so every replica
// agrees; duplicates of a retried enqueue, rejected enqueues and no-ack deliveries' settles are not
// counted as what they are not.
import { describe, expect, it } from 'vitest';
import { Harness } from './harness.js';

describe('queue totals', () => {
  it('counts published, delivered, redelivered and acked messages', () => {
    const h = new Harness();
    const ids = [h.publish(), h.publish(), h.publish()];
    h.consume('c', { prefetch: 10 });
    h.run({ type: 'settle', channel: 'c', msgIds: [ids[0]!] });
    h.run({ type: 'return', channel: 'c', msgIds: [ids[1]!] });
    // ids[1] comes straight back to the same consumer: a redelivery.
    expect(h.state.totals).toEqual({ published: 3, delivered: 4, redelivered: 1, acked: 1, deadLettered: 0 });
    h.run({ type: 'settle', channel: 'c', msgIds: [ids[1]!, ids[2]!, 999] });
    expect(h.state.totals.acked).toBe(3);
  });

  it('does not count a retried duplicate or a rejected enqueue as published', () => {
    const h = new Harness({ maxLength: 1, overflow: 'reject-publish' });
    const dedup = { origin: 'o', seq: 1, floor: 1 };
    h.run({ type: 'enqueue', sizeBytes: 1, priority: 0, ttlMs: null, dedup });
    h.run({ type: 'enqueue', sizeBytes: 1, priority: 0, ttlMs: null, dedup });
    h.publish();
    expect(h.state.totals.published).toBe(1);
  });

  it('counts dead-lettered messages (rejected, over the limit), not settles of no-ack deliveries', () => {
    const h = new Harness({ deadLetter: true, maxLength: 1 });
    h.publish();
    h.publish(); // drop-head: the first goes to the DLX
    expect(h.state.totals.deadLettered).toBe(1);
    const id = h.publish();
    h.consume('c', { prefetch: 1 });
    h.run({ type: 'discard', channel: 'c', msgIds: [id] });
    expect(h.state.totals.deadLettered).toBe(3);
    h.consume('auto', { noAck: true });
    h.publish();
    expect(h.state.totals).toMatchObject({ delivered: 2, acked: 0 });
  });
});
