// A plugin written in the test, loaded by a real `espresso server` process with --plugin: its
// exchange type routes and validates bindings (406), its publish interceptor stamps a header and
// refuses a publish (a nack under confirms, a channel error otherwise), its deliver interceptor
// adds a header, its auth backend admits, refuses and authorizes users before the internal users,
// its lifecycle listeners hear connections, queues and leaders; a failing exchange type fails
// only the publish. Broken plugins stop the node with a message naming them.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, freePorts, killAll, startNode, type NodeProc } from '../cli/cluster-nodes.js';
import { replyCodeOf } from '../broker/helpers.js';
import { brokenSetupSource, notAPluginSource, testPluginSource } from './test-plugin.js';

const tmp = mkdtempSync(join(tmpdir(), 'espresso-plugin-'));
const pluginFile = join(tmp, 'test-plugin.mjs');
const eventsFile = join(tmp, 'events.jsonl');
writeFileSync(pluginFile, testPluginSource);
let node: NodeProc;
let url: string;
const conns: amqp.ChannelModel[] = [];

async function connect(user = 'guest', pass = 'guest'): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(`amqp://${user}:${pass}@127.0.0.1:${node.spec.amqpPort}`);
  c.on('error', () => undefined);
  conns.push(c);
  return c;
}

beforeAll(async () => {
  const [amqpPort, clusterPort] = await freePorts(2);
  node = startNode({
    name: 'p1', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(tmp, 'p1'), secret: 'plugin-secret',
    extraArgs: ['--plugin', pluginFile, '--plugin-config', JSON.stringify({ 'test-plugin': { eventsFile } })],
  });
  await node.ready;
  url = `amqp://guest:guest@127.0.0.1:${amqpPort!}`;
}, 60_000);

afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

function events(): Array<{ event: string; [k: string]: unknown }> {
  if (!existsSync(eventsFile)) return [];
  return readFileSync(eventsFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event: string });
}

