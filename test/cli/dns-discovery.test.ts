// Peer discovery by DNS with a resolver the test controls (a tiny DNS server on loopback): a name
// resolving to the nodes' addresses (127.0.0.11-13: the whole of 127/8 is this host's), as a
// Kubernetes headless Service does. Three nodes started at once with --discover-dns form one
// cluster; a fourth whose address is added to the name later finds the running cluster and joins it;
// a node that finds too few peers in time says so. Production uses the system resolver.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverPeers, resolverFor } from '../../src/cli/peer-discovery.js';
import { nodeId } from '../../src/lib/ids.js';
import { silentLogger } from '../../src/lib/log.js';
import { ConfigError } from '../../src/cli/config-loader.js';
import { amqpUrl, eventually, freePorts, killAll, startNode, statusOf, type NodeProc } from './cluster-nodes.js';
import { TestDnsServer } from '../../cluster/dns-server.js';

const tmp = mkdtempSync(join(tmpdir(), 'espresso-dns-'));
const name = 'espresso-nodes.test';
let dns: TestDnsServer;
let ports: number[] = [];
const nodes: NodeProc[] = [];

beforeAll(async () => {
  dns = await TestDnsServer.start();
  ports = await freePorts(2);
});
afterAll(async () => {
  killAll();
  await dns.close();
  rmSync(tmp, { recursive: true, force: true });
});

function start(k: number): NodeProc {
  const ip = `127.0.0.${10 + k}`;
  const n = startNode({
    name: `d${k}`, amqpPort: ports[0]!, clusterPort: ports[1]!, dataDir: join(tmp, `d${k}`), secret: 'dns-secret', host: ip,
    extraArgs: ['--bind', ip, '--discover-dns', name, '--discover-nodes', '3', '--dns-server', dns.address],
  }, 60_000);
  nodes.push(n);
  return n;
}

describe('DNS peer discovery', () => {
  it('resolves A and AAAA records through the given server, sorted', async () => {
    dns.records.set('mixed.test', ['127.0.0.12', '::1', '127.0.0.11']);
    expect(await resolverFor(dns.address)('mixed.test')).toEqual(['127.0.0.11', '127.0.0.12', '::1']);
    await expect(resolverFor(dns.address)('unknown.test')).rejects.toThrow(/no A or AAAA record/);
  });

  it('forms one cluster of the three nodes the name resolves to, started at once', async () => {
    dns.records.set(name, ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
    const three = [1, 2, 3].map(start);
    await Promise.all(three.map((n) => n.ready));
    await eventually('every node sees three voters and the same leader', async () => {
      const all = await Promise.all(three.map(statusOf));
      return all.every((s) => s.voters.length === 3 && s.metaLeader !== null) && new Set(all.map((s) => s.metaLeader)).size === 1;
    }, 30_000);
    const s = await statusOf(three[0]!);
    expect(s.nodes.map((n) => [n.id, n.clusterAddress])).toEqual([1, 2, 3].map((k) => [`d${k}`, `127.0.0.${10 + k}:${ports[1]!}`]));
    expect(three[0]!.output()).toContain('discovery: forming a new cluster');
  }, 90_000);

  it('a node added to the name later finds the running cluster and joins it', async () => {
    const conn = await amqp.connect(amqpUrl(nodes[0]!));
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('dns-q', { durable: true });
    ch.sendToQueue('dns-q', Buffer.from('before d4'), { persistent: true });
    await ch.waitForConfirms();
    await conn.close();
    dns.records.set(name, ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14']);
    const d4 = start(4);
    await d4.ready;
    expect(d4.output()).toContain('discovery: found a running cluster; joining it');
    await eventually('d1 sees d4 alive', async () => (await statusOf(nodes[0]!)).nodes.some((n) => n.id === 'd4' && n.status === 'alive'), 30_000);
    const c4 = await amqp.connect(amqpUrl(d4));
    const got = await (await c4.createChannel()).get('dns-q', { noAck: true });
    expect(got !== false && got.content.toString()).toBe('before d4');
    await c4.close();
  }, 90_000);

  it('gives up, naming what it found, when fewer nodes than wanted answer in time', async () => {
    dns.records.set('lonely.test', ['127.0.0.21']);
    let err: unknown;
    try {
      await discoverPeers({
        name: 'lonely.test', port: ports[1]!, nodes: 3, dnsServer: dns.address, secret: 'dns-secret', tls: undefined,
        self: { id: nodeId('x1'), address: `127.0.0.21:${ports[1]!}` }, logger: silentLogger, timeoutMs: 1_500, probeMs: 300,
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/found 1 of the 3 nodes wanted \(x1\)/);
  }, 30_000);
});
