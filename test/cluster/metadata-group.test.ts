// The metadata group on one real node (group host, WAL in a temp dir, broker on loopback):
// definitions made through AMQP and the metadata client survive a clean restart, transient and
// exclusive queues do not, results are those of the committed entry, and snapshots bound the log.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/broker/auth.js';
import { defaultBrokerConfig, type BrokerConfig } from '../../src/broker/config.js';
import { startBroker, type BrokerServer } from '../../src/broker/server.js';
import { GroupHost } from '../../src/cluster/index.js';
import { ReplicatedMetadataClient } from '../../src/cluster/metadata-group.js';
import { nodeId } from '../../src/lib/ids.js';
import { silentLogger } from '../../src/lib/log.js';
import { listQueues, lookupExchange, lookupQueue, type MetadataCommand } from '../../src/model/index.js';
import { replyCodeOf } from '../broker/helpers.js';

const self = nodeId('n1');
const dirs: string[] = [];
const running: Node[] = [];

interface Node {
  host: GroupHost;
  metadata: ReplicatedMetadataClient;
  broker: BrokerServer;
}

async function startNode(dir: string, snapshotEveryEntries = 1000): Promise<Node> {
  const host = await GroupHost.start({ nodeId: self, dataDir: dir, listen: { host: '127.0.0.1', port: 0 }, secret: 's', logger: silentLogger });
  const metadata = await ReplicatedMetadataClient.start({
    groupHost: host,
    members: [self],
    defaultUser: { name: 'guest', passwordHash: hashPassword('guest'), tags: ['administrator'] },
    snapshotEveryEntries,
  });
  const config: BrokerConfig = { ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0, nodeName: 'espresso@other-name', dataDir: dir };
  const broker = await startBroker(config, { logger: silentLogger, clock: { nowMs: () => Date.now() }, cluster: { groupHost: host, metadata } });
  const node = { host, metadata, broker };
  running.push(node);
  return node;
}

async function stopNode(node: Node): Promise<void> {
  running.splice(running.indexOf(node), 1);
  await node.broker.close();
  await node.metadata.close();
  await node.host.close();
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'espresso-meta-'));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  for (const n of [...running]) await stopNode(n);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function url(node: Node, user = 'guest:guest'): string {
  return `amqp://${user}@127.0.0.1:${node.broker.port}`;
}

function declareQueue(name: string): MetadataCommand {
  return {
    kind: 'declareQueue', vhost: '/', name, passive: false, durable: true, exclusive: false, autoDelete: false,
    arguments: {}, connection: { connectionId: 'c1', nodeId: self },
  };
}

function declareExchange(type: string, passive = false): MetadataCommand {
  return { kind: 'declareExchange', vhost: '/', name: 'x', type, passive, durable: true, autoDelete: false, internal: false, arguments: {} };
}

