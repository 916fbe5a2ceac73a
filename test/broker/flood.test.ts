// A flood of publishers at once against a real node process: 30 connections publish 8 KiB messages
// without confirms as fast as amqplib writes them. The memory alarm blocks every one of them
// (connection.blocked) before the node's memory runs away, a consumer connecting meanwhile still
// gets in and drains, and once the backlog is gone every publisher is unblocked. Bounded in messages
// and time.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts, killAll, startNode } from '../cli/cluster-nodes.js';
import { until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'espresso-flood-'));
const conns: amqp.ChannelModel[] = [];
afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

const publishers = 30;

describe('a flood of publishers', () => {
  it('blocks every flooding connection under the memory alarm, lets a consumer in to drain, then unblocks them all', async () => {
    const [amqpPort, clusterPort] = await freePorts(2);
    const node = startNode({
      name: 'n1', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(dir, 'n1'), secret: 's',
      extraArgs: ['--memory-high-watermark', String(160 * 1024 * 1024)],
    });
    await node.ready;
    const url = `amqp://guest:guest@127.0.0.1:${amqpPort!}`;
    const blocked = new Set<number>();
    const unblocked = new Set<number>();
    const channels = await Promise.all(Array.from({ length: publishers }, async (_, i) => {
      const c = await amqp.connect(url);
      conns.push(c);
      c.on('blocked', () => blocked.add(i));
      c.on('unblocked', () => unblocked.add(i));
      const ch = await c.createChannel();
      if (i === 0) await ch.assertQueue('flood', { durable: false });
      return ch;
    }));
    const body = Buffer.alloc(8192, 7);
    // At most 30 x 2,000 x 8 KiB = 480 MiB offered; each publisher stops once told it is blocked.
    const deadline = Date.now() + 60_000;
    for (let round = 0; round < 100 && blocked.size < publishers && Date.now() < deadline; round++) {
      channels.forEach((ch, i) => {
        if (blocked.has(i)) return;
        for (let j = 0; j < 20; j++) ch.publish('', 'flood', body);
      });
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(() => blocked.size === publishers, 30_000, 'every publisher blocked');
    expect(node.output()).toContain('memory alarm raised');

    // A consumer still gets in while the publishers are held, and drains the backlog.
    const consumerConn = await amqp.connect(url);
    conns.push(consumerConn);
    const consumer = await consumerConn.createChannel();
    const ready = (await consumer.checkQueue('flood')).messageCount;
    expect(ready).toBeGreaterThan(5_000);
    let drained = 0;
    await consumer.consume('flood', () => { drained++; }, { noAck: true });
    await until(() => unblocked.size === publishers, 60_000, 'every publisher unblocked after the drain');
    expect(drained).toBeGreaterThan(0);
    expect(node.output()).toContain('memory alarm cleared');
  }, 150_000);
});
