// The three shipped plugins on a 3-node cluster of server processes: x-consistent-hash spreads
// keys by weight and sends a key to the same queue from every node; x-delayed-message holds
// messages for x-delay ms in replicated queues, so they arrive on time after the node that took
// them is killed with SIGKILL; auth-http admits and refuses users and resources as a
// rabbitmq_auth_backend_http service on loopback answers. A node loading other exchange-type
// plugins is refused at join, naming the plugin.

import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../../cluster/ports.js';
import { amqpUrl, clusterAddress, killAll, seededSpecs, startNode, type NodeProc } from '../cli/cluster-nodes.js';
import { replyCodeOf } from '../broker/helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'espresso-shipped-'));
const secret = 'shipped-plugins';
const nodes = new Map<string, NodeProc>();
const conns: amqp.ChannelModel[] = [];
const asked: Array<{ path: string; params: Record<string, string> }> = [];
let http: Server;

/** A rabbitmq_auth_backend_http service: alice/pw may do anything but configure 'secret-q'. */
function authService(): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const params = Object.fromEntries(url.searchParams);
    asked.push({ path: url.pathname, params });
    const answer = (() => {
      switch (url.pathname) {
        case '/auth/user': return params['username'] === 'alice' && params['password'] === 'pw' ? 'allow management policymaker' : 'deny';
        case '/auth/vhost': return params['username'] === 'alice' && params['vhost'] === '/' ? 'allow' : 'deny';
        case '/auth/resource': return params['name'] === 'secret-q' ? 'deny no secrets' : 'allow';
        case '/auth/topic': return 'allow';
        default: return null;
      }
    })();
    if (answer === null) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(`${answer}\n`);
  });
}

function pluginArgs(httpPort: number, plugins: readonly string[]): string[] {
  const base = `http://127.0.0.1:${httpPort}/auth`;
  const config = { 'auth-http': { user_path: `${base}/user`, vhost_path: `${base}/vhost`, resource_path: `${base}/resource`, topic_path: `${base}/topic`, request_timeout: 5000 } };
  return [...plugins.flatMap((p) => ['--plugin', p]), '--plugin-config', JSON.stringify(config)];
}

async function connect(name: string, user = 'guest', pass = 'guest'): Promise<amqp.ChannelModel> {
  const n = nodes.get(name)!;
  const c = await amqp.connect(amqpUrl(n).replace('guest:guest', `${user}:${pass}`));
  c.on('error', () => undefined);
  conns.push(c);
  return c;
}

let httpPort = 0;
beforeAll(async () => {
  [httpPort] = (await freePorts(1)) as [number];
  http = authService();
  await new Promise<void>((resolve) => http.listen(httpPort, '127.0.0.1', resolve));
  for (const spec of await seededSpecs(3, tmp, secret)) {
    nodes.set(spec.name, startNode({ ...spec, extraArgs: pluginArgs(httpPort, ['consistent-hash', 'delayed-message', 'auth-http']) }));
  }
  await Promise.all([...nodes.values()].map((n) => n.ready));
}, 90_000);

afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  killAll();
  await new Promise<void>((resolve) => http.close(() => resolve()));
  rmSync(tmp, { recursive: true, force: true });
});

