// The Task-RPC SDK against one real node (durable request queues are replicated queues there):
// results and typed errors, deadlines (skipped requests are never run), spreading over servers,
// concurrency, redelivery after a lost server, a lost caller connection, and the wire format
// as a plain AMQP client sees it.

import * as amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinkProxy } from '../../cluster/link-proxy.js';
import {
  connectRpc, header, requestQueueArguments, requestQueueName, RpcClosedError, RpcConnectionLostError, RpcNoServerError, RpcRemoteError,
  RpcServerLostError, RpcTimeoutError, type Rpc, type RpcEvent,
} from '../../src/tasks/index.js';
import { startReplicatedNode, type ReplicatedNode } from '../broker/replicated-node.js';

let node: ReplicatedNode;
const open: Rpc[] = [];

async function client(urls: string | string[] = node.url, onEvent?: (e: RpcEvent) => void): Promise<Rpc> {
  const rpc = await connectRpc(urls, onEvent === undefined ? {} : { onEvent });
  open.push(rpc);
  return rpc;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** The rejection of `p` (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  node = await startReplicatedNode();
});

afterAll(async () => {
  await Promise.all(open.map((r) => r.close()));
  await node.stop();
});

describe('Task-RPC on one node', () => {
  it('answers with the handler result: JSON values as JSON, Buffers as raw bytes', async () => {
    const server = await client();
    await server.serve('math.add', (p) => {
      const { a, b } = p as { a: number; b: number };
      return { sum: a + b };
    });
    await server.serve('bytes.reverse', (p) => Buffer.from(p as Buffer).reverse());
    const caller = await client();
    expect(await caller.call('math.add', { a: 2, b: 40 })).toEqual({ sum: 42 });
    const raw = await caller.call('bytes.reverse', Buffer.from([1, 2, 3, 255]));
    expect(Buffer.isBuffer(raw)).toBe(true);
    expect([...(raw as Buffer)]).toEqual([255, 3, 2, 1]);
  });

  it("returns a handler's error as a typed RpcRemoteError with name, message and details, not a timeout", async () => {
    const server = await client();
    await server.serve('user.create', (p) => {
      if ((p as { email?: string }).email === undefined) throw new RpcRemoteError('ValidationError', 'email is required', { field: 'email' });
      throw new TypeError('plain errors travel too');
    });
    const caller = await client();
    const started = Date.now();
    const e = await failure(caller.call('user.create', {}, { timeoutMs: 10_000 }));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(e).toBeInstanceOf(RpcRemoteError);
    expect(e).toMatchObject({ name: 'ValidationError', message: 'email is required', details: { field: 'email' }, code: 'REMOTE' });
    const plain = await failure(caller.call('user.create', { email: 'a@b' }));
    expect(plain).toBeInstanceOf(RpcRemoteError);
    expect(plain).toMatchObject({ name: 'TypeError', message: 'plain errors travel too' });
  });

  it('fails fast with RpcNoServerError when no server ever declared the method', async () => {
    const caller = await client();
    const started = Date.now();
    const e = await failure(caller.call('nobody.serves.this', 1, { timeoutMs: 20_000 }));
    expect(e).toBeInstanceOf(RpcNoServerError);
    expect(e.message).toContain("'rpc.nobody.serves.this' does not exist");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('spreads the calls of a method over all its servers', async () => {
    const served = [0, 0, 0];
    for (let i = 0; i < 3; i++) {
      const s = await client();
      await s.serve('spread', async () => {
        served[i]!++;
        await sleep(20);
        return i;
      }, { concurrency: 2 });
    }
    const caller = await client();
    await Promise.all(Array.from({ length: 60 }, () => caller.call('spread', null)));
    expect(served.reduce((a, b) => a + b, 0)).toBe(60);
    for (const n of served) expect(n).toBeGreaterThan(5);
  });

  it('runs at most `concurrency` handlers at once', async () => {
    let running = 0;
    let most = 0;
    const server = await client();
    await server.serve('bounded', async () => {
      running++;
      most = Math.max(most, running);
      await sleep(50);
      running--;
      return 'ok';
    }, { concurrency: 3 });
    const caller = await client();
    await Promise.all(Array.from({ length: 15 }, () => caller.call('bounded')));
    expect(most).toBe(3);
  });

  it('times out at the deadline, and a request that expired while queued is never run', async () => {
    const ran: string[] = [];
    const server = await client();
    await server.serve('slow', async (p) => {
      ran.push(p as string);
      await sleep(800);
      return p;
    }, { concurrency: 1 });
    const caller = await client();
    const first = caller.call('slow', 'first', { timeoutMs: 10_000 });
    await until('the first call to run', () => ran.length === 1);
    const started = Date.now();
    const e = await failure(caller.call('slow', 'second', { timeoutMs: 200 }));
    const waitedMs = Date.now() - started;
    expect(e).toBeInstanceOf(RpcTimeoutError);
    expect(waitedMs).toBeGreaterThanOrEqual(195);
    expect(waitedMs).toBeLessThan(2_000);
    expect(await first).toBe('first');
    // The server is free again; a third call runs, the expired second one never did.
    expect(await caller.call('slow', 'third', { timeoutMs: 10_000 })).toBe('third');
    expect(ran).toEqual(['first', 'third']);
  });

  it("aborts the handler's signal at the caller's deadline", async () => {
    const server = await client();
    let abortedAfterMs = -1;
    await server.serve('abortable', (_p, ctx) => new Promise((resolve) => {
      const t0 = Date.now();
      ctx.signal.addEventListener('abort', () => {
        abortedAfterMs = Date.now() - t0;
        resolve('too late');
      });
    }));
    const caller = await client();
    expect(await failure(caller.call('abortable', null, { timeoutMs: 300 }))).toBeInstanceOf(RpcTimeoutError);
    await until('the handler to see the abort', () => abortedAfterMs >= 0);
    expect(abortedAfterMs).toBeGreaterThan(100);
    expect(abortedAfterMs).toBeLessThan(1_500);
    await until('the late result to be counted, not sent', () => server.stats().servers['abortable']?.late === 1);
  });

  it('serves again after its request queue is deleted under it (basic.cancel, declare, consume)', async () => {
    const events: RpcEvent[] = [];
    const server = await client(node.url, (e) => events.push(e));
    await server.serve('deleted.queue', (p) => p);
    const caller = await client();
    expect(await caller.call('deleted.queue', 1)).toBe(1);
    const conn = await amqp.connect(node.url);
    const ch = await conn.createChannel();
    await ch.deleteQueue(requestQueueName('deleted.queue'));
    await conn.close();
    await until('the server to hear of it', () => events.some((e) => e.type === 'channel-failed'), 5_000);
    // Until the server declared it again the method has no queue; then calls work as before.
    for (let i = 0; i < 50; i++) {
      const r = await caller.call('deleted.queue', 2, { timeoutMs: 2_000 }).catch((e: Error) => e);
      if (r === 2) return;
      expect(r).toBeInstanceOf(RpcNoServerError);
      await sleep(100);
    }
    throw new Error('the server did not serve the method again');
  });

  it('skips, without running the handler or answering, a request whose deadline header has passed', async () => {
    let runs = 0;
    const events: RpcEvent[] = [];
    const server = await client(node.url, (e) => events.push(e));
    const serving = await server.serve('deadline.check', () => ++runs);
    // A plain client sends one request that is already late (no TTL, so only the header says so),
    // then one that is not.
    const conn = await amqp.connect(node.url);
    const ch = await conn.createChannel();
    const replies: amqp.ConsumeMessage[] = [];
    await ch.consume('amq.rabbitmq.reply-to', (m) => m !== null && replies.push(m), { noAck: true });
    const send = (id: string, deadlineMs: number): boolean => ch.sendToQueue(requestQueueName('deadline.check'), Buffer.from('null'), {
      replyTo: 'amq.rabbitmq.reply-to', correlationId: id, contentType: 'application/json', headers: { [header.deadline]: deadlineMs },
    });
    send('late', Date.now() - 1_000);
    send('on-time', Date.now() + 10_000);
    await until('the on-time reply', () => replies.length >= 1);
    await sleep(200);
    expect(replies.map((m) => m.properties.correlationId)).toEqual(['on-time']);
    expect(runs).toBe(1);
    expect(serving.stats().skippedExpired).toBe(1);
    expect(events).toContainEqual({ type: 'skipped-expired', method: 'deadline.check', callId: 'late' });
    await conn.close();
  });

  it('answers a redelivered request RpcServerLost unless the call is idempotent, which runs again', async () => {
    const method = 'redelivery';
    const conn = await amqp.connect(node.url);
    const ch = await conn.createChannel();
    await ch.assertQueue(requestQueueName(method), { durable: true, arguments: { ...requestQueueArguments } });
    // A "server" that takes both requests and dies before answering (its channel closes unacked).
    const taken: amqp.ConsumeMessage[] = [];
    await ch.prefetch(10);
    await ch.consume(requestQueueName(method), (m) => m !== null && taken.push(m), { noAck: false });
    const caller = await client();
    const plain = failure(caller.call(method, 'once', { timeoutMs: 15_000 }));
    const idem = caller.call(method, 'again', { timeoutMs: 15_000, idempotent: true });
    await until('both requests taken by the first server', () => taken.length === 2);
    await ch.close();
    let runs = 0;
    const server = await client();
    await server.serve(method, (p) => {
      runs++;
      return `ran ${String(p)}`;
    });
    const e = await plain;
    expect(e).toBeInstanceOf(RpcServerLostError);
    expect(e.message).toContain('not idempotent');
    expect(await idem).toBe('ran again');
    expect(runs).toBe(1);
    await conn.close();
  });

  it("resends idempotent calls when the caller's connection drops, fails the others fast, and fails over", async () => {
    const port = Number(new URL(node.url).port);
    const proxy = await LinkProxy.start({ targetHost: '127.0.0.1', targetPort: port, random: () => 0.5 });
    const server = await client();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let started = 0;
    await server.serve('gated', async (p) => {
      started++;
      await gate;
      return p;
    }, { concurrency: 10 });
    const events: RpcEvent[] = [];
    const caller = await client([`amqp://guest:guest@127.0.0.1:${proxy.port}`, node.url], (e) => events.push(e));
    expect(caller.connectedUrl()).toContain(`:${proxy.port}`);
    const plain = failure(caller.call('gated', 'plain', { timeoutMs: 15_000 }));
    const idem = caller.call('gated', 'idem', { timeoutMs: 15_000, idempotent: true });
    await until('both calls running', () => started === 2);
    const cutAt = Date.now();
    await proxy.close();
    const e = await plain;
    expect(e).toBeInstanceOf(RpcConnectionLostError);
    expect(Date.now() - cutAt).toBeLessThan(3_000);
    await until('the caller to fail over to the direct URL', () => caller.connectedUrl()?.includes(`:${port}`) === true);
    release();
    expect(await idem).toBe('idem');
    expect(caller.stats().caller.resent).toBe(1);
    expect(events.map((x) => x.type)).toEqual(expect.arrayContaining(['disconnected', 'connected']));
    expect(await caller.call('gated', 'after')).toBe('after');
  });

  it('holds calls made while no broker is reachable until one is, or until their deadline', async () => {
    const port = Number(new URL(node.url).port);
    const server = await client();
    await server.serve('while.down', (p) => p);
    const proxy = await LinkProxy.start({ targetHost: '127.0.0.1', targetPort: port, random: () => 0.5 });
    const caller = await client([`amqp://guest:guest@127.0.0.1:${proxy.port}`]);
    await proxy.close();
    await until('the caller to see the connection gone', () => caller.connectedUrl() === undefined);
    const unsent = await failure(caller.call('while.down', 'x', { timeoutMs: 300 }));
    expect(unsent).toBeInstanceOf(RpcTimeoutError);
    expect(unsent.message).toContain('could not be sent within 300 ms: no connection to any broker');
    const held = caller.call('while.down', 'y', { timeoutMs: 15_000 });
    await sleep(300);
    const back = await LinkProxy.start({ targetHost: '127.0.0.1', targetPort: port, random: () => 0.5, listenPort: proxy.port });
    expect(await held).toBe('y');
    await caller.close();
    await back.close();
  });

  it('close() lets running handlers answer and fails calls still waiting with RpcClosedError', async () => {
    const server = await client();
    await server.serve('closing', async (p) => {
      await sleep(300);
      return p;
    }, { concurrency: 1 });
    const caller = await client();
    const running = caller.call('closing', 'a', { timeoutMs: 10_000 });
    await sleep(50);
    const serverClosed = server.close();
    expect(await running).toBe('a');
    await serverClosed;
    const other = await client();
    const waiting = failure(other.call('closing', 'b', { timeoutMs: 10_000 }));
    await other.close();
    expect(await waiting).toBeInstanceOf(RpcClosedError);
    expect(await failure(other.call('closing', 'c'))).toBeInstanceOf(RpcClosedError);
  });

  it('refuses bad arguments with a clear error', async () => {
    const rpc = await client();
    await expect(rpc.call('', 1)).rejects.toThrow(/non-empty string/);
    await expect(rpc.call('m', 1, { timeoutMs: 0 })).rejects.toThrow(/timeoutMs/);
    await expect(rpc.call('m', 10n)).rejects.toThrow(TypeError);
    await expect(rpc.serve('m', () => 1, { concurrency: 0 })).rejects.toThrow(/concurrency/);
    await rpc.serve('twice', () => 1);
    await expect(rpc.serve('twice', () => 2)).rejects.toThrow(/already served/);
    await expect(connectRpc('http://nope')).rejects.toThrow(/not an AMQP URL/);
    await expect(connectRpc(['amqp://guest:secret@127.0.0.1:1'])).rejects.toMatchObject({ code: 'CONNECT_FAILED', message: expect.not.stringContaining('secret') });
  });
});

describe('Task-RPC wire format, as a plain AMQP client sees it (README)', () => {
  it('a plain client calls an SDK server: JSON request, rpc-status ok and error replies', async () => {
    const server = await client();
    await server.serve('wire.echo', (p) => {
      if (p === 'fail') throw new RpcRemoteError('Nope', 'asked to fail', [1, 2]);
      return { got: p };
    });
    const conn = await amqp.connect(node.url);
    const ch = await conn.createChannel();
    const replies = new Map<string, amqp.ConsumeMessage>();
    await ch.consume('amq.rabbitmq.reply-to', (m) => m !== null && replies.set(String(m.properties.correlationId), m), { noAck: true });
    for (const [id, body] of [['1', '"hello"'], ['2', '"fail"']] as const) {
      ch.publish('', 'rpc.wire.echo', Buffer.from(body), {
        replyTo: 'amq.rabbitmq.reply-to', correlationId: id, contentType: 'application/json', expiration: '10000',
        headers: { 'rpc-deadline': Date.now() + 10_000 },
      });
    }
    await until('two replies', () => replies.size === 2);
    const ok = replies.get('1')!;
    expect(ok.properties.headers?.['rpc-status']).toBe('ok');
    expect(ok.properties.contentType).toBe('application/json');
    expect(JSON.parse(ok.content.toString())).toEqual({ got: 'hello' });
    const err = replies.get('2')!;
    expect(err.properties.headers?.['rpc-status']).toBe('error');
    expect(JSON.parse(err.content.toString())).toEqual({ name: 'Nope', message: 'asked to fail', details: [1, 2] });
    await conn.close();
  });

  it('an SDK caller is answered by a plain server, and its request carries the documented properties', async () => {
    const conn = await amqp.connect(node.url);
    const ch = await conn.createChannel();
    const q = requestQueueName('wire.plain');
    await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const seen: amqp.ConsumeMessage[] = [];
    await ch.consume(q, (m) => {
      if (m === null) return;
      seen.push(m);
      const n = (JSON.parse(m.content.toString()) as { n: number }).n;
      ch.sendToQueue(m.properties.replyTo as string, Buffer.from(JSON.stringify(n * 2)), {
        correlationId: m.properties.correlationId as string, contentType: 'application/json', headers: { 'rpc-status': 'ok' },
      });
      ch.ack(m);
    });
    const caller = await client();
    const before = Date.now();
    expect(await caller.call('wire.plain', { n: 21 }, { timeoutMs: 5_000, idempotent: true })).toBe(42);
    const m = seen[0]!;
    expect(m.properties.replyTo).toMatch(/^amq\.rabbitmq\.reply-to\./);
    expect(m.properties.contentType).toBe('application/json');
    expect(Number(m.properties.expiration)).toBeGreaterThan(4_000);
    expect(Number(m.properties.expiration)).toBeLessThanOrEqual(5_000);
    const h = m.properties.headers as Record<string, unknown>;
    expect(Number(h['rpc-deadline'])).toBeGreaterThanOrEqual(before + 5_000);
    expect(Number(h['rpc-deadline'])).toBeLessThan(before + 6_000);
    expect(h['rpc-idempotent']).toBe(true);
    expect(h['rpc-attempt']).toBe(1);
    await conn.close();
  });
});
