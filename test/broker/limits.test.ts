// Brute-force throttling and RabbitMQ's limits with amqplib against one node: a wrong password is
// answered late, repeated failures lock that user out from that address for a while (logged once),
// and per vhost max-connections and max-queues, per user max-connections and max-channels and the
// node's connection rate refuse what is over them with a text naming the limit, set and lifted
// while the node runs.

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/broker/auth.js';
import { defaultBrokerConfig } from '../../src/broker/config.js';
import { LoginThrottle } from '../../src/broker/login-throttle.js';
import { startBroker, type BrokerServer } from '../../src/broker/server.js';
import { createLogger } from '../../src/lib/log.js';
import type { MetadataCommand } from '../../src/model/index.js';

const lines: Array<Record<string, unknown>> = [];
let broker: BrokerServer;
const url = (creds: string): string => `amqp://${creds}@127.0.0.1:${broker.port}`;

async function apply(command: MetadataCommand): Promise<void> {
  const r = await broker.context.metadata.apply(command);
  expect(r.ok).toBe(true);
}

/** The error text a refused connect gives, or 'ok' (the connection is closed again). */
async function tryConnect(creds: string): Promise<string> {
  try {
    const c = await amqp.connect(url(creds));
    await c.close();
    return 'ok';
  } catch (e) {
    return (e as Error).message;
  }
}

beforeAll(async () => {
  const logger = createLogger({ sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>), clock: { nowMs: () => Date.now() }, level: 'info', component: 'test' });
  broker = await startBroker({
    ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0, diskFreeLimitBytes: 0,
    loginFailureDelayMs: 300, loginFailuresMax: 3, loginLockoutMs: 2000,
  }, { logger, clock: { nowMs: () => Date.now() } });
  for (const name of ['bob', 'dave']) {
    await apply({ kind: 'addUser', name, passwordHash: hashPassword(`${name}-secret`), tags: [] });
    await apply({ kind: 'setPermissions', user: name, vhost: '/', configure: '.*', write: '.*', read: '.*' });
  }
});
afterAll(async () => {
  await broker.close();
});