/** Consumes `queues` until `count` messages came; each message's queue by its routing key. */
async function drain(ch: amqp.Channel, queues: readonly string[], count: number): Promise<Map<string, string[]>> {
  const seen = new Map<string, string[]>();
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got} of ${count} messages`)), 30_000);
    for (const q of queues) {
      void ch.consume(q, (m) => {
        if (m === null) return;
        const list = seen.get(m.fields.routingKey) ?? [];
        list.push(q);
        seen.set(m.fields.routingKey, list);
        if (++got === count) {
          clearTimeout(timer);
          resolve();
        }
      }, { noAck: true });
    }
  });
  return seen;
}

describe('shipped plugins on a 3-node cluster', () => {
  it('auth-http admits and refuses users and resources as the HTTP service says, on any node', async () => {
    const c = await connect('n2', 'alice', 'pw');
    const ch = await c.createChannel();
    await ch.assertQueue('alice-q', { durable: true });
    ch.on('error', () => undefined);
    expect(await replyCodeOf(ch.assertQueue('secret-q', { durable: true }))).toBe(403);
    await expect(connect('n3', 'mallory', 'pw')).rejects.toThrow();
    await expect(connect('n1', 'alice', 'wrong')).rejects.toThrow();
    expect(asked).toContainEqual({ path: '/auth/user', params: { username: 'alice', password: 'pw' } });
    expect(asked).toContainEqual({ path: '/auth/vhost', params: expect.objectContaining({ username: 'alice', vhost: '/', ip: '127.0.0.1', tags: 'management policymaker' }) });
    expect(asked).toContainEqual({ path: '/auth/resource', params: expect.objectContaining({ username: 'alice', vhost: '/', resource: 'queue', name: 'secret-q', permission: 'configure' }) });
    // guest is no user of the service: the internal users still admit it.
    await connect('n1');
  });

  it('x-consistent-hash sends each key to one queue whichever node it is published on, by weight', async () => {
    const setup = await (await connect('n1')).createConfirmChannel();
    await setup.assertExchange('hashed', 'x-consistent-hash', { durable: true });
    const queues = ['hash-1', 'hash-2', 'hash-3'];
    for (const [i, q] of queues.entries()) {
      await setup.assertQueue(q, { durable: true });
      await setup.bindQueue(q, 'hashed', i === 2 ? '2' : '1');
    }
    const keys = Array.from({ length: 200 }, (_, i) => `order-${i}`);
    for (const name of ['n2', 'n3']) {
      const ch = await (await connect(name)).createConfirmChannel();
      for (const k of keys) ch.publish('hashed', k, Buffer.from(k));
      await ch.waitForConfirms();
    }
    const byKey = await drain(await (await connect('n1')).createChannel(), queues, 400);
    const perQueue = new Map(queues.map((q) => [q, 0]));
    for (const k of keys) {
      const where = byKey.get(k)!;
      expect(where).toHaveLength(2);
      expect(where[0]).toBe(where[1]);
      perQueue.set(where[0]!, perQueue.get(where[0]!)! + 1);
    }
    // Weights 1:1:2 over 200 keys: every queue gets keys, the weight-2 one the most.
    expect(Math.min(...perQueue.values())).toBeGreaterThan(20);
    expect(perQueue.get('hash-3')).toBeGreaterThan(Math.max(perQueue.get('hash-1')!, perQueue.get('hash-2')!));
  });

  it('x-consistent-hash hashes a header when asked, and refuses contradictory arguments with 406', async () => {
    const c = await connect('n2');
    const ch = await c.createConfirmChannel();
    await ch.assertExchange('by-user', 'x-consistent-hash', { durable: true, arguments: { 'hash-header': 'user' } });
    for (const q of ['user-1', 'user-2']) {
      await ch.assertQueue(q, { durable: true });
      await ch.bindQueue(q, 'by-user', '1');
    }
    for (let i = 0; i < 20; i++) ch.publish('by-user', `key-${i}`, Buffer.from('x'), { headers: { user: 'the-same-user' } });
    await ch.waitForConfirms();
    const counts = [(await ch.checkQueue('user-1')).messageCount, (await ch.checkQueue('user-2')).messageCount].sort();
    expect(counts).toEqual([0, 20]);
    const bad = await c.createChannel();
    let text = '';
    bad.on('error', () => undefined);
    await bad.assertExchange('both', 'x-consistent-hash', { arguments: { 'hash-header': 'a', 'hash-property': 'message_id' } }).catch((e: Error) => { text = e.message; });
    expect(text).toContain('406');
    expect(text).toContain('hash-header and hash-property are mutually exclusive');
  });

  it('a node loading other exchange-type plugins is refused at join, naming the plugin', async () => {
    const [amqpPort, clusterPort] = await freePorts(2);
    const n4 = startNode({
      name: 'n4', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(tmp, 'n4'), secret,
      join: clusterAddress(nodes.get('n1')!), extraArgs: pluginArgs(httpPort, ['consistent-hash', 'auth-http']),
    });
    const code = await n4.exited;
    expect(code).not.toBe(0);
    expect(n4.output()).toContain("plugin 'delayed-message@1.0.0' is loaded in the cluster but not on the joining node");
  });

  it('x-delayed-message holds messages for x-delay ms in replicated queues: they arrive on time after the receiving node is killed', async () => {
    const setup = await (await connect('n1')).createChannel();
    await setup.assertExchange('later', 'x-delayed-message', { durable: true, arguments: { 'x-delayed-type': 'direct' } });
    await setup.assertQueue('later-q', { durable: true });
    await setup.bindQueue('later-q', 'later', 'job');
    const delayMs = 8000;
    const publisher = await (await connect('n3')).createConfirmChannel();
    for (let i = 0; i < 5; i++) publisher.publish('later', 'job', Buffer.from(`delayed-${i}`), { headers: { 'x-delay': delayMs } });
    publisher.publish('later', 'job', Buffer.from('now'));
    await publisher.waitForConfirms();
    const publishedAt = Date.now();
    nodes.get('n3')!.child.kill('SIGKILL');
    await nodes.get('n3')!.exited;
    const arrivals: Array<{ body: string; afterMs: number }> = [];
    const consumer = await (await connect('n1')).createChannel();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${JSON.stringify(arrivals)}`)), delayMs + 30_000);
      void consumer.consume('later-q', (m) => {
        if (m === null) return;
        arrivals.push({ body: m.content.toString(), afterMs: Date.now() - publishedAt });
        if (arrivals.length === 6) {
          clearTimeout(timer);
          resolve();
        }
      }, { noAck: true });
    });
    expect(arrivals[0]!.body).toBe('now');
    const delayed = arrivals.slice(1);
    expect(delayed.map((a) => a.body).sort()).toEqual(['delayed-0', 'delayed-1', 'delayed-2', 'delayed-3', 'delayed-4']);
    // Never early (a little slack for the confirm's own round trip); late only by elections and hops.
    for (const a of delayed) expect(a.afterMs).toBeGreaterThanOrEqual(delayMs - 200);
  }, 90_000);
});
