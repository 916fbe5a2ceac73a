// The addresses a node binds and advertises, as an operator meets them: --cluster-bind defaults to
// --bind, --advertise to the bind address or, on a wildcard, the host's first non-loopback address;
// IPv6 in brackets; a node refuses an advertised address it cannot be reached at, saying why. Then
// real processes: two nodes forming a cluster over IPv6 loopback, and the refusals as exit codes.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { firstNonLoopback, hostOf, hostPort, planAddresses, type LocalAddress } from '../../src/cli/addresses.js';
import { ConfigError } from '../../src/cli/config-loader.js';
import { parseNodeAddress } from '../../src/cli/node-cluster.js';
import { amqpUrl, eventually, freePorts, killAll, startNode, statusOf } from './cluster-nodes.js';

const root = new URL('../../', import.meta.url).pathname;
const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const tmp = mkdtempSync(join(tmpdir(), 'espresso-addresses-'));
afterAll(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

const host: LocalAddress[] = [
  { address: '127.0.0.1', family: 4, internal: true },
  { address: '::1', family: 6, internal: true },
  { address: '10.201.0.11', family: 4, internal: false },
  { address: 'fe80::1', family: 6, internal: false },
  { address: 'fd00::11', family: 6, internal: false },
];
const asIs = (h: string): string[] => (/^[0-9.]+$|:/.test(h) ? [h] : []);

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).message;
  }
  throw new Error('expected a refusal');
}

describe('bind and advertised addresses', () => {
  it('binds the cluster port where AMQP binds and advertises that address, unless told otherwise', () => {
    expect(planAddresses({ bind: '10.201.0.11', clusterBind: '', advertise: '' }, ['10.201.0.12'], host, asIs))
      .toEqual({ amqpBind: '10.201.0.11', clusterBind: '10.201.0.11', advertise: '10.201.0.11', amqpAdvertise: '10.201.0.11' });
    // AMQP on loopback only: clients are told where AMQP listens, nodes where the cluster port does.
    expect(planAddresses({ bind: '127.0.0.1', clusterBind: '10.201.0.11', advertise: '' }, ['10.201.0.12'], host, asIs))
      .toEqual({ amqpBind: '127.0.0.1', clusterBind: '10.201.0.11', advertise: '10.201.0.11', amqpAdvertise: '127.0.0.1' });
    expect(planAddresses({ bind: '0.0.0.0', clusterBind: '10.201.0.11', advertise: '' }, ['10.201.0.12'], host, asIs).amqpAdvertise).toBe('10.201.0.11');
    expect(planAddresses({ bind: '0.0.0.0', clusterBind: '', advertise: 'fd00::11' }, [], host, asIs).advertise).toBe('fd00::11');
  });

  it('on 0.0.0.0 or :: advertises the first non-loopback address (not a link-local IPv6 one)', () => {
    expect(planAddresses({ bind: '0.0.0.0', clusterBind: '', advertise: '' }, ['10.201.0.12'], host, asIs).advertise).toBe('10.201.0.11');
    expect(planAddresses({ bind: '::', clusterBind: '', advertise: '' }, ['fd00::12'], host, asIs).advertise).toBe('fd00::11');
    expect(firstNonLoopback('::', host.filter((a) => a.address !== 'fd00::11'))).toBe('10.201.0.11');
    // A host with loopback only: advertise loopback (fine for a cluster on this host alone).
    expect(planAddresses({ bind: '0.0.0.0', clusterBind: '', advertise: '' }, ['127.0.0.1'], host.slice(0, 2), asIs).advertise).toBe('127.0.0.1');
  });

  it('refuses a loopback advertised address while the nodes it dials are on other hosts', () => {
    const m = refusal(() => planAddresses({ bind: '127.0.0.1', clusterBind: '', advertise: '' }, ['127.0.0.1', '10.201.0.12'], host, asIs));
    expect(m).toContain('loopback');
    expect(m).toContain('10.201.0.12');
    expect(refusal(() => planAddresses({ bind: '0.0.0.0', clusterBind: '', advertise: '' }, ['10.201.0.12'], host.slice(0, 2), asIs))).toContain('loopback');
  });

  it('refuses an advertised address that is not this host, not where the cluster port listens, a wildcard, or a name that does not resolve', () => {
    expect(refusal(() => planAddresses({ bind: '0.0.0.0', clusterBind: '', advertise: '10.9.9.9' }, [], host, asIs))).toContain('not an address of this host');
    expect(refusal(() => planAddresses({ bind: '10.201.0.11', clusterBind: '', advertise: 'fd00::11' }, [], host, asIs))).toContain('--cluster-bind 10.201.0.11');
    expect(refusal(() => planAddresses({ bind: '0.0.0.0', clusterBind: '', advertise: '0.0.0.0' }, [], host, asIs))).toContain('wildcard');
    expect(refusal(() => planAddresses({ bind: '0.0.0.0', clusterBind: '', advertise: 'nowhere.invalid' }, [], host, asIs))).toContain('does not resolve');
    // A name that resolves to this host is fine (a Kubernetes pod's own DNS name).
    expect(planAddresses({ bind: '0.0.0.0', clusterBind: '', advertise: 'n1.espresso' }, [], host, () => ['10.201.0.11']).advertise).toBe('n1.espresso');
  });

  it('writes and reads IPv6 hosts in brackets', () => {
    expect(hostPort('fd00::11', 25672)).toBe('[fd00::11]:25672');
    expect(hostPort('10.0.0.1', 25672)).toBe('10.0.0.1:25672');
    expect(hostOf('[fd00::11]:25672')).toBe('fd00::11');
    expect(hostOf('n1.espresso.svc:25672')).toBe('n1.espresso.svc');
    expect(parseNodeAddress('n1@[fd00::11]:25672', '--seeds')).toEqual({ id: 'n1', address: '[fd00::11]:25672' });
    expect(() => parseNodeAddress('n1@fd00::11:25672', '--seeds')).toThrow(/brackets/);
  });
});