describe('a plugin loaded by a server process', () => {
  it('logs that it loaded, with its exchange types', () => {
    expect(node.output()).toContain('"event":"plugin loaded"');
    expect(node.output()).toContain('"exchangeTypes":"x-first-letter,x-broken"');
    expect(node.output()).toContain('"plugins":"test-plugin@0.0.1"');
  });

  it('adds an exchange type that routes by its rule and refuses bad bindings with 406', async () => {
    const c = await connect();
    const ch = await c.createConfirmChannel();
    await ch.assertExchange('letters', 'x-first-letter', { durable: true });
    for (const q of ['qa', 'qb']) await ch.assertQueue(q, { durable: true });
    await ch.bindQueue('qa', 'letters', 'a');
    await ch.bindQueue('qb', 'letters', 'b');
    ch.publish('letters', 'apple', Buffer.from('1'));
    ch.publish('letters', 'banana', Buffer.from('2'));
    ch.publish('letters', 'avocado', Buffer.from('3'));
    ch.publish('letters', 'cherry', Buffer.from('4'));
    await ch.waitForConfirms();
    expect((await ch.checkQueue('qa')).messageCount).toBe(2);
    expect((await ch.checkQueue('qb')).messageCount).toBe(1);
    const bad = await c.createChannel();
    bad.on('error', () => undefined);
    let text = '';
    await bad.bindQueue('qa', 'letters', 'abc').catch((e: Error) => { text = e.message; });
    expect(text).toContain('406');
    expect(text).toContain('x-first-letter binding keys are one letter, got "abc"');
    // A type no plugin added is still refused.
    const other = await c.createChannel();
    let unknown = '';
    other.on('error', () => undefined);
    await other.assertExchange('nope', 'x-not-loaded').catch((e: Error) => { unknown = e.message; });
    expect(unknown).toContain("invalid exchange type 'x-not-loaded'");
  });

  it('stamps a header and a property on publish and a header on delivery', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    await ch.assertQueue('stamped', { durable: true });
    ch.sendToQueue('stamped', Buffer.from('y'), { headers: { kept: 7 } });
    let got: amqp.GetMessage | false = false;
    await eventually('the stamped message', async () => (got = await ch.get('stamped', { noAck: true })) !== false);
    const msg = got as unknown as amqp.GetMessage;
    expect(msg.properties.headers).toMatchObject({ kept: 7, 'x-stamped': 'by p1' });
    expect(msg.properties.appId).toBe('test-plugin');
    const delivered = new Promise<amqp.ConsumeMessage>((resolve) => {
      void ch.consume('stamped', (d) => { if (d !== null) resolve(d); }, { noAck: true });
    });
    ch.sendToQueue('stamped', Buffer.from('z'));
    const d = await delivered;
    expect(d.properties.headers).toMatchObject({ 'x-stamped': 'by p1', 'x-delivered-from': 'stamped' });
  });

  it('refuses a publish: a nack under confirms, a channel error without them; the connection serves on', async () => {
    const c = await connect();
    const confirming = await c.createConfirmChannel();
    await confirming.assertQueue('guarded', { durable: true });
    const outcome = await new Promise<string>((resolve) => {
      confirming.sendToQueue('guarded', Buffer.from('no'), { headers: { forbidden: true } }, (err) => resolve(err === null || err === undefined ? 'ack' : 'nack'));
    });
    expect(outcome).toBe('nack');
    await new Promise<void>((resolve, reject) => confirming.sendToQueue('guarded', Buffer.from('yes'), {}, (err) => (err ? reject(err) : resolve())));
    const plain = await c.createChannel();
    const closed = new Promise<string>((resolve) => plain.on('error', (e: Error) => resolve(e.message)));
    plain.sendToQueue('guarded', Buffer.from('no'), { headers: { forbidden: 1 } });
    const text = await closed;
    expect(text).toContain('406');
    expect(text).toContain('forbidden header on guarded');
    expect((await confirming.checkQueue('guarded')).messageCount).toBe(1);
  });

  it('a failing exchange type fails that publish only, and the node keeps serving', async () => {
    const c = await connect();
    const ch = await c.createConfirmChannel();
    await ch.assertExchange('fragile', 'x-broken', { durable: true });
    const outcome = await new Promise<string>((resolve) => {
      ch.publish('fragile', 'boom', Buffer.from('x'), {}, (err) => resolve(err === null || err === undefined ? 'ack' : 'nack'));
    });
    expect(outcome).toBe('nack');
    await new Promise<void>((resolve, reject) => ch.publish('fragile', 'fine', Buffer.from('x'), {}, (err) => (err ? reject(err) : resolve())));
    await eventually('the failure in the log', async () => node.output().includes('cannot route boom') && node.output().includes('"routeFailures":1'));
    const again = await amqp.connect(url);
    await again.close();
  });

  it('admits, refuses and authorizes users through its auth backend before the internal users', async () => {
    const c = await connect('plugin-user', 'secret');
    const ch = await c.createChannel();
    await ch.assertQueue('plugin-users-queue', { durable: true });
    await ch.bindQueue('plugin-users-queue', 'amq.topic', 'orders.eu');
    ch.sendToQueue('plugin-users-queue', Buffer.from('by plugin-user'));
    await eventually('the publish', async () => (await ch.checkQueue('plugin-users-queue')).messageCount === 1);
    // The backend was asked what RabbitMQ asks, with RabbitMQ's names (the default exchange is amq.default).
    const asked = events().filter((e) => e.event === 'authorize');
    expect(asked).toContainEqual(expect.objectContaining({ kind: 'vhost', user: 'plugin-user', vhost: '/', ip: '127.0.0.1', tags: ['monitoring'] }));
    expect(asked).toContainEqual(expect.objectContaining({ kind: 'resource', resource: 'queue', name: 'plugin-users-queue', permission: 'configure' }));
    expect(asked).toContainEqual(expect.objectContaining({ kind: 'resource', resource: 'exchange', name: 'amq.topic', permission: 'read' }));
    expect(asked).toContainEqual(expect.objectContaining({ kind: 'topic', name: 'amq.topic', routingKey: 'orders.eu', permission: 'read' }));
    expect(asked).toContainEqual(expect.objectContaining({ kind: 'resource', resource: 'exchange', name: 'amq.default', permission: 'write' }));
    ch.on('error', () => undefined);
    expect(await replyCodeOf(ch.assertQueue('forbidden-queue', { durable: true }))).toBe(403);
    // The node's log line of the channel error may come after the client heard the close.
    await eventually('the refusal in the log', async () => node.output().includes("configure access to queue 'forbidden-queue' in vhost '/' refused for user 'plugin-user'"));
    await expect(amqp.connect(`amqp://plugin-user:wrong@127.0.0.1:${node.spec.amqpPort}`)).rejects.toThrow(/ACCESS_REFUSED|403|Handshake terminated/);
    // Users the backend does not know fall through to the internal ones.
    const guest = await connect();
    await guest.close();
    await expect(amqp.connect(`amqp://nobody:x@127.0.0.1:${node.spec.amqpPort}`)).rejects.toThrow();
  });

  it('tells its lifecycle listeners about connections, queues and leaders', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    await ch.assertQueue('lifecycle-q', { durable: false });
    await ch.deleteQueue('lifecycle-q');
    await c.close();
    await eventually('the events', async () => {
      const seen = new Set(events().map((e) => e.event));
      return ['connection.opened', 'connection.closed', 'queue.declared', 'queue.deleted', 'leader.changed'].every((e) => seen.has(e));
    });
    const list = events();
    expect(list).toContainEqual(expect.objectContaining({ event: 'queue.declared', name: 'lifecycle-q', vhost: '/', durable: false }));
    expect(list).toContainEqual(expect.objectContaining({ event: 'queue.deleted', name: 'lifecycle-q' }));
    expect(list).toContainEqual(expect.objectContaining({ event: 'connection.opened', user: 'plugin-user', vhost: '/' }));
    expect(list).toContainEqual(expect.objectContaining({ event: 'leader.changed', leader: 'p1' }));
  });
});

describe('a broken plugin stops the node with a message naming it', () => {
  async function startWith(file: string, source: string | null): Promise<{ code: number | null; output: string }> {
    const path = join(tmp, file);
    if (source !== null) writeFileSync(path, source);
    const [amqpPort, clusterPort] = await freePorts(2);
    const n = startNode({ name: 'bad', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(tmp, `bad-${file}`), secret: 's', extraArgs: ['--plugin', path] });
    const code = await n.exited;
    return { code, output: n.output() };
  }

  it('when its setup throws', async () => {
    const r = await startWith('broken.mjs', brokenSetupSource);
    expect(r.code).toBe(78);
    expect(r.output).toContain("plugin 'broken-setup'");
    expect(r.output).toContain('failed in setup: missing setting xyz');
  });

  it('when the module is not a plugin', async () => {
    const r = await startWith('not-a-plugin.mjs', notAPluginSource);
    expect(r.code).toBe(78);
    expect(r.output).toContain('is not a plugin: its default export must be { name, version, setup(api) }');
  });

  it('when the file does not exist', async () => {
    const r = await startWith('missing.mjs', null);
    expect(r.code).toBe(66);
    expect(r.output).toContain("plugin '");
    expect(r.output).toContain('not found');
  });
});
