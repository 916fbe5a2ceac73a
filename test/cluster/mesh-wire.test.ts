// The mesh's bytes between nodes: forwarded calls, answers with counters, deliveries and cancels
// come back as they went out (message bodies and properties byte for byte); a cut payload is an error.

import { describe, expect, it } from 'vitest';
import type { StoredMessage } from '../../src/broker/queue-backend.js';
import {
  MeshWireError, decodeAnswer, decodeCall, decodeCancel, decodeDelivery, decodeHello, encodeAnswer, encodeCall,
  encodeCancel, encodeDelivery, encodeHello,
} from '../../src/cluster/queue-wire.js';
import { newTrace, stamp, Stage } from '../../src/lib/trace.js';

const message: StoredMessage = {
  exchange: 'orders', routingKey: 'eu.new', properties: { contentType: 'application/json', deliveryMode: 2, correlationId: 'é-1' },
  body: Buffer.from('{"id":42}'),
};
const stats = { messagesReady: 3, messagesUnacked: 2, bytesReady: 300, bytesUnacked: 200, consumers: 1 };

describe('mesh wire', () => {
  it('carries a forwarded enqueue, register and settle with the caller incarnation', () => {
    const calls = [
      { vhost: '/', queue: 'q', incarnation: 'inc-1', command: { type: 'enqueue' as const, priority: 3, ttlMs: 500, message } },
      { vhost: 'v', queue: 'jobs', incarnation: 'inc-2', command: {
        type: 'register' as const, owner: { node: 'n3', connection: 'c7', channel: 'n3/c7/1' }, tag: 'ctag', creditMode: 'auto' as const,
        prefetch: 10, priority: -1, noAck: false,
      } },
      { vhost: '/', queue: 'q', incarnation: 'inc-1', command: { type: 'settle' as const, channel: 'n3/c7/1', msgIds: [5, 9, 2 ** 40] } },
    ];
    for (const c of calls) {
      const back = decodeCall(encodeCall(c));
      expect({ ...back, command: { ...back.command, ...('message' in back.command ? { message: { ...back.command.message, rawProperties: undefined } } : {}) } })
        .toEqual({ ...c, command: { ...c.command, ...('message' in c.command ? { message: { ...c.command.message, rawProperties: undefined } } : {}) } });
    }
    const enq = decodeCall(encodeCall(calls[0]!)).command;
    expect(enq.type === 'enqueue' && enq.message.body.toString()).toBe('{"id":42}');
    expect(enq.type === 'enqueue' && enq.message.properties['correlationId']).toBe('é-1');
  });

  it('answers every result kind with the queue counters', () => {
    const results = [
      { kind: 'void' as const }, { kind: 'enqueue' as const, outcome: 'rejected' as const }, { kind: 'count' as const, count: 17 },
      { kind: 'get' as const, response: null },
    ];
    for (const result of results) expect(decodeAnswer(encodeAnswer({ result, stats }))).toEqual({ result, stats });
    const got = decodeAnswer(encodeAnswer({ result: { kind: 'get', response: { msgId: 7, message, redelivered: true, deliveryCount: 2, messageCount: 4 } }, stats }));
    expect(got.result.kind === 'get' && got.result.response?.message.body.toString()).toBe('{"id":42}');
    expect(got.result.kind === 'get' && got.result.response?.redelivered).toBe(true);
  });

  it('streams deliveries and cancels to the consumer node, and refuses a cut payload', () => {
    const d = { vhost: '/', queue: 'q', incarnation: 'inc', channel: 'n2/c1/1', consumerTag: 't', msgId: 99, redelivered: false, deliveryCount: 0, message };
    const back = decodeDelivery(encodeDelivery(d));
    expect({ ...back, message: null }).toEqual({ ...d, message: null });
    expect(back.message.routingKey).toBe('eu.new');
    const c = { vhost: '/', queue: 'q', incarnation: 'inc', channel: 'n2/c1/1', consumerTag: 't', reason: 'deleted' as const };
    expect(decodeCancel(encodeCancel(c))).toEqual(c);
    expect(decodeHello(encodeHello('abc-123'))).toBe('abc-123');
    const bytes = encodeDelivery(d);
    expect(() => decodeDelivery(bytes.subarray(0, 20))).toThrow(MeshWireError);
    expect(() => decodeAnswer(encodeAnswer({ result: { kind: 'void' }, stats }).subarray(0, 10))).toThrow(MeshWireError);
  });

  it('carries a sampled message\'s trace on its call, answer and delivery, after the fields older nodes read', () => {
    const trace = newTrace(1_700_000_000_000.25);
    trace.queue = 'q';
    stamp(trace, Stage.forwarded, 1_700_000_000_001.5);
    const call = { vhost: '/', queue: 'q', incarnation: 'i', command: { type: 'enqueue' as const, priority: 0, ttlMs: null, message } };
    const traced = encodeCall({ ...call, trace });
    expect([...decodeCall(traced).trace!.at]).toEqual([...trace.at]);
    expect(decodeCall(encodeCall(call)).trace).toBeUndefined();
    // What a node without traces reads first is byte for byte what it reads from an untraced call.
    expect(traced.subarray(0, encodeCall(call).length)).toEqual(encodeCall(call));
    stamp(trace, Stage.applied, 1_700_000_000_009);
    const answer = decodeAnswer(encodeAnswer({ result: { kind: 'enqueue', outcome: 'ok' }, stats, trace }));
    expect(answer.result).toEqual({ kind: 'enqueue', outcome: 'ok' });
    expect(answer.trace?.at[Stage.applied]).toBe(1_700_000_000_009);
    const d = { vhost: '/', queue: 'q', incarnation: 'inc', channel: 'n2/c1/1', consumerTag: 't', msgId: 9, redelivered: false, deliveryCount: 0, message };
    expect(decodeDelivery(encodeDelivery({ ...d, trace })).trace?.queue).toBe('q');
    expect(decodeDelivery(encodeDelivery(d)).trace).toBeUndefined();
  });
});