describe('failed-login throttling', () => {
  it('answers a wrong password late, locks the user out from this address after 3 failures, logs it once, and lets it in after the lockout', async () => {
    const started = Date.now();
    expect(await tryConnect('bob:wrong')).toMatch(/ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(await tryConnect('bob:wrong')).toMatch(/ACCESS_REFUSED/);
    expect(await tryConnect('bob:wrong')).toMatch(/ACCESS_REFUSED/);
    // Locked out: the right password is refused too, with the same text (nothing to learn from it).
    expect(await tryConnect('bob:bob-secret')).toMatch(/ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN/);
    expect(await tryConnect('bob:bob-secret')).toMatch(/ACCESS_REFUSED/);
    // Another user from the same address is not affected.
    expect(await tryConnect('dave:dave-secret')).toBe('ok');
    const lockouts = lines.filter((l) => String(l['event']).startsWith('login locked out'));
    expect(lockouts).toHaveLength(1);
    expect(lockouts[0]).toMatchObject({ user: 'bob', address: '127.0.0.1', failures: 3 });
    await new Promise((r) => setTimeout(r, 2100));
    expect(await tryConnect('bob:bob-secret')).toBe('ok');
  });

  it('counts per address and user, starts over after a success, and forgets the oldest pair past its bound', () => {
    const t = new LoginThrottle(() => ({ failuresMax: 2, lockoutMs: 1000, entriesMax: 2 }));
    expect(t.failed('10.0.0.1', 'u', 0)).toBeNull();
    t.succeeded('10.0.0.1', 'u');
    expect(t.failed('10.0.0.1', 'u', 10)).toBeNull();
    expect(t.failed('10.0.0.2', 'u', 20)).toBeNull();
    expect(t.failed('10.0.0.1', 'u', 30)).toBe(1030);
    expect(t.check('10.0.0.1', 'u', 500)).toEqual({ kind: 'locked', untilMs: 1030 });
    expect(t.check('10.0.0.2', 'u', 500)).toEqual({ kind: 'try' });
    expect(t.check('10.0.0.1', 'u', 1030)).toEqual({ kind: 'try' });
    // Failures further apart than the window do not add up.
    expect(t.failed('10.0.0.3', 'v', 0)).toBeNull();
    expect(t.failed('10.0.0.3', 'v', 5000)).toBeNull();
    expect(t.size).toBe(2);
  });
});

describe('limits changed at runtime', () => {
  it('vhost max-connections refuses the connection over it with 530 and lifts when cleared', async () => {
    await apply({ kind: 'setVhostLimits', vhost: '/', maxQueues: null, maxConnections: 2 });
    const open = [await amqp.connect(url('dave:dave-secret')), await amqp.connect(url('dave:dave-secret'))];
    expect(await tryConnect('dave:dave-secret')).toMatch(/ConnectionClose/);
    expect(broker.context.connectionCount()).toBeGreaterThanOrEqual(2);
    await open.pop()!.close();
    expect(await tryConnect('dave:dave-secret')).toBe('ok');
    await apply({ kind: 'setVhostLimits', vhost: '/', maxQueues: null, maxConnections: null });
    const more = [await amqp.connect(url('dave:dave-secret')), await amqp.connect(url('dave:dave-secret'))];
    for (const c of [...open, ...more]) await c.close();
  });

  it('vhost max-queues refuses a new queue with 406 naming the limit; redeclaring an existing one is fine', async () => {
    const conn = await amqp.connect(url('dave:dave-secret'));
    const ch = await conn.createChannel();
    await ch.assertQueue('limited-1', { durable: false });
    const count = broker.context.metadata.state.vhosts.get('/')!.queues.size;
    await apply({ kind: 'setVhostLimits', vhost: '/', maxQueues: count, maxConnections: null });
    await ch.assertQueue('limited-1', { durable: false });
    const errors: string[] = [];
    ch.on('error', (e: Error) => errors.push(e.message));
    await expect(ch.assertQueue('limited-2', { durable: false })).rejects.toThrow(/.+/);
    expect(errors.join()).toContain("PRECONDITION_FAILED - cannot declare queue 'limited-2': queue limit in vhost '/' (" + count + ') is reached');
    await apply({ kind: 'setVhostLimits', vhost: '/', maxQueues: null, maxConnections: null });
    const ch2 = await conn.createChannel();
    await ch2.assertQueue('limited-2', { durable: false });
    await conn.close();
  });

  it('user max-connections and max-channels refuse with 530 naming the user and the limit, and lift', async () => {
    await apply({ kind: 'setUserLimits', user: 'dave', maxConnections: 1, maxChannels: 2 });
    const conn = await amqp.connect(url('dave:dave-secret'));
    expect(await tryConnect('dave:dave-secret')).toMatch(/ConnectionClose/);
    expect(await tryConnect('bob:bob-secret')).toBe('ok');
    const closed = new Promise<string>((resolve) => conn.on('error', (e: Error) => resolve(e.message)));
    await conn.createChannel();
    await conn.createChannel();
    await expect(conn.createChannel()).rejects.toThrow(/.+/);
    expect(await closed).toContain("NOT_ALLOWED - number of channels opened for user 'dave' has reached the maximum allowed user limit of 2");
    await apply({ kind: 'setUserLimits', user: 'dave', maxConnections: null, maxChannels: null });
    const a = await amqp.connect(url('dave:dave-secret'));
    const b = await amqp.connect(url('dave:dave-secret'));
    for (let i = 0; i < 3; i++) await a.createChannel();
    await a.close();
    await b.close();
  });

  it('the node connection rate refuses connections over it with 530, and none once lifted', async () => {
    broker.reconfigure({ maxConnectionRate: 2 });
    const outcomes = await Promise.all(Array.from({ length: 12 }, () => tryConnect('dave:dave-secret')));
    expect(outcomes.filter((o) => o !== 'ok').length).toBeGreaterThanOrEqual(1);
    expect(outcomes.filter((o) => o !== 'ok' && !/ConnectionClose/.test(o))).toEqual([]);
    broker.reconfigure({ maxConnectionRate: 0 });
    const after = await Promise.all(Array.from({ length: 12 }, () => tryConnect('dave:dave-secret')));
    expect(after.every((o) => o === 'ok')).toBe(true);
  });
});