describe('metadata group on one node', () => {
  it('keeps exchanges, queues, bindings, users and policies across a restart; drops transient and exclusive queues', async () => {
    const dir = tempDir();
    let node = await startNode(dir);
    const conn = await amqp.connect(url(node));
    const ch = await conn.createChannel();
    await ch.assertExchange('orders', 'topic', { durable: true });
    await ch.assertQueue('eu-orders', { durable: true });
    await ch.bindQueue('eu-orders', 'orders', 'eu.#');
    await ch.assertQueue('scratch', { durable: false });
    await ch.assertQueue('mine', { durable: true, exclusive: true });
    const user = await node.metadata.apply({ kind: 'addUser', name: 'alice', passwordHash: hashPassword('secret'), tags: [] });
    expect(user.ok).toBe(true);
    const perms = await node.metadata.apply({ kind: 'setPermissions', user: 'alice', vhost: '/', configure: '.*', write: '.*', read: '.*' });
    expect(perms.ok).toBe(true);
    const policy = await node.metadata.apply({
      kind: 'setPolicy', vhost: '/', name: 'cap', pattern: '^eu-', applyTo: 'queues', priority: 0, definition: { 'max-length': 1 },
    });
    expect(policy.ok).toBe(true);
    await stopNode(node);

    node = await startNode(dir);
    const alice = await amqp.connect(url(node, 'alice:secret'));
    const ach = await alice.createChannel();
    ach.on('error', () => {});
    await ach.checkExchange('orders');
    await ach.checkQueue('eu-orders');
    // The binding routes; the policy caps the queue at one message.
    for (const body of ['a', 'b', 'c']) ach.publish('orders', 'eu.de', Buffer.from(body));
    await ach.assertQueue('probe', { durable: false }); // a round trip: the publishes were handled
    expect((await ach.checkQueue('eu-orders')).messageCount).toBe(1);
    expect(await replyCodeOf(ach.checkQueue('scratch'))).toBe(404);
    const ch2 = await alice.createChannel();
    ch2.on('error', () => {});
    expect(await replyCodeOf(ch2.checkQueue('mine'))).toBe(404);
    await alice.close().catch(() => undefined);
    await conn.close().catch(() => undefined);
  });

  it('an inequivalent redeclare after a restart is refused with 406 and leaves the queue as it was', async () => {
    const dir = tempDir();
    let node = await startNode(dir);
    let conn = await amqp.connect(url(node));
    await (await conn.createChannel()).assertQueue('jobs', { durable: true, arguments: { 'x-max-length': 5 } });
    await conn.close();
    await stopNode(node);
    node = await startNode(dir);
    conn = await amqp.connect(url(node));
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    expect(await replyCodeOf(ch.assertQueue('jobs', { durable: true, arguments: { 'x-max-length': 6 } }))).toBe(406);
    expect(lookupQueue(node.metadata.state, '/', 'jobs')?.arguments['x-max-length']).toBe(5);
    await conn.close().catch(() => undefined);
  });

  it('returns the committed result of each change, errors included, and answers passive declares locally', async () => {
    const node = await startNode(tempDir());
    const before = node.metadata.stats().appliedIndex;
    const first = await node.metadata.apply(declareExchange('fanout'));
    expect(first.ok && first.created).toBe(true);
    const again = await node.metadata.apply(declareExchange('fanout'));
    expect(again.ok && !again.created).toBe(true);
    const clash = await node.metadata.apply(declareExchange('direct'));
    expect(clash.ok ? 0 : clash.replyCode).toBe(406);
    const passive = await node.metadata.apply(declareExchange('fanout', true));
    expect(passive.ok).toBe(true);
    expect(node.metadata.stats().appliedIndex - before).toBe(3);
    expect(lookupExchange(node.metadata.state, '/', 'x')).toBeDefined();
  });

  it('creates the default user only on a new group: a deleted guest stays deleted after a restart', async () => {
    const dir = tempDir();
    let node = await startNode(dir);
    expect((await node.metadata.apply({ kind: 'addUser', name: 'admin', passwordHash: hashPassword('pw'), tags: ['administrator'] })).ok).toBe(true);
    expect((await node.metadata.apply({ kind: 'setPermissions', user: 'admin', vhost: '/', configure: '.*', write: '.*', read: '.*' })).ok).toBe(true);
    expect((await node.metadata.apply({ kind: 'deleteUser', name: 'guest' })).ok).toBe(true);
    await stopNode(node);
    node = await startNode(dir);
    await expect(amqp.connect(url(node))).rejects.toThrow(/ACCESS_REFUSED|403/);
    const admin = await amqp.connect(url(node, 'admin:pw'));
    await admin.close();
  });

  it('snapshots keep the log bounded over many declares, and a restart restores from the snapshot', async () => {
    const dir = tempDir();
    let node = await startNode(dir, 50);
    for (let i = 0; i < 400; i++) {
      const r = await node.metadata.apply(declareQueue(`q${i}`));
      expect(r.ok).toBe(true);
    }
    const s = node.metadata.stats();
    expect(s.snapshots).toBeGreaterThanOrEqual(5);
    expect(s.logEntries).toBeLessThan(150);
    await stopNode(node);
    node = await startNode(dir, 50);
    expect(listQueues(node.metadata.state, '/').map((q) => q.name).sort()).toEqual(Array.from({ length: 400 }, (_, i) => `q${i}`).sort());
    expect(node.metadata.stats().snapshotIndex).toBeGreaterThan(0);
    // A user-visible check too: a restored queue is declared passively over AMQP.
    const conn = await amqp.connect(url(node));
    await (await conn.createChannel()).checkQueue('q399');
    await conn.close();
  });
});
