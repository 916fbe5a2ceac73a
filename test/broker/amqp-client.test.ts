// The broker driven by @cloudamqp/amqp-client (frame_max 8192, its own codec): transactions,
// priorities, single active consumer, overflow and expiry, flow, qos errors and reply texts.

import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerServer } from '../../src/broker/server.js';
import { startTestBroker, until, url } from './helpers.js';

let broker: BrokerServer;
let client: AMQPClient;

beforeAll(async () => {
  broker = await startTestBroker();
  client = new AMQPClient(url(broker));
  await client.connect();
});
afterAll(async () => {
  await client.close().catch(() => {});
  await broker.close();
});

/** Reply code and text from an amqp-client error ("... closed: TEXT (code)"). */
async function failure(p: Promise<unknown>): Promise<{ code: number; text: string }> {
  try {
    await p;
  } catch (e) {
    const m = /closed: (.*) \((\d{3})\)\s*$/.exec((e as Error).message);
    if (m === null) throw e;
    return { code: Number(m[2]), text: m[1]! };
  }
  throw new Error('expected a failure');
}

async function drain(ch: AMQPChannel, queue: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const m = await ch.basicGet(queue, { noAck: true });
    if (m === null) return out;
    out.push(m.bodyToString() ?? '');
  }
  return out;
}

