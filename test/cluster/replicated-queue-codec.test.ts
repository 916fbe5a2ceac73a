// Enqueue log entries with and without a caller identity: both decode (entries written before the
// identity existed stay readable), bodies read back from either, and a forwarded call carries it.
import { describe, expect, it } from 'vitest';
import { decodeEnqueuedMessage, decodeEntry, encodeEntry, QueueOp } from '../../src/cluster/replicated-queue-codec.js';
import { decodeCall, encodeCall } from '../../src/cluster/queue-wire.js';
import type { StoredMessage } from '../../src/broker/queue-backend.js';

const message: StoredMessage = { exchange: 'ex', routingKey: 'rk', properties: { contentType: 'text/plain', priority: 3 }, body: Buffer.from('hello') };
const header = { timeMs: 1_700_000_000_000, proposer: 7, seq: 9 };

describe('replicated queue entry codec', () => {
  it('an enqueue without identity is the original op and decodes without one', () => {
    const data = encodeEntry({ type: 'enqueue', priority: 3, ttlMs: null, message }, header);
    expect(data[0]).toBe(QueueOp.enqueue);
    const { header: h, command } = decodeEntry(data);
    expect(h).toEqual(header);
    expect(command).not.toHaveProperty('dedup');
    expect(command).toMatchObject({ type: 'enqueue', priority: 3, ttlMs: null });
    expect(Buffer.from(decodeEnqueuedMessage(data)!.body).toString()).toBe('hello');
  });

  it('an enqueue with identity round-trips it, and its body reads back the same way', () => {
    const dedup = { origin: 'Zk3-x_origin', seq: 2 ** 40 + 3, floor: 2 ** 40 - 5 };
    const data = encodeEntry({ type: 'enqueue', priority: 0, ttlMs: 1500, message, dedup }, header);
    expect(data[0]).toBe(QueueOp.enqueueDedup);
    const { command } = decodeEntry(data);
    expect(command).toMatchObject({ type: 'enqueue', ttlMs: 1500, dedup });
    if (command.type !== 'enqueue') throw new Error('not an enqueue');
    expect(Buffer.from(command.message.body).toString()).toBe('hello');
    const back = decodeEnqueuedMessage(data)!;
    expect([back.exchange, back.routingKey, back.properties.contentType, Buffer.from(back.body).toString()]).toEqual(['ex', 'rk', 'text/plain', 'hello']);
  });

  it('a call forwarded to the leader keeps the identity, so its retries carry the same one', () => {
    const dedup = { origin: 'o1', seq: 41, floor: 40 };
    const call = decodeCall(encodeCall({ vhost: '/', queue: 'q', incarnation: 'inc', command: { type: 'enqueue', priority: 0, ttlMs: null, message, dedup } }));
    expect(call.command).toMatchObject({ type: 'enqueue', dedup });
  });
});
