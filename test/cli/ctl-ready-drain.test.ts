// `espresso ctl ready` (what a readiness probe runs) and `espresso ctl drain NODE` (what a rolling
// upgrade runs before stopping a node) against a cluster of three server processes: a node waiting
// for its metadata group is not ready and says why; once formed every node is ready; drain moves
// every queue leader and the metadata leader off the node, which then stops while publishers and
// consumers on the other nodes lose nothing.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  amqpUrl, clusterAddress, eventually, killAll, listQueuesOf, runCtl, seededSpecs, startNode, statusOf, type NodeProc, type NodeSpec,
} from './cluster-nodes.js';

const secret = 'ready-drain-secret';
const tmp = mkdtempSync(join(tmpdir(), 'espresso-drain-'));
let specs: NodeSpec[] = [];
const nodes = new Map<string, NodeProc>();

beforeAll(async () => {
  specs = await seededSpecs(3, tmp, secret);
});
afterAll(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

const ctl = (n: NodeProc | NodeSpec, ...args: string[]) => runCtl(['--cluster-address', `127.0.0.1:${'spec' in n ? n.spec.clusterPort : n.clusterPort}`, '--cluster-secret', secret, ...args]);

describe('ctl ready and ctl drain', () => {
  it('a node still waiting for its metadata group is not ready (exit 1) and says why; once the cluster formed every node is ready', async () => {
    nodes.set('n1', startNode(specs[0]!));
    // n1 alone cannot elect: its cluster port answers, its broker has not started.
    await eventually('n1 answers ctl', async () => (await ctl(specs[0]!, 'cluster-status')).code === 0, 20_000);
    const waiting = await ctl(specs[0]!, 'ready');
    expect(waiting.code).toBe(1);
    expect(waiting.stdout).toContain('not ready');
    expect(waiting.stdout).toContain('still starting');
    for (const s of specs.slice(1)) nodes.set(s.name, startNode(s));
    await Promise.all([...nodes.values()].map((n) => n.ready));
    const conn = await amqp.connect(amqpUrl(nodes.get('n2')!));
    const ch = await conn.createConfirmChannel();
    for (let q = 1; q <= 6; q++) {
      await ch.assertQueue(`drain-q${q}`, { durable: true });
      for (let i = 0; i < 20; i++) ch.sendToQueue(`drain-q${q}`, Buffer.from(`q${q}-m${i}`), { persistent: true });
    }
    await ch.waitForConfirms();
    await conn.close();
    for (const n of nodes.values()) {
      await eventually(`${n.spec.name} is ready`, async () => (await ctl(n, 'ready')).code === 0, 30_000);
    }
    const r = await ctl(nodes.get('n3')!, '--json', 'ready');
    expect(JSON.parse(r.stdout)).toMatchObject({ node: 'n3', ready: true, replicas: 6, reasons: [] });
  }, 120_000);

  it('drain moves every leader off a node (asked through another node); it stops and clients on the others lose nothing', async () => {
    const leaders = await listQueuesOf(nodes.get('n1')!);
    const target = leaders.find((q) => q.leader !== null)!.leader!;
    const via = [...nodes.keys()].find((k) => k !== target)!;
    // A publisher on a node that stays keeps publishing through the drain and the stop.
    const stays = [...nodes.keys()].find((k) => k !== target && k !== via) ?? via;
    const conn = await amqp.connect(amqpUrl(nodes.get(stays)!));
    conn.on('error', () => undefined);
    const ch = await conn.createConfirmChannel();
    let sent = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing && sent < 2000) {
        ch.sendToQueue('drain-q1', Buffer.from(`live-${sent++}`), { persistent: true });
        if (sent % 20 === 0) await ch.waitForConfirms();
      }
      await ch.waitForConfirms();
    })();
    const drained = await ctl(nodes.get(via)!, 'drain', target);
    expect(drained.stderr).toBe('');
    expect(drained.code).toBe(0);
    expect(drained.stdout).toMatch(new RegExp(`^drained: node ${target}`));
    const after = await listQueuesOf(nodes.get(via)!);
    expect(after.filter((q) => q.leader === target)).toEqual([]);
    expect(after.every((q) => q.leader !== null)).toBe(true);
    expect((await statusOf(nodes.get(via)!)).metaLeader).not.toBe(target);
    nodes.get(target)!.child.kill('SIGTERM');
    await nodes.get(target)!.exited;
    publishing = false;
    await publisher;
    await conn.close();
    const reader = await amqp.connect(amqpUrl(nodes.get(via)!));
    const rc = await reader.createChannel();
    const q1 = await rc.checkQueue('drain-q1');
    expect(q1.messageCount).toBe(20 + sent);
    await reader.close();
  }, 120_000);

  it('drain of a node nobody knows, and ready with an argument, are refused with the reason', async () => {
    const live = [...nodes.values()].find((n) => n.child.exitCode === null)!;
    const unknown = await ctl(live, 'drain', 'nobody');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('nobody');
    const bad = await runCtl(['--cluster-address', clusterAddress(live), '--cluster-secret', secret, 'ready', 'n1']);
    expect(bad.code).toBe(64);
  }, 90_000);
});
