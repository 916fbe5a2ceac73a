// The broker driven by amqplib as an application would: topology, publishing, consuming, acks,
// confirms, transactions, dead-lettering, direct reply-to, and RabbitMQ's error codes.

import amqp from 'amqplib';
import type { Channel, ChannelModel, ConsumeMessage, GetMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerServer } from '../../src/broker/server.js';
import { replyCodeOf, startTestBroker, until, url } from './helpers.js';

let broker: BrokerServer;
let conn: ChannelModel;

beforeAll(async () => {
  broker = await startTestBroker();
  conn = await amqp.connect(url(broker));
});
afterAll(async () => {
  await conn.close().catch(() => {});
  await broker.close();
});

async function channel(): Promise<Channel> {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  return ch;
}

function collect(ch: Channel, queue: string, noAck = true): { messages: ConsumeMessage[]; ready: Promise<string> } {
  const messages: ConsumeMessage[] = [];
  const ready = ch.consume(queue, (m) => { if (m !== null) messages.push(m); }, { noAck }).then((r) => r.consumerTag);
  return { messages, ready };
}

describe('topology', () => {
  it('routes through direct, fanout, topic and headers exchanges', async () => {
    const ch = await channel();
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    await ch.assertExchange('t.topic', 'topic', { durable: false });
    await ch.bindQueue(q, 't.topic', 'a.*.c');
    await ch.bindQueue(q, 'amq.fanout', '');
    await ch.assertExchange('t.headers', 'headers', { durable: false });
    await ch.bindQueue(q, 't.headers', '', { 'x-match': 'any', k: 'v', z: 1 });
    const { messages, ready } = collect(ch, q);
    await ready;
    ch.publish('t.topic', 'a.b.c', Buffer.from('topic-hit'));
    ch.publish('t.topic', 'a.b.b.c', Buffer.from('topic-miss'));
    ch.publish('amq.fanout', 'whatever', Buffer.from('fanout'));
    ch.publish('t.headers', '', Buffer.from('headers-hit'), { headers: { k: 'v' } });
    ch.publish('t.headers', '', Buffer.from('headers-miss'), { headers: { k: 'w' } });
    await until(() => messages.length >= 3);
    await ch.close();
    expect(messages.map((m) => m.content.toString()).sort()).toEqual(['fanout', 'headers-hit', 'topic-hit']);
  });

  it('routes through exchange-to-exchange bindings and alternate exchanges', async () => {
    const ch = await channel();
    await ch.assertExchange('e2e.src', 'direct', { durable: false });
    await ch.assertExchange('e2e.dst', 'fanout', { durable: false });
    await ch.bindExchange('e2e.dst', 'e2e.src', 'k');
    await ch.assertExchange('ae.target', 'fanout', { durable: false });
    await ch.assertExchange('with.ae', 'direct', { durable: false, alternateExchange: 'ae.target' });
    const q1 = (await ch.assertQueue('', { exclusive: true })).queue;
    const q2 = (await ch.assertQueue('', { exclusive: true })).queue;
    await ch.bindQueue(q1, 'e2e.dst', '');
    await ch.bindQueue(q2, 'ae.target', '');
    ch.publish('e2e.src', 'k', Buffer.from('via-e2e'));
    ch.publish('with.ae', 'nobody', Buffer.from('via-ae'));
    const a = await getOne(ch, q1);
    const b = await getOne(ch, q2);
    expect(a.content.toString()).toBe('via-e2e');
    expect(b.content.toString()).toBe('via-ae');
    await ch.close();
  });

  it('answers redeclare with 406 on inequivalent args and 404 on passive miss', async () => {
    const ch = await channel();
    await ch.assertQueue('q.ineq', { durable: false, arguments: { 'x-max-length': 5 } });
    expect(await replyCodeOf(ch.assertQueue('q.ineq', { durable: false, arguments: { 'x-max-length': 6 } }))).toBe(406);
    const ch2 = await channel();
    expect(await replyCodeOf(ch2.checkQueue('q.nope'))).toBe(404);
    const ch3 = await channel();
    expect(await replyCodeOf(ch3.checkExchange('x.nope'))).toBe(404);
    const ch4 = await channel();
    expect(await replyCodeOf(ch4.assertExchange('amq.custom', 'direct'))).toBe(403);
    const ch5 = await channel();
    await ch5.deleteQueue('q.ineq');
    await ch5.close();
  });

  it('deletes queues with if-unused and if-empty checks and purges', async () => {
    const ch = await channel();
    await ch.assertQueue('q.del', { durable: false });
    ch.sendToQueue('q.del', Buffer.from('x'));
    expect(await replyCodeOf(ch.deleteQueue('q.del', { ifEmpty: true }))).toBe(406);
    const ch2 = await channel();
    expect((await ch2.purgeQueue('q.del')).messageCount).toBe(1);
    expect((await ch2.deleteQueue('q.del', { ifEmpty: true })).messageCount).toBe(0);
    expect((await ch2.deleteQueue('q.del')).messageCount).toBe(0);
    await ch2.close();
  });
});

