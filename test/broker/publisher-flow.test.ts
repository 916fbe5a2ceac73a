// Flow-control decisions against a real local queue: which publishes put a connection into flow,
// the hysteresis between the high and low marks, and when a stuck queue counts as stalled.
import { describe, expect, it } from 'vitest';
import { limits } from '../../src/broker/limits.js';
import { LocalQueue, type Timers } from '../../src/broker/local-queue.js';
import { PublisherFlow } from '../../src/broker/publisher-flow.js';
import type { Delivery, MsgId, StoredMessage } from '../../src/broker/queue-backend.js';
import { plainFieldValues } from '../../src/queue/dead-letter.js';
import { defaultQueueConfig } from '../../src/queue/index.js';

const noTimers: Timers = { set: () => undefined, clear: () => {} };
const owner = { node: 'n', connection: 'c2', channel: 'n/c2/1' };
const message: StoredMessage = { exchange: '', routingKey: 'q', properties: {}, body: Buffer.from('x') };
const notConsumedHere = (): boolean => false;

function queue(): LocalQueue {
  return new LocalQueue({
    name: 'q', config: defaultQueueConfig, clock: { nowMs: () => 0 }, timers: noTimers,
    deadLetterExchange: null, deadLetterRoutingKey: null, onDeadLetter: () => {}, fieldValues: plainFieldValues,
  });
}

async function fill(q: LocalQueue, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await q.enqueue(message);
}

describe('PublisherFlow', () => {
  it('enters flow once ready messages pass the high mark with a consumer, and leaves at the low mark', async () => {
    const q = queue();
    const delivered: Delivery[] = [];
    await q.consume({ owner, consumerTag: 't', noAck: false, creditMode: 'auto', prefetch: 1, priority: 0 }, (d) => delivered.push(d));
    const flow = new PublisherFlow();
    await fill(q, limits.flowReadyHighMessages + 1); // one in flight, the rest ready: at the mark
    expect(flow.published(q, notConsumedHere)).toBe(false);
    await q.enqueue(message);
    expect(flow.published(q, notConsumedHere)).toBe(true);
    expect(flow.active).toBe(true);
    expect(flow.published(q, notConsumedHere)).toBe(false); // already holding: not entered again
    expect(flow.recheck()).toBe('stalled');

    // Acks below the high mark but above the low mark keep the connection in flow.
    const ack = async (): Promise<void> => q.settle(owner.channel, [delivered.shift()!.msgId as MsgId]);
    await ack();
    expect(flow.recheck()).toBe('moving');
    expect(flow.recheck()).toBe('stalled');
    while (q.stats().messagesReady > limits.flowReadyLowMessages + 1) await ack();
    expect(flow.recheck()).not.toBe('drained');
    await ack();
    expect(flow.recheck()).toBe('drained');
    expect(flow.active).toBe(false);
    expect(flow.pauses).toBe(1);
  });

  it('never holds for a queue without consumers, or one consumed on the same connection', async () => {
    const q = queue();
    await fill(q, limits.flowReadyHighMessages * 2);
    const flow = new PublisherFlow();
    expect(flow.published(q, notConsumedHere)).toBe(false);
    await q.consume({ owner, consumerTag: 't', noAck: false, creditMode: 'auto', prefetch: 1, priority: 0 }, () => {});
    expect(flow.published(q, () => true)).toBe(false);
    expect(flow.published(q, notConsumedHere)).toBe(true);
  });

  it('lets go when the holding queue loses its consumers (its backlog is legitimate again)', async () => {
    const q = queue();
    await q.consume({ owner, consumerTag: 't', noAck: false, creditMode: 'auto', prefetch: 1, priority: 0 }, () => {});
    await fill(q, limits.flowReadyHighMessages * 2);
    const flow = new PublisherFlow();
    expect(flow.published(q, notConsumedHere)).toBe(true);
    await q.cancel(owner.channel, 't');
    expect(flow.recheck()).toBe('drained');
  });
});
