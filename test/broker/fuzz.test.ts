// Property test: after a valid handshake, random, mutated and out-of-order frames never crash the
// node and never leak a connection; the node keeps serving a well-behaved client throughout.

import amqp from 'amqplib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerServer } from '../../src/broker/server.js';
import { encodeBasicProperties, encodeContentFrames, encodeMethodFrame, type AmqpMethod } from '../../src/amqp/index.js';
import { startTestBroker, until, url } from './helpers.js';
import { RawClient, rawFrame } from './raw-client.js';

let broker: BrokerServer;
beforeAll(async () => {
  broker = await startTestBroker();
});
afterAll(async () => {
  await broker.close();
});

const name = fc.constantFrom('', 'q', 'x', 'amq.direct', 'amq.gen-1', 'amq.rabbitmq.reply-to', 'amq.topic');
const small = fc.integer({ min: 0, max: 5 });
const table = fc.constantFrom({}, { 'x-max-length': { tag: 'b', value: 1 } }, { 'x-match': { tag: 'S', value: Buffer.from('any') } }, { 'x-overflow': { tag: 'I', value: 3 } });

const method: fc.Arbitrary<AmqpMethod> = fc.oneof(
  fc.constant<AmqpMethod>({ name: 'channel.open', outOfBand: '' }),
  fc.record({ replyCode: fc.constant(200) }).map((): AmqpMethod => ({ name: 'channel.close', replyCode: 200, replyText: '', classId: 0, methodId: 0 })),
  fc.constant<AmqpMethod>({ name: 'channel.close-ok' }),
  fc.tuple(name, fc.boolean(), fc.boolean(), fc.boolean(), table).map(([q, passive, exclusive, autoDelete, args]): AmqpMethod => ({ name: 'queue.declare', ticket: 0, queue: q, passive, durable: false, exclusive, autoDelete, nowait: false, arguments: args })),
  fc.tuple(name, fc.constantFrom('direct', 'fanout', 'topic', 'headers', 'bogus')).map(([x, type]): AmqpMethod => ({ name: 'exchange.declare', ticket: 0, exchange: x, type, passive: false, durable: false, autoDelete: false, internal: false, nowait: false, arguments: {} })),
  fc.tuple(name, name, name, table).map(([q, x, k, args]): AmqpMethod => ({ name: 'queue.bind', ticket: 0, queue: q, exchange: x, routingKey: k, nowait: false, arguments: args })),
  fc.tuple(name, fc.boolean()).map(([q, noAck]): AmqpMethod => ({ name: 'basic.consume', ticket: 0, queue: q, consumerTag: '', noLocal: false, noAck, exclusive: false, nowait: false, arguments: {} })),
  fc.tuple(small, fc.boolean()).map(([tag, multiple]): AmqpMethod => ({ name: 'basic.ack', deliveryTag: tag, multiple })),
  fc.tuple(small, fc.boolean(), fc.boolean()).map(([tag, multiple, requeue]): AmqpMethod => ({ name: 'basic.nack', deliveryTag: tag, multiple, requeue })),
  fc.tuple(name, fc.boolean()).map(([q, noAck]): AmqpMethod => ({ name: 'basic.get', ticket: 0, queue: q, noAck })),
  fc.tuple(small, fc.boolean()).map(([n, global]): AmqpMethod => ({ name: 'basic.qos', prefetchSize: 0, prefetchCount: n, global })),
  fc.constantFrom<AmqpMethod>({ name: 'confirm.select', nowait: false }, { name: 'tx.select' }, { name: 'tx.commit' }, { name: 'tx.rollback' }, { name: 'basic.recover', requeue: true }),
  fc.tuple(name, fc.boolean(), fc.boolean()).map(([q, ifUnused, ifEmpty]): AmqpMethod => ({ name: 'queue.delete', ticket: 0, queue: q, ifUnused, ifEmpty, nowait: false })),
);

/** One piece of input: a valid method, a publish with content, a mutated or a random frame, raw bytes. */
const piece: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.integer({ min: 0, max: 3 }), method).map(([ch, m]) => encodeMethodFrame(ch, m)) },
  { weight: 3, arbitrary: fc.tuple(fc.integer({ min: 1, max: 2 }), name, name, fc.boolean(), fc.uint8Array({ maxLength: 300 })).map(([ch, x, k, mandatory, body]) =>
    Buffer.concat(encodeContentFrames(ch, { name: 'basic.publish', ticket: 0, exchange: x, routingKey: k, mandatory, immediate: false }, encodeBasicProperties({ headers: { CC: { tag: 'A', value: [] } } }), Buffer.from(body), 4096))) },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 3 }), method, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([ch, m, at, byte]) => {
    const b = Buffer.from(encodeMethodFrame(ch, m));
    b[at % b.length] = byte;
    return b;
  }) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(1, 2, 3, 8, 0, 7, 255), fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 64 })).map(([t, ch, p]) => rawFrame(t, ch, Buffer.from(p))) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 32 }).map((b) => Buffer.from(b)) },
);

async function runCase(pieces: Buffer[]): Promise<void> {
  const c = await RawClient.handshake(broker.port);
  for (const p of pieces) c.write(p);
  // Ask for a close. The broker may already be closing, or may still wait for the rest of a
  // frame whose size field was mutated (as RabbitMQ would): then the client hangs up.
  c.send(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
  await Promise.race([c.closed, c.method('connection.close-ok', 250).catch(() => undefined)]);
  c.destroy();
  await until(() => broker.connectionCount() === 1, 5000, 'the fuzzed connection to be released');
}

describe('random and mutated frames', () => {
  it('never crash the node nor leak connections', async () => {
    const watcher = await amqp.connect(url(broker));
    const wch = await watcher.createChannel();
    await fc.assert(fc.asyncProperty(fc.array(piece, { minLength: 1, maxLength: 12 }), async (pieces) => {
      await runCase(pieces);
      await wch.checkExchange('amq.direct'); // the well-behaved client is still served
    }), { numRuns: 60 });
    await watcher.close();
    await until(() => broker.connectionCount() === 0, 10_000, 'all connections released');
    expect(broker.connectionCount()).toBe(0);
  });
});
