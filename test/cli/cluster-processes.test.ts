// A cluster of real `espresso server` processes on loopback, formed from one --seeds list:
// definitions made on one node are usable on the others at once, a node with the wrong secret
// cannot join, a fourth node joins, the metadata leader's kill -9 is noticed everywhere and a new
// leader takes declares, ctl forgets the dead node, a restart of every node keeps definitions, and a
// paused node is suspected, marked dead and back after SIGCONT.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyCodeOf } from '../broker/helpers.js';
import {
  amqpUrl, clusterAddress, eventually, freePorts, killAll, runCtl, startNode, statusOf, type NodeProc, type NodeSpec,
} from './cluster-nodes.js';

const secret = 'cluster-test-secret';
const tmp = mkdtempSync(join(tmpdir(), 'espresso-cluster-'));
const nodes = new Map<string, NodeProc>();
let seeds = '';
const specs = new Map<string, NodeSpec>();

afterAll(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

beforeAll(async () => {
  const ports = await freePorts(12);
  const names = ['n1', 'n2', 'n3'];
  seeds = names.map((n, i) => `${n}@127.0.0.1:${ports[3 + i]!}`).join(',');
  names.forEach((name, i) => specs.set(name, { name, amqpPort: ports[i]!, clusterPort: ports[3 + i]!, dataDir: join(tmp, name), secret, seeds }));
  specs.set('n4', { name: 'n4', amqpPort: ports[6]!, clusterPort: ports[7]!, dataDir: join(tmp, 'n4'), secret, join: `127.0.0.1:${ports[4]!}` });
  specs.set('bad', { name: 'bad', amqpPort: ports[8]!, clusterPort: ports[9]!, dataDir: join(tmp, 'bad'), secret: 'not-the-secret', join: `127.0.0.1:${ports[3]!}` });
  specs.set('n5', { name: 'n5', amqpPort: ports[10]!, clusterPort: ports[11]!, dataDir: join(tmp, 'n5'), secret, join: `127.0.0.1:${ports[5]!}` });
  for (const name of names) nodes.set(name, startNode(specs.get(name)!));
  await Promise.all([...nodes.values()].map((n) => n.ready));
}, 60_000);

function node(name: string): NodeProc {
  const n = nodes.get(name);
  if (n === undefined) throw new Error(`node ${name} is not running`);
  return n;
}

async function channelOn(name: string): Promise<{ conn: amqp.ChannelModel; ch: amqp.ConfirmChannel }> {
  const conn = await amqp.connect(amqpUrl(node(name)));
  conn.on('error', () => undefined);
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => undefined);
  return { conn, ch };
}

