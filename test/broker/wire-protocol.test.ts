// What a badly behaved or unusual peer sees: protocol header negotiation, malformed frames,
// wrong channel states, tune limits, channel_max, heartbeats, max connections and the memory
// alarm, each with RabbitMQ's reply code, while the node keeps serving everyone else.

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerServer } from '../../src/broker/server.js';
import { heartbeatFrame, protocolHeader } from '../../src/amqp/index.js';
import { startTestBroker, until, url } from './helpers.js';
import { RawClient, rawFrame } from './raw-client.js';

let broker: BrokerServer;
beforeAll(async () => {
  broker = await startTestBroker();
});
afterAll(async () => {
  await broker.close();
});

async function stillServes(): Promise<void> {
  const c = await amqp.connect(url(broker));
  const ch = await c.createChannel();
  await ch.assertQueue('', { exclusive: true });
  await c.close();
}

describe('protocol header and frames', () => {
  it('answers a wrong protocol header with AMQP 0-9-1 and closes', async () => {
    const c = await RawClient.open(broker.port);
    c.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await c.closed;
    expect(c.bytes.equals(protocolHeader)).toBe(true);
  });

  it('closes with 501 on a bad frame end octet', async () => {
    const c = await RawClient.handshake(broker.port);
    c.write(rawFrame(1, 1, Buffer.from([0, 20, 0, 10, 0]), 0x00));
    const close = await c.close();
    expect(close.replyCode).toBe(501);
    expect(close.replyText).toContain('frame end');
    await stillServes();
  });

  it('closes with 501 on a frame larger than the negotiated frame_max', async () => {
    const c = await RawClient.handshake(broker.port, { frameMax: 8192 });
    c.write(rawFrame(3, 1, Buffer.alloc(9000)));
    expect((await c.close()).replyCode).toBe(501);
  });

  it('closes with 503 on an unknown method and 505 on a heartbeat on channel 1', async () => {
    const c = await RawClient.handshake(broker.port);
    c.write(rawFrame(1, 0, Buffer.from([0, 99, 0, 1])));
    const close = await c.close();
    expect(close.replyCode).toBe(503);
    expect(close.replyText).toContain('class 99');
    const d = await RawClient.handshake(broker.port);
    d.write(rawFrame(8, 1, Buffer.alloc(0)));
    expect((await d.close()).replyCode).toBe(505);
  });

  it('closes with 504 for a method before channel.open and for a second channel.open', async () => {
    const c = await RawClient.handshake(broker.port);
    c.send(1, { name: 'basic.qos', prefetchSize: 0, prefetchCount: 1, global: false });
    expect((await c.close()).replyCode).toBe(504);
    const d = await RawClient.handshake(broker.port);
    d.send(1, { name: 'channel.open', outOfBand: '' });
    await d.method('channel.open-ok');
    d.send(1, { name: 'channel.open', outOfBand: '' });
    expect((await d.close()).replyCode).toBe(504);
  });

  it('closes with 505 for a content body without a publish before it', async () => {
    const c = await RawClient.handshake(broker.port);
    c.send(1, { name: 'channel.open', outOfBand: '' });
    await c.method('channel.open-ok');
    c.write(rawFrame(3, 1, Buffer.from('stray body')));
    expect((await c.close()).replyCode).toBe(505);
  });

  it('closes with 540 for basic.publish immediate=true and for prefetch_size', async () => {
    const c = await RawClient.handshake(broker.port);
    c.send(1, { name: 'channel.open', outOfBand: '' });
    await c.method('channel.open-ok');
    c.send(1, { name: 'basic.publish', ticket: 0, exchange: '', routingKey: 'q', mandatory: false, immediate: true });
    expect((await c.close()).replyCode).toBe(540);
    const d = await RawClient.handshake(broker.port);
    d.send(1, { name: 'channel.open', outOfBand: '' });
    await d.method('channel.open-ok');
    d.send(1, { name: 'basic.qos', prefetchSize: 10, prefetchCount: 0, global: false });
    expect((await d.close()).replyCode).toBe(540);
  });
});