describe('addresses on real processes', () => {
  it('forms a two-node cluster over IPv6 loopback and tells clients [::1] addresses', async () => {
    const [a1, a2, c1, c2] = await freePorts(4);
    const seeds = `n1@[::1]:${c1!},n2@[::1]:${c2!}`;
    const nodes = [['n1', a1!, c1!], ['n2', a2!, c2!]].map(([name, amqpPort, clusterPort]) => startNode({
      name: name as string, amqpPort: amqpPort as number, clusterPort: clusterPort as number, dataDir: join(tmp, `v6-${String(name)}`),
      secret: 's', seeds, extraArgs: ['--bind', '::1'], host: '::1',
    }));
    await Promise.all(nodes.map((n) => n.ready));
    await eventually('n2 sees both nodes alive', async () => (await statusOf(nodes[1]!)).nodes.filter((n) => n.status === 'alive').length === 2);
    const status = await statusOf(nodes[1]!);
    expect(status.nodes.map((n) => n.clusterAddress)).toEqual([`[::1]:${c1!}`, `[::1]:${c2!}`]);
    expect(status.nodes.map((n) => n.amqpAddress)).toEqual([`[::1]:${a1!}`, `[::1]:${a2!}`]);
    const conn = await amqp.connect(amqpUrl(nodes[0]!));
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('v6-q', { durable: true });
    ch.sendToQueue('v6-q', Buffer.from('over ipv6'), { persistent: true });
    await ch.waitForConfirms();
    await conn.close();
    const other = await amqp.connect(amqpUrl(nodes[1]!));
    const got = await (await other.createChannel()).get('v6-q', { noAck: true });
    expect(got !== false && got.content.toString()).toBe('over ipv6');
    await other.close();
  }, 60_000);

  it('refuses to start, exit 78, with an advertised address that is not this host or is loopback among remote seeds', () => {
    const run = (args: string[]): { status: number | null; stderr: string } => {
      const r = spawnSync(process.execPath, ['--import', tsxLoader, join(root, 'src/cli/main.ts'), 'server', '--port', '0', '--data-dir', join(tmp, 'refuse'), ...args],
        { cwd: tmp, encoding: 'utf8', timeout: 30_000, env: { ...process.env, ESPRESSO_CLUSTER_SECRET: 's' } });
      return { status: r.status, stderr: r.stderr };
    };
    const foreign = run(['--advertise', '192.0.2.7']);
    expect(foreign.status).toBe(78);
    expect(foreign.stderr).toContain('192.0.2.7');
    expect(foreign.stderr).toContain('not an address of this host');
    const loop = run(['--cluster-port', '0', '--node-id', 'n1', '--seeds', 'n1@127.0.0.1:1,n2@192.0.2.8:25672']);
    expect(loop.status).toBe(78);
    expect(loop.stderr).toContain('loopback');
    expect(loop.stderr).toContain('192.0.2.8');
  }, 60_000);
});