describe('a cluster of espresso server processes', () => {
  it('forms one cluster from the seeds: every node sees the same leader and three alive voters', async () => {
    for (const name of ['n1', 'n2', 'n3']) {
      await eventually(`${name} sees three alive voters`, async () => {
        const s = await statusOf(node(name));
        return s.voters.length === 3 && s.metaLeader !== null && s.nodes.filter((n) => n.status === 'alive').length === 3;
      });
    }
    const leaders = await Promise.all(['n1', 'n2', 'n3'].map(async (name) => (await statusOf(node(name))).metaLeader));
    expect(new Set(leaders).size).toBe(1);
    const s = await statusOf(node('n2'));
    expect(s.nodes.map((n) => [n.id, n.amqpAddress, n.version])).toEqual(['n1', 'n2', 'n3'].map((id) => [id, `127.0.0.1:${specs.get(id)!.amqpPort}`, '0.1.0']));
  }, 60_000);

  it('uses on n2 and n3 the exchange, queue and binding declared on n1, the moment n1 confirmed them', async () => {
    const a = await channelOn('n1');
    const b = await channelOn('n2');
    const c = await channelOn('n3');
    await a.ch.assertExchange('orders', 'direct', { durable: true });
    await a.ch.assertQueue('orders-q', { durable: true });
    await a.ch.bindQueue('orders-q', 'orders', 'stored');
    await b.ch.checkExchange('orders');
    await b.ch.checkQueue('orders-q');
    // n3 binds its own queue to n1's exchange and gets what it publishes there.
    await c.ch.assertQueue('n3-local', { durable: false, exclusive: true });
    await c.ch.bindQueue('n3-local', 'orders', 'new');
    const got = new Promise<string>((resolve) => void c.ch.consume('n3-local', (m) => m !== null && resolve(m.content.toString()), { noAck: true }));
    c.ch.publish('orders', 'new', Buffer.from('order 1'));
    await c.ch.waitForConfirms();
    expect(await got).toBe('order 1');
    // No wait between the declare-ok on n1 and the use on n2 and n3 (a sync on not-found).
    for (let i = 0; i < 10; i++) {
      await a.ch.assertExchange(`burst-${i}`, 'fanout', { durable: true });
      await b.ch.checkExchange(`burst-${i}`);
      c.ch.publish(`burst-${i}`, '', Buffer.from('x'));
      await c.ch.waitForConfirms();
    }
    expect(await replyCodeOf(b.ch.checkExchange('never-declared'))).toBe(404);
    for (const x of [a, b, c]) await x.conn.close().catch(() => undefined);
  }, 60_000);

  it('refuses a node with the wrong cluster secret, and both sides say why', async () => {
    const bad = startNode(specs.get('bad')!);
    expect(await bad.exited).toBe(69);
    expect(bad.output()).toContain('refused our cluster secret');
    await eventually('n1 logs the refusal', () => Promise.resolve(node('n1').output().includes('wrong cluster secret')), 5_000);
    const s = await statusOf(node('n1'));
    expect(s.nodes.map((n) => n.id)).not.toContain('bad');
  }, 60_000);

  it('joins a fourth node through any member: it becomes a voter and sees the definitions', async () => {
    const n4 = startNode(specs.get('n4')!);
    nodes.set('n4', n4);
    await n4.ready;
    await eventually('n4 is an alive voter on every node', async () => {
      for (const name of ['n1', 'n2', 'n3', 'n4']) {
        const s = await statusOf(node(name));
        const me = s.nodes.find((n) => n.id === 'n4');
        if (me?.status !== 'alive' || !me.voter) return false;
      }
      return true;
    });
    const d = await channelOn('n4');
    await d.ch.checkExchange('orders');
    await d.ch.checkQueue('orders-q');
    await d.conn.close();
  }, 60_000);

  it('kill -9 of the metadata leader: the others mark it dead, elect a new leader and keep taking declares', async () => {
    const victim = (await statusOf(node('n1'))).metaLeader!;
    expect(victim).not.toBeNull();
    node(victim).child.kill('SIGKILL');
    await node(victim).exited;
    nodes.delete(victim);
    const survivors = [...nodes.keys()];
    const detectMs: number[] = [];
    for (const name of survivors) {
      detectMs.push(await eventually(`${name} marks ${victim} dead and knows a new leader`, async () => {
        const s = await statusOf(node(name));
        return s.nodes.find((n) => n.id === victim)?.status === 'dead' && s.metaLeader !== null && s.metaLeader !== victim;
      }, 20_000));
    }
    process.stdout.write(`dead node ${victim} seen dead by ${survivors.join(',')} after ${detectMs.join(',')} ms (from the kill, polled)\n`);
    const a = await channelOn(survivors[0]!);
    const b = await channelOn(survivors[1]!);
    await a.ch.assertExchange('after-failover', 'topic', { durable: true });
    await b.ch.checkExchange('after-failover');
    await a.conn.close();
    await b.conn.close();
    specs.set('victim', specs.get(victim)!);
  }, 60_000);

  it('ctl shows the status, forgets the dead node, and refuses to forget the node it talks to', async () => {
    const victim = specs.get('victim')!.name;
    const [first] = [...nodes.values()];
    const base = ['--cluster-address', clusterAddress(first!), '--cluster-secret', secret];
    const status = await runCtl([...base, 'cluster-status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`${victim}\\s+dead`));
    const forget = await runCtl([...base, 'forget-node', victim]);
    expect(forget.stderr).toBe('');
    expect(forget.code).toBe(0);
    await eventually(`${victim} is gone from the registry and the voters`, async () => {
      const s = await statusOf(first!);
      return !s.voters.includes(victim as never) && !s.nodes.some((n) => n.id === victim);
    });
    const self = await runCtl([...base, 'forget-node', first!.spec.name]);
    expect(self.code).toBe(1);
    expect(self.stderr).toContain('the node this request came through');
    const wrong = await runCtl(['--cluster-address', clusterAddress(first!), '--cluster-secret', 'nope', 'cluster-status']);
    expect(wrong.code).toBe(69);
    expect(wrong.stderr).toContain('refused our cluster secret');
  }, 60_000);

  it('a restart of every node brings all definitions back, even with a node n0 added to the seeds', async () => {
    const names = [...nodes.keys()];
    for (const n of nodes.values()) n.child.kill('SIGTERM');
    expect(await Promise.all([...nodes.values()].map((n) => n.exited))).toEqual(names.map(() => 0));
    // n0 sorts first: the seeds nodes must still host the group with the voters they began with.
    const [unused] = await freePorts(1);
    for (const name of names) {
      const spec = specs.get(name)!;
      nodes.set(name, startNode(spec.seeds === undefined ? spec : { ...spec, seeds: `n0@127.0.0.1:${unused!},${spec.seeds}` }));
    }
    await Promise.all([...nodes.values()].map((n) => n.ready));
    const seedsNodes = names.filter((n) => specs.get(n)!.seeds !== undefined);
    for (const name of seedsNodes) expect(node(name).output()).toContain('keeping the original');
    for (const name of names) {
      const x = await channelOn(name);
      await x.ch.checkExchange('orders');
      await x.ch.checkQueue('orders-q');
      await x.ch.checkExchange('after-failover');
      await x.ch.checkExchange('burst-9');
      await x.conn.close();
    }
    const s = await statusOf(node(names[0]!));
    expect([...s.voters].sort()).toEqual([...names].sort());
  }, 90_000);

  it('a paused (SIGSTOP) node is suspected, then marked dead, and alive again after SIGCONT', async () => {
    const names = [...nodes.keys()];
    const leader = (await statusOf(node(names[0]!))).metaLeader;
    const paused = names.find((n) => n !== leader)!;
    const watcher = node(names.find((n) => n !== paused)!);
    node(paused).child.kill('SIGSTOP');
    const seen: string[] = [];
    try {
      await eventually(`${paused} marked dead while paused`, async () => {
        const st = (await statusOf(watcher)).nodes.find((n) => n.id === paused)?.status ?? 'unknown';
        if (seen[seen.length - 1] !== st) seen.push(st);
        return st === 'dead';
      }, 30_000);
    } finally {
      node(paused).child.kill('SIGCONT');
    }
    expect(seen).toContain('suspect');
    await eventually(`${paused} alive again after SIGCONT`, async () => {
      const s = await statusOf(watcher);
      return s.nodes.find((n) => n.id === paused)?.status === 'alive';
    }, 30_000);
  }, 90_000);

  it('ctl add-node records a node before it runs; started with --join it becomes a voter', async () => {
    const [first] = [...nodes.values()];
    const n5 = { ...specs.get('n5')!, join: clusterAddress(first!) };
    specs.set('n5', n5);
    const add = await runCtl(['--cluster-address', clusterAddress(first!), '--cluster-secret', secret, 'add-node', `n5@127.0.0.1:${n5.clusterPort}`]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/n5\s+(unknown|dead|suspect)\s+learner/);
    nodes.set('n5', startNode(n5));
    await node('n5').ready;
    await eventually('n5 is an alive voter', async () => {
      const me = (await statusOf(first!)).nodes.find((n) => n.id === 'n5');
      return me?.status === 'alive' && me.voter;
    });
  }, 60_000);
});
