// Permissions across a cluster: three nodes in one process (group host, rpc, metadata group over
// three voters, AMQP broker each). A permission set through node 1 governs a channel already open
// on node 3 from the next method on, both ways (revoked: 403 with RabbitMQ's text; granted again:
// allowed), for a replicated queue; the same matrix of methods as on one node holds on node 2.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/broker/auth.js';
import { defaultBrokerConfig } from '../../src/broker/config.js';
import { startBroker, type BrokerServer } from '../../src/broker/server.js';
import { GroupHost } from '../../src/cluster/group-host.js';
import { ReplicatedMetadataClient } from '../../src/cluster/metadata-group.js';
import { ClusterRpc } from '../../src/cluster/rpc.js';
import { nodeId } from '../../src/lib/ids.js';
import { silentLogger } from '../../src/lib/log.js';
import { SeededRandom } from '../../src/lib/random.js';
import { declareFixtures, matrix, outcome, type Perms } from '../broker/permission-matrix.js';

interface Node {
  readonly host: GroupHost;
  readonly rpc: ClusterRpc;
  readonly metadata: ReplicatedMetadataClient;
  readonly broker: BrokerServer;
}

const ids = ['n1', 'n2', 'n3'].map(nodeId);
let root = '';
let nodes: Node[] = [];
const conns: amqp.ChannelModel[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'espresso-permissions-'));
  const hosts = await Promise.all(ids.map((id, i) => GroupHost.start({
    nodeId: id, dataDir: join(root, id), listen: { host: '127.0.0.1', port: 0 }, secret: 'perm-test', random: new SeededRandom(i + 31),
  })));
  for (const a of hosts) for (const b of hosts) if (a !== b) a.addPeer(b.nodeId, `127.0.0.1:${b.port}`);
  const rpcs = hosts.map((h) => new ClusterRpc(h.transport, silentLogger));
  const metas = await Promise.all(hosts.map((h, i) => ReplicatedMetadataClient.start({
    groupHost: h, members: ids, rpc: rpcs[i]!, self: { id: h.nodeId, clusterAddress: `127.0.0.1:${h.port}`, amqpAddress: '', version: 'test' },
    defaultUser: { name: 'guest', passwordHash: hashPassword('guest'), tags: ['administrator'] },
  })));
  for (let i = 0; i < hosts.length; i++) {
    const broker = await startBroker({ ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0 }, {
      logger: silentLogger, clock: { nowMs: () => Date.now() }, cluster: { groupHost: hosts[i]!, metadata: metas[i]!, rpc: rpcs[i]! },
    });
    nodes.push({ host: hosts[i]!, rpc: rpcs[i]!, metadata: metas[i]!, broker });
  }
  await must(nodes[0]!.metadata.apply({ kind: 'addUser', name: 'bob', passwordHash: hashPassword('bob-secret'), tags: [] }));
  await grant(0, { configure: '.*', write: '.*', read: '.*' });
}, 30_000);

afterAll(async () => {
  for (const c of conns.splice(0)) await c.close().catch(() => undefined);
  for (const n of nodes) {
    await n.broker.close();
    n.rpc.close();
    await n.metadata.close();
    await n.host.close();
  }
  nodes = [];
  rmSync(root, { recursive: true, force: true });
}, 30_000);

async function must(p: Promise<{ ok: boolean }>): Promise<void> {
  expect((await p).ok).toBe(true);
}

/** Sets bob's permissions in '/' through node i's metadata client (committed when it resolves). */
function grant(i: number, perms: Perms): Promise<void> {
  return must(nodes[i]!.metadata.apply({ kind: 'setPermissions', user: 'bob', vhost: '/', ...perms }));
}

async function connect(i: number, user = 'guest:guest'): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(`amqp://${user}@127.0.0.1:${nodes[i]!.broker.port}`);
  conns.push(c);
  return c;
}

describe('permissions across nodes', () => {
  it('a permission changed through node 1 applies to a channel open on node 3 from its next method', async () => {
    const admin = await (await connect(0)).createChannel();
    await admin.assertQueue('perm.replicated', { durable: true });
    const ch = await (await connect(2, 'bob:bob-secret')).createConfirmChannel();
    const errors: string[] = [];
    ch.on('error', (e: Error) => errors.push(e.message));
    ch.sendToQueue('perm.replicated', Buffer.from('allowed'));
    await ch.waitForConfirms();
    expect(await ch.get('perm.replicated', { noAck: true })).toMatchObject({ content: Buffer.from('allowed') });

    await grant(0, { configure: '.*', write: '.*', read: '^$' });
    await expect(ch.get('perm.replicated', { noAck: true })).rejects.toThrow(/.+/);
    expect(errors.join('\n')).toContain("403 (ACCESS-REFUSED) with message \"ACCESS_REFUSED - read access to queue 'perm.replicated' in vhost '/' refused for user 'bob'\"");

    // Granted again through node 2: a new channel of the same connection on node 3 reads at once.
    await grant(1, { configure: '.*', write: '.*', read: '.*' });
    const again = await (await connect(2, 'bob:bob-secret')).createChannel();
    expect(await again.get('perm.replicated', { noAck: true })).toBe(false);
  });

  it('every method of the matrix gets RabbitMQ\'s outcome on node 2 with permissions set through node 1', async () => {
    const admin = await connect(0);
    await declareFixtures(await admin.createChannel());
    const bob = await connect(1, 'bob:bob-secret');
    const seen: string[] = [];
    const expected: string[] = [];
    for (const row of matrix) {
      await grant(0, row.perms);
      seen.push(`${row.what}: ${await outcome(bob, row.op)}`);
      expected.push(`${row.what}: ${row.expect}`);
    }
    expect(seen).toEqual(expected);
  }, 60_000);
});