async function getOne(ch: Channel, q: string, noAck = true): Promise<GetMessage> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const m = await ch.get(q, { noAck });
    if (m !== false) return m;
  }
  throw new Error(`no message in ${q}`);
}

describe('publishing and consuming', () => {
  it('confirms publishes and returns unroutable mandatory messages before the ack', async () => {
    const ch = await conn.createConfirmChannel();
    const events: string[] = [];
    ch.on('return', (m: ConsumeMessage) => events.push(`return:${m.fields.routingKey}`));
    await new Promise<void>((resolve, reject) => ch.publish('amq.direct', 'nobody-home', Buffer.from('x'), { mandatory: true }, (err) => {
      if (err) reject(err);
      events.push('ack');
      resolve();
    }));
    expect(events).toEqual(['return:nobody-home', 'ack']);
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    for (let i = 0; i < 50; i++) ch.sendToQueue(q, Buffer.from(String(i)));
    await ch.waitForConfirms();
    expect((await ch.checkQueue(q)).messageCount).toBe(50);
    await ch.close();
  });

  it('nacks publishes refused by x-overflow reject-publish', async () => {
    const ch = await conn.createConfirmChannel();
    const q = (await ch.assertQueue('', { exclusive: true, arguments: { 'x-max-length': 2, 'x-overflow': 'reject-publish' } })).queue;
    const outcomes = await Promise.all([1, 2, 3].map((i) => new Promise<string>((resolve) =>
      ch.sendToQueue(q, Buffer.from(String(i)), {}, (err) => resolve(err ? 'nack' : 'ack')))));
    expect(outcomes).toEqual(['ack', 'ack', 'nack']);
    await ch.close();
  });

  it('respects per-consumer prefetch and redelivers nacked messages with redelivered set', async () => {
    const ch = await channel();
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    for (let i = 0; i < 10; i++) ch.sendToQueue(q, Buffer.from(String(i)));
    await ch.prefetch(3);
    const { messages, ready } = collect(ch, q, false);
    await ready;
    await until(() => messages.length === 3);
    expect((await ch.checkQueue(q)).messageCount).toBe(7);
    ch.nack(messages[0]!, false, true);
    await until(() => messages.length === 4);
    const redelivered = messages.find((m) => m.fields.redelivered);
    expect(redelivered?.content.toString()).toBe('0');
    ch.ackAll();
    await until(() => messages.length >= 7);
    await ch.close();
  });

  it('limits a channel with global prefetch across its consumers', async () => {
    const ch = await channel();
    const q1 = (await ch.assertQueue('', { exclusive: true })).queue;
    const q2 = (await ch.assertQueue('', { exclusive: true })).queue;
    for (let i = 0; i < 10; i++) {
      ch.sendToQueue(q1, Buffer.from('a'));
      ch.sendToQueue(q2, Buffer.from('b'));
    }
    await ch.prefetch(4, true);
    const a = collect(ch, q1, false);
    const b = collect(ch, q2, false);
    await Promise.all([a.ready, b.ready]);
    await until(() => a.messages.length + b.messages.length === 4);
    const s1 = await ch.checkQueue(q1);
    const s2 = await ch.checkQueue(q2);
    expect(s1.messageCount + s2.messageCount).toBe(16);
    ch.ack([...a.messages, ...b.messages].at(-1)!, true);
    await until(() => a.messages.length + b.messages.length === 8);
    await ch.prefetch(0, true); // no global limit any more: everything flows
    await until(() => a.messages.length + b.messages.length === 20);
    await ch.close();
  });

  it('moves global credit parked on an idle consumer to a consumer whose queue has messages', async () => {
    const ch = await channel();
    const idle = (await ch.assertQueue('', { exclusive: true })).queue;
    const busy = (await ch.assertQueue('', { exclusive: true })).queue;
    await ch.prefetch(2, true);
    const a = collect(ch, idle, false);
    await a.ready; // takes both credits while its queue is empty
    const b = collect(ch, busy, false);
    await b.ready;
    for (let i = 0; i < 3; i++) ch.sendToQueue(busy, Buffer.from(String(i)));
    await until(() => b.messages.length === 2, 5000, 'deliveries on the busy queue');
    expect((await ch.checkQueue(busy)).messageCount).toBe(1);
    await ch.close();
  });

  it('keeps a no-ack consumer supplied past its credit batches', async () => {
    const ch = await channel();
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    for (let i = 0; i < 3000; i++) ch.sendToQueue(q, Buffer.alloc(100));
    const { messages, ready } = collect(ch, q, true);
    await ready;
    await until(() => messages.length === 3000, 10_000, 'all 3000 deliveries');
    expect((await ch.checkQueue(q)).messageCount).toBe(0);
    await ch.close();
  });

  it('supports basic.get, reject without requeue, recover and unknown delivery tags (406)', async () => {
    const ch = await channel();
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    ch.sendToQueue(q, Buffer.from('one'));
    ch.sendToQueue(q, Buffer.from('two'));
    const first = await getOne(ch, q, false);
    expect(first.fields.messageCount).toBe(1);
    ch.reject(first, false);
    const second = await getOne(ch, q, false);
    expect(second.content.toString()).toBe('two');
    await ch.recover();
    const again = await getOne(ch, q, false);
    expect(again.fields.redelivered).toBe(true);
    expect(await ch.get(q)).toBe(false);
    const closed = new Promise<number>((resolve) => ch.once('error', (e: { code: number }) => resolve(e.code)));
    ch.ack({ fields: { deliveryTag: 999 } } as never);
    expect(await closed).toBe(406);
  });

  it('dead-letters rejected and expired messages with x-death headers', async () => {
    const ch = await channel();
    await ch.assertExchange('dlx', 'fanout', { durable: false });
    const dead = (await ch.assertQueue('', { exclusive: true })).queue;
    await ch.bindQueue(dead, 'dlx', '');
    const src = (await ch.assertQueue('src.dl', { exclusive: true, arguments: { 'x-dead-letter-exchange': 'dlx', 'x-message-ttl': 1 } })).queue;
    ch.sendToQueue(src, Buffer.from('expires'), { headers: { keep: 'me' } });
    const m = await getOne(ch, dead);
    const death = (m.properties.headers?.['x-death'] as unknown as Array<Record<string, unknown>>)[0]!;
    expect(death['reason']).toBe('expired');
    expect(death['queue']).toBe('src.dl');
    expect(death['count']).toBe(1);
    expect(m.properties.headers?.['keep']).toBe('me');
    expect(m.properties.headers?.['x-first-death-reason']).toBe('expired');
    await ch.close();
  });

  it('routes CC and BCC keys, strips BCC, and expires messages by per-message expiration', async () => {
    const ch = await channel();
    const main = (await ch.assertQueue('cc.main', { exclusive: true })).queue;
    const cc = (await ch.assertQueue('cc.copy', { exclusive: true })).queue;
    const bcc = (await ch.assertQueue('cc.blind', { exclusive: true })).queue;
    ch.publish('', main, Buffer.from('m'), { CC: [cc], BCC: [bcc] } as never);
    ch.publish('', 'nobody', Buffer.from('n'), { headers: { CC: ['cc.copy'] } });
    const a = await getOne(ch, main);
    const b = await getOne(ch, bcc);
    expect(a.properties.headers?.['CC']).toEqual([cc]);
    expect(b.properties.headers?.['BCC']).toBeUndefined();
    expect((await ch.checkQueue(cc)).messageCount).toBe(2);
    await ch.assertExchange('exp.dlx', 'fanout', { durable: false });
    const dead = (await ch.assertQueue('', { exclusive: true })).queue;
    await ch.bindQueue(dead, 'exp.dlx', '');
    const src = (await ch.assertQueue('', { exclusive: true, arguments: { 'x-dead-letter-exchange': 'exp.dlx' } })).queue;
    ch.sendToQueue(src, Buffer.from('short-lived'), { expiration: '1' });
    const d = await getOne(ch, dead);
    const death = (d.properties.headers?.['x-death'] as unknown as Array<Record<string, unknown>>)[0]!;
    expect(death['reason']).toBe('expired');
    expect(death['original-expiration']).toBe('1');
    expect(d.properties.expiration).toBeUndefined();
    await ch.close();
  });

  it('dead-letters publishes refused by reject-publish-dlx and limits by x-max-length-bytes', async () => {
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange('rpd.dlx', 'fanout', { durable: false });
    const dead = (await ch.assertQueue('', { exclusive: true })).queue;
    await ch.bindQueue(dead, 'rpd.dlx', '');
    const q = (await ch.assertQueue('', { exclusive: true, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish-dlx', 'x-dead-letter-exchange': 'rpd.dlx' } })).queue;
    const outcomes = await Promise.all(['a', 'b'].map((b) => new Promise<string>((resolve) => ch.sendToQueue(q, Buffer.from(b), {}, (err) => resolve(err ? 'nack' : 'ack')))));
    expect(outcomes).toEqual(['ack', 'nack']);
    expect((await getOne(ch, dead)).content.toString()).toBe('b');
    const bytes = (await ch.assertQueue('', { exclusive: true, arguments: { 'x-max-length-bytes': 10 } })).queue;
    for (const b of ['12345', '67890', 'abcde']) ch.sendToQueue(bytes, Buffer.from(b));
    await ch.waitForConfirms();
    expect((await getOne(ch, bytes)).content.toString()).toBe('67890');
    await ch.close();
  });

  it('relays properties and header tables unchanged', async () => {
    const ch = await channel();
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    const headers = { s: 'str', n: 42, big: 2 ** 40, f: 1.5, b: true, arr: [1, 'two'], nested: { x: 'y' } };
    ch.sendToQueue(q, Buffer.from('p'), {
      headers, contentType: 'text/plain', correlationId: 'c-1', messageId: 'm-1', priority: 3, timestamp: 1700000000, appId: 'app', deliveryMode: 2,
    });
    const m = await getOne(ch, q);
    expect(m.properties.headers).toEqual(headers);
    expect(m.properties.contentType).toBe('text/plain');
    expect(m.properties.correlationId).toBe('c-1');
    expect(m.properties.timestamp).toBe(1700000000);
    expect(m.properties.deliveryMode).toBe(2);
    await ch.close();
  });

  it('splits large bodies into frames and reassembles them', async () => {
    const ch = await channel();
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    const body = Buffer.alloc(1024 * 1024, 7);
    ch.sendToQueue(q, body);
    const m = await getOne(ch, q);
    expect(m.content.equals(body)).toBe(true);
    await ch.close();
  });

  it('answers direct reply-to requests', async () => {
    const requester = await channel();
    const server = await channel();
    const rpc = (await server.assertQueue('', { exclusive: true })).queue;
    await server.consume(rpc, (m) => {
      if (m === null) return;
      server.sendToQueue(m.properties.replyTo as string, Buffer.from(`re:${m.content.toString()}`), { correlationId: m.properties.correlationId });
    }, { noAck: true });
    const replies: ConsumeMessage[] = [];
    await requester.consume('amq.rabbitmq.reply-to', (m) => { if (m) replies.push(m); }, { noAck: true });
    requester.sendToQueue(rpc, Buffer.from('ping'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'r1' });
    await until(() => replies.length === 1);
    expect(replies[0]!.content.toString()).toBe('re:ping');
    expect(replies[0]!.properties.correlationId).toBe('r1');
    await requester.close();
    await server.close();
  });
});

describe('consumers and queue lifecycle', () => {
  it('sends basic.cancel when a consumed queue is deleted, and auto-deletes after the last consumer', async () => {
    const ch = await channel();
    await ch.assertQueue('q.cancelme', { durable: false });
    let cancelled = false;
    await ch.consume('q.cancelme', (m) => { if (m === null) cancelled = true; });
    const other = await channel();
    await other.deleteQueue('q.cancelme');
    await until(() => cancelled, 5000, 'server-sent cancel');
    await ch.assertQueue('q.auto', { durable: false, autoDelete: true });
    const { consumerTag } = await ch.consume('q.auto', () => {});
    await ch.cancel(consumerTag);
    expect(await replyCodeOf(other.checkQueue('q.auto'))).toBe(404);
    await ch.close();
  });

  it('cancels a consumer that holds a message past x-consumer-timeout and returns the message', async () => {
    const ch = await channel();
    const q = (await ch.assertQueue('', { exclusive: true, arguments: { 'x-consumer-timeout': 50 } })).queue;
    let cancelled = false;
    await ch.consume(q, (m) => { if (m === null) cancelled = true; }, { noAck: false });
    ch.sendToQueue(q, Buffer.from('held'));
    await until(() => cancelled, 5000, 'the timeout cancel');
    const back = await getOne(ch, q);
    expect(back.fields.redelivered).toBe(true);
    await ch.close();
  });

  it('refuses a second exclusive consumer (403) and a reused consumer tag (530)', async () => {
    const ch = await channel();
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    await ch.consume(q, () => {}, { exclusive: true });
    expect(await replyCodeOf(ch.consume(q, () => {}))).toBe(403);
    const c2 = await amqp.connect(url(broker));
    c2.on('error', () => {});
    const ch2 = await c2.createChannel();
    ch2.on('error', () => {});
    const other = (await ch2.assertQueue('', { exclusive: true })).queue;
    await ch2.consume(other, () => {}, { consumerTag: 'dup' });
    const closed = new Promise<number>((resolve) => c2.once('error', (e: { code: number }) => resolve(e.code)));
    await ch2.consume(other, () => {}, { consumerTag: 'dup' }).catch(() => {});
    expect(await closed).toBe(530);
  });

  it('returns unacked messages with redelivered set when the consumer connection closes', async () => {
    const ch = await channel();
    await ch.assertQueue('q.requeue', { durable: false });
    for (const b of ['a', 'b']) ch.sendToQueue('q.requeue', Buffer.from(b));
    const c2 = await amqp.connect(url(broker));
    const ch2 = await c2.createChannel();
    const taken: string[] = [];
    await ch2.consume('q.requeue', (m) => { if (m) taken.push(m.content.toString()); }, { noAck: false });
    await until(() => taken.length === 2);
    await c2.close();
    const again = await getOne(ch, 'q.requeue', false);
    expect(again.fields.redelivered).toBe(true);
    expect(again.content.toString()).toBe('a');
    await ch.deleteQueue('q.requeue');
    await ch.close();
  });

  it('deletes exclusive queues when their connection closes and locks them for others (405)', async () => {
    const c2 = await amqp.connect(url(broker));
    const ch2 = await c2.createChannel();
    await ch2.assertQueue('q.mine', { exclusive: true });
    const ch = await channel();
    expect(await replyCodeOf(ch.assertQueue('q.mine', { exclusive: true }))).toBe(405);
    await c2.close();
    const ch3 = await channel();
    await until(() => broker.context.queues.get('/', 'q.mine') === undefined);
    expect(await replyCodeOf(ch3.checkQueue('q.mine'))).toBe(404);
  });
});

describe('errors', () => {
  it('closes the channel with 404 for a missing exchange on publish and keeps the connection', async () => {
    const ch = await channel();
    const code = new Promise<number>((resolve) => ch.once('error', (e: { code: number }) => resolve(e.code)));
    ch.publish('no.such.exchange', 'k', Buffer.from('x'));
    expect(await code).toBe(404);
    const ch2 = await channel();
    await ch2.assertQueue('', { exclusive: true });
    await ch2.close();
  });

  it('refuses publishing to the internal exchange amq.rabbitmq.trace (403) and bad expiration (406)', async () => {
    const ch = await channel();
    let code = new Promise<number>((resolve) => ch.once('error', (e: { code: number }) => resolve(e.code)));
    ch.publish('amq.rabbitmq.trace', 'k', Buffer.from('x'));
    expect(await code).toBe(403);
    const ch2 = await channel();
    code = new Promise<number>((resolve) => ch2.once('error', (e: { code: number }) => resolve(e.code)));
    ch2.publish('', 'q', Buffer.from('x'), { expiration: 'soon' });
    expect(await code).toBe(406);
  });

  it('closes the channel with 406 for a message above the configured max size', async () => {
    const small = await startTestBroker({ maxMessageSizeBytes: 1000 });
    const c = await amqp.connect(url(small));
    const ch = await c.createChannel();
    const code = new Promise<number>((resolve) => ch.once('error', (e: { code: number }) => resolve(e.code)));
    ch.sendToQueue('x', Buffer.alloc(2000));
    expect(await code).toBe(406);
    const ch2 = await c.createChannel();
    expect((await ch2.assertQueue('', { exclusive: true })).messageCount).toBe(0);
    await c.close();
    await small.close();
  });
});