describe('tuning and limits', () => {
  it('refuses tune-ok frame_max 0 or above the proposal with 530', async () => {
    const c = await RawClient.open(broker.port);
    c.write(protocolHeader);
    await c.method('connection.start');
    c.send(0, { name: 'connection.start-ok', clientProperties: {}, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US' });
    const tune = await c.method('connection.tune');
    expect(tune).toMatchObject({ channelMax: 2047, frameMax: 131072, heartbeat: 60 });
    c.send(0, { name: 'connection.tune-ok', channelMax: 2047, frameMax: 0, heartbeat: 0 });
    const close = await c.close();
    expect(close.replyCode).toBe(530);
    expect(close.replyText).toContain('frame_max');
  });

  it('enforces the negotiated channel_max with 530', async () => {
    const c = await RawClient.handshake(broker.port, { channelMax: 2 });
    c.send(3, { name: 'channel.open', outOfBand: '' });
    const close = await c.close();
    expect(close.replyCode).toBe(530);
    expect(close.replyText).toContain('channel_max');
  });

  it('refuses connections above max connections with 530', async () => {
    const small = await startTestBroker({ maxConnections: 1 });
    const first = await amqp.connect(url(small));
    await expect(amqp.connect(url(small))).rejects.toThrow(/530|ConnectionClose/);
    await first.close();
    await small.close();
  });

  it('accepts exactly --max-connections of a burst opened at once (5 and 10 against 3)', async () => {
    const small = await startTestBroker({ maxConnections: 3 });
    for (const burst of [5, 10]) {
      const results = await Promise.allSettled(Array.from({ length: burst }, () => amqp.connect(url(small))));
      const opened = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
      const refused = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
      expect(opened).toHaveLength(3);
      expect(refused).toHaveLength(burst - 3);
      for (const reason of refused) expect(reason).toMatch(/ConnectionClose/);
      for (const c of opened) await c.close();
      await until(() => small.context.openConnections === 0, 5000, 'the connections to be gone');
    }
    await small.close();
  });

  it('sends heartbeats to an idle client and drops a silent one', async () => {
    const c = await RawClient.handshake(broker.port, { heartbeat: 1 });
    // The broker beats every 0.5 s when idle; a silent client is dropped after 2 s.
    await until(() => c.bytes.includes(heartbeatFrame), 5000, 'a heartbeat');
    await c.closed;
    expect(c.socket.destroyed).toBe(true);
  });

  it('keeps a client that sends heartbeats', async () => {
    // heartbeat 2: the broker beats every second when idle and drops a client silent for 4 s.
    const c = await RawClient.handshake(broker.port, { heartbeat: 2 });
    const t = setInterval(() => c.write(heartbeatFrame), 300);
    let seen = 0;
    await until(() => (seen = c.bytes.length) > 0 && c.frames.filter((f) => f.type === 8).length >= 3, 15_000, 'three heartbeats');
    clearInterval(t);
    expect(c.socket.destroyed).toBe(false);
    expect(seen).toBeGreaterThan(0);
    c.destroy();
  });

  it('blocks publishers under the memory alarm and unblocks when it clears', async () => {
    let memory = 0;
    const alarmed = await startTestBroker({ memoryHighWatermarkBytes: 1000 }, () => memory);
    const c = await amqp.connect(url(alarmed));
    const events: string[] = [];
    c.on('blocked', (reason: string) => events.push(`blocked:${reason}`));
    c.on('unblocked', () => events.push('unblocked'));
    memory = 2000;
    await until(() => events.length === 1, 5000, 'connection.blocked');
    memory = 10;
    await until(() => events.length === 2, 5000, 'connection.unblocked');
    expect(events).toEqual(['blocked:low on memory', 'unblocked']);
    await c.close();
    await alarmed.close();
  });

  it('accepts update-secret', async () => {
    const c = await RawClient.handshake(broker.port);
    c.send(0, { name: 'connection.update-secret', newSecret: Buffer.from('token'), reason: 'refresh' });
    await c.method('connection.update-secret-ok');
    c.destroy();
  });

  it('stops handing messages to a no-ack consumer whose client does not read', async () => {
    const pub = await amqp.connect(url(broker));
    const ch = await pub.createConfirmChannel();
    await ch.assertQueue('slow.reader', { durable: false });
    const body = Buffer.alloc(1024);
    for (let i = 0; i < 20_000; i++) ch.sendToQueue('slow.reader', body);
    await ch.waitForConfirms();
    const c = await RawClient.handshake(broker.port);
    c.send(1, { name: 'channel.open', outOfBand: '' });
    await c.method('channel.open-ok');
    c.socket.pause(); // the client stops reading: kernel buffers fill, then the broker's
    c.send(1, { name: 'basic.consume', ticket: 0, queue: 'slow.reader', consumerTag: '', noLocal: false, noAck: true, exclusive: false, nowait: false, arguments: {} });
    const queue = broker.context.queues.get('/', 'slow.reader')!;
    // Wait until the ready count stops moving (credit ran out), bounded.
    let last = -1;
    let still = 0;
    for (let i = 0; i < 400 && still < 20; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const ready = queue.stats().messagesReady;
      still = ready === last ? still + 1 : 0;
      last = ready;
    }
    expect(still).toBe(20);
    expect(last).toBeGreaterThan(5_000); // at most a few MiB left the queue, not all 20 MiB
    c.destroy();
    await ch.deleteQueue('slow.reader');
    await pub.close();
  });
});
