// Unit tests of the channel's bookkeeping: publisher confirm coalescing (and what it counts for metrics) and delivery tags.

import { describe, expect, it } from 'vitest';
import { ConfirmTracker } from '../../src/broker/confirms.js';
import { createBrokerCounters } from '../../src/broker/counters.js';
import { UnackedTags } from '../../src/broker/unacked.js';
import type { QueueBackend } from '../../src/broker/queue-backend.js';

describe('publisher confirms', () => {
  it('coalesces acks below the lowest outstanding seqno into one multiple ack', () => {
    const t = new ConfirmTracker();
    const seqs = [t.publish(1), t.publish(1), t.publish(1), t.publish(1)];
    expect(seqs).toEqual([1, 2, 3, 4]);
    t.settle(1, true);
    t.settle(2, true);
    t.settle(4, true);
    // 3 is still outstanding: 1-2 go as one multiple ack, 4 alone.
    expect(t.flush()).toEqual([
      { kind: 'ack', deliveryTag: 2, multiple: true },
      { kind: 'ack', deliveryTag: 4, multiple: false },
    ]);
    t.settle(3, true);
    expect(t.flush()).toEqual([{ kind: 'ack', deliveryTag: 3, multiple: false }]);
    expect(t.flush()).toEqual([]);
  });

  it('nacks a publish refused by any of its queues, once, before the acks', () => {
    const t = new ConfirmTracker();
    t.publish(2);
    t.publish(0); // unroutable: confirmed at once
    t.settle(1, true);
    t.settle(1, false);
    t.settle(1, true); // late answers for a resolved seqno change nothing
    expect(t.flush()).toEqual([
      { kind: 'nack', deliveryTag: 1, multiple: false },
      { kind: 'ack', deliveryTag: 2, multiple: false },
    ]);
    expect(t.outstanding).toBe(0);
  });
});

describe('confirm counters', () => {
  it('counts each confirmed and nacked message once, however coalesced, and times each ack from its publish', () => {
    const counters = createBrokerCounters();
    const t = new ConfirmTracker(counters);
    const seqs = [t.publish(1, 100), t.publish(1, 110), t.publish(1, 120), t.publish(0, 130)];
    t.settle(seqs[0]!, true);
    t.settle(seqs[1]!, true);
    t.settle(seqs[2]!, false);
    const frames = t.flush(150);
    expect(frames).toEqual([{ kind: 'nack', deliveryTag: 3, multiple: false }, { kind: 'ack', deliveryTag: 4, multiple: true }]);
    expect([counters.messagesConfirmed, counters.messagesNacked]).toEqual([3, 1]);
    expect(counters.confirmSeconds.count).toBe(3);
    expect(counters.confirmSeconds.sum).toBeCloseTo((50 + 40 + 20) / 1000);
    expect(t.flush(200)).toEqual([]);
    expect(counters.messagesConfirmed).toBe(3);
  });
});

describe('delivery tags', () => {
  const q = { name: 'q' } as QueueBackend;
  const entry = (msgId: number) => ({ queue: q, msgId, consumerTag: 'c', global: false, trace: undefined });

  it('numbers deliveries from 1, no-ack ones included, and takes single and multiple tags', () => {
    const t = new UnackedTags();
    expect([t.assign(entry(10)), t.assign(null), t.assign(entry(12)), t.assign(entry(13))]).toEqual([1, 2, 3, 4]);
    expect(t.take(3, false)?.map((e) => e.msgId)).toEqual([12]);
    expect(t.take(3, false)).toBeNull(); // double ack: unknown tag
    expect(t.take(2, true)).toBeNull(); // the named tag itself must be outstanding
    expect(t.take(4, true)?.map((e) => e.msgId)).toEqual([10, 13]);
    expect(t.size).toBe(0);
  });

  it('takes everything with tag 0 and multiple', () => {
    const t = new UnackedTags();
    t.assign(entry(1));
    t.assign(entry(2));
    expect(t.take(0, true)?.length).toBe(2);
  });
});