describe('amqp-client', () => {
  it('commits and rolls back transactions (publishes and acks)', async () => {
    const ch = await client.channel();
    const { name } = await ch.queueDeclare('', { exclusive: true });
    await ch.txSelect();
    await ch.basicPublish('', name, 'dropped');
    await ch.txRollback();
    await ch.basicPublish('', name, 'kept');
    expect((await ch.queueDeclare(name, { passive: true })).messageCount).toBe(0);
    await ch.txCommit();
    const m = await ch.basicGet(name, { noAck: false });
    expect(m?.bodyToString()).toBe('kept');
    await m!.ack();
    await ch.txRollback(); // the ack is dropped: the message stays unacked on this channel
    await ch.close();
    const ch2 = await client.channel();
    expect(await drain(ch2, name)).toEqual(['kept']);
    await ch2.close();
  });

  it('refuses tx.commit without tx.select and confirm.select on a tx channel with 406', async () => {
    const ch = await client.channel();
    expect(await failure(ch.txCommit())).toEqual({ code: 406, text: 'PRECONDITION_FAILED - channel is not transactional' });
    const ch2 = await client.channel();
    await ch2.txSelect();
    expect((await failure(ch2.confirmSelect())).code).toBe(406);
  });

  it('delivers by message priority with x-max-priority', async () => {
    const ch = await client.channel();
    const { name } = await ch.queueDeclare('', { exclusive: true }, { 'x-max-priority': 5 });
    for (const p of [1, 5, 3]) await ch.basicPublish('', name, `p${p}`, { priority: p });
    expect(await drain(ch, name)).toEqual(['p5', 'p3', 'p1']);
    await ch.close();
  });

  it('drops the head (dead-lettering it as maxlen) at x-max-length', async () => {
    const ch = await client.channel();
    await ch.exchangeDeclare('cl.dlx', 'fanout', { durable: false });
    const dead = (await ch.queueDeclare('', { exclusive: true })).name;
    await ch.queueBind(dead, 'cl.dlx', '');
    const { name } = await ch.queueDeclare('', { exclusive: true }, { 'x-max-length': 2, 'x-dead-letter-exchange': 'cl.dlx' });
    for (const b of ['a', 'b', 'c']) await ch.basicPublish('', name, b);
    expect(await drain(ch, name)).toEqual(['b', 'c']);
    const d = await ch.basicGet(dead, { noAck: true });
    expect(d?.bodyToString()).toBe('a');
    // Republished from the dead-letter exchange, as RabbitMQ does (x-death keeps where it was first).
    expect([d?.exchange, d?.routingKey]).toEqual(['cl.dlx', name]);
    const death = (d?.properties.headers?.['x-death'] as Array<Record<string, unknown>>)[0]!;
    expect(death['reason']).toBe('maxlen');
    await ch.close();
  });

  it('gives a single-active-consumer queue\'s messages to one consumer, the next one on cancel', async () => {
    const ch = await client.channel();
    const { name } = await ch.queueDeclare('', { exclusive: true }, { 'x-single-active-consumer': true });
    const got: string[] = [];
    const c1 = await ch.basicConsume(name, { noAck: true, tag: 'first' }, (m: AMQPMessage) => { got.push(`1:${m.bodyToString()}`); });
    await ch.basicConsume(name, { noAck: true, tag: 'second' }, (m: AMQPMessage) => { got.push(`2:${m.bodyToString()}`); });
    // Round-robin would alternate; one active consumer takes them all.
    for (const b of ['x', 'y', 'z']) await ch.basicPublish('', name, b);
    await until(() => got.length === 3);
    await c1.cancel();
    await ch.basicPublish('', name, 'w');
    await until(() => got.length === 4);
    expect(got).toEqual(['1:x', '1:y', '1:z', '2:w']);
    await ch.close();
  });

  it('prefers consumers with a higher x-priority', async () => {
    const ch = await client.channel();
    const { name } = await ch.queueDeclare('', { exclusive: true });
    const got: string[] = [];
    await ch.basicConsume(name, { noAck: true, args: { 'x-priority': 1 } }, () => { got.push('low'); });
    await ch.basicConsume(name, { noAck: true, args: { 'x-priority': 10 } }, () => { got.push('high'); });
    for (let i = 0; i < 3; i++) await ch.basicPublish('', name, 'm');
    await until(() => got.length === 3);
    expect(got).toEqual(['high', 'high', 'high']);
    await ch.close();
  });

  it('expires a queue unused for x-expires', async () => {
    const ch = await client.channel();
    await ch.queueDeclare('cl.expiring', { durable: false }, { 'x-expires': 30 });
    await until(() => broker.context.queues.get('/', 'cl.expiring') === undefined, 5000, 'queue expiry');
    expect((await failure(ch.queueDeclare('cl.expiring', { passive: true }))).code).toBe(404);
  });

  it('answers channel.flow(true) and refuses flow(false) with 540, prefetch_size with 540', async () => {
    const ch = await client.channel();
    expect(await ch.basicFlow(true)).toBe(true);
    const c2 = new AMQPClient(url(broker));
    await c2.connect();
    const ch2 = await c2.channel();
    expect((await failure(ch2.basicQos(10, 100))).code).toBe(540);
    const c3 = new AMQPClient(url(broker));
    await c3.connect();
    const ch3 = await c3.channel();
    expect((await failure(ch3.basicFlow(false))).code).toBe(540);
    await ch.close();
  });

  it('names the missing queue in the reply text', async () => {
    const ch = await client.channel();
    expect(await failure(ch.basicGet('cl.nope'))).toEqual({ code: 404, text: "NOT_FOUND - no queue 'cl.nope' in vhost '/'" });
  });

  it('refuses bad logins with 403 and unknown vhosts with 530', async () => {
    const bad = new AMQPClient(`amqp://guest:wrong@127.0.0.1:${broker.port}`);
    await expect(bad.connect()).rejects.toThrow(/403|ACCESS_REFUSED/);
    const vhost = new AMQPClient(`amqp://guest:guest@127.0.0.1:${broker.port}/nope`);
    await expect(vhost.connect()).rejects.toThrow(/530|NOT_ALLOWED/);
  });

  it('confirms many publishes with coalesced acks and consumes them with prefetch', async () => {
    const ch = await client.channel();
    await ch.confirmSelect();
    const { name } = await ch.queueDeclare('', { exclusive: true });
    const body = new Uint8Array(1024);
    const confirms: Promise<number>[] = [];
    for (let i = 0; i < 500; i++) confirms.push(ch.basicPublish('', name, body));
    await Promise.all(confirms);
    await ch.prefetch(50);
    let n = 0;
    await ch.basicConsume(name, { noAck: false }, (m: AMQPMessage) => { n++; void m.ack(); });
    await until(() => n === 500);
    await ch.close();
  });

  it('answers exchange and binding mistakes with RabbitMQ codes', async () => {
    const ch = await client.channel();
    await ch.exchangeDeclare('cl.used', 'direct', { durable: false });
    const { name } = await ch.queueDeclare('', { exclusive: true });
    await ch.queueBind(name, 'cl.used', 'k');
    expect((await failure(ch.exchangeDelete('cl.used', { ifUnused: true }))).code).toBe(406);
    const ch2 = await client.channel();
    expect((await failure(ch2.exchangeDelete('amq.direct'))).code).toBe(403);
    const ch3 = await client.channel();
    expect((await failure(ch3.queueBind(name, '', 'k'))).code).toBe(403);
    const ch4 = await client.channel();
    expect((await failure(ch4.exchangeDeclare('cl.bogus', 'bogus' as never))).code).toBe(406);
    const ch5 = await client.channel();
    await ch5.exchangeDeclare('cl.used', 'direct', { durable: false });
    expect((await failure(ch5.exchangeDeclare('cl.used', 'fanout', { durable: false }))).code).toBe(406);
    const ch6 = await client.channel();
    await ch6.exchangeDeclare('cl.internal', 'fanout', { durable: false, internal: true });
    await ch6.basicPublish('cl.internal', '', 'x');
    expect((await failure(ch6.queueDeclare('cl.after'))).code).toBe(403);
  });

  it('refuses direct reply-to misuse with 406', async () => {
    const ch = await client.channel();
    await ch.basicPublish('', 'anything', 'x', { replyTo: 'amq.rabbitmq.reply-to' });
    expect(await failure(ch.queueDeclare('', { exclusive: true }))).toEqual({ code: 406, text: 'PRECONDITION_FAILED - fast reply consumer does not exist' });
    const ch2 = await client.channel();
    expect((await failure(ch2.basicConsume('amq.rabbitmq.reply-to', { noAck: false }, () => {}))).code).toBe(406);
  });
});
