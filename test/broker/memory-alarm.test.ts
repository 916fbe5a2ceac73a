// The memory alarm: it counts the memory the node's live objects hold, so a publisher blocked by a
// backlog is unblocked once the backlog is purged (a real node process, real memory), not when the
// allocator gets round to returning pages to the OS; and the collections it forces while raised
// are spaced by their own cost.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryWatch } from '../../src/broker/memory-alarm.js';
import { freePorts, killAll, startNode } from '../cli/cluster-nodes.js';
import { until } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('memory alarm', () => {
  it('unblocks a publisher once the backlog that raised the alarm is purged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-mem-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(killAll);
    const [amqpPort, clusterPort] = await freePorts(2);
    const node = startNode({
      name: 'n1', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(dir, 'n1'), secret: 's',
      extraArgs: ['--memory-high-watermark', String(200 * 1024 * 1024)],
    });
    await node.ready;
    const url = `amqp://guest:guest@127.0.0.1:${amqpPort!}`;
    const conn = await amqp.connect(url);
    cleanups.push(async () => { await conn.close().catch(() => {}); });
    const events: string[] = [];
    conn.on('blocked', () => events.push('blocked'));
    conn.on('unblocked', () => events.push('unblocked'));
    const ch = await conn.createChannel();
    await ch.assertQueue('backlog', { durable: false });
    const body = Buffer.alloc(8192, 3);
    // 320 MB at most, published until the node says it is blocked (it reads what is sent meanwhile).
    for (let i = 0; i < 200 && !events.includes('blocked'); i++) {
      for (let j = 0; j < 200; j++) ch.publish('', 'backlog', body);
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(() => events.includes('blocked'), 30_000, 'connection.blocked');
    expect(events).toEqual(['blocked']);

    const admin = await amqp.connect(url);
    cleanups.push(async () => { await admin.close().catch(() => {}); });
    const purged = await (await admin.createChannel()).purgeQueue('backlog');
    expect(purged.messageCount).toBeGreaterThan(10_000);
    // The node's RSS stays near its peak for minutes after this; the alarm must not.
    await until(() => events.includes('unblocked'), 30_000, 'connection.unblocked after the purge');
    expect(node.output()).toContain('memory alarm cleared');
  });

  it('forces collections only while raised, spaced by twenty times their cost', () => {
    let memory = 0;
    let clock = 0;
    const collections: number[] = [];
    const changes: boolean[] = [];
    const watch = new MemoryWatch(1000, {
      readMemoryBytes: () => memory,
      collect: () => { collections.push(clock); clock += 100; }, // a collection that takes 100 ms
      nowMs: () => clock,
    }, (raised) => changes.push(raised));
    const checkAt = (ms: number): void => {
      clock = ms;
      watch.check();
    };
    checkAt(0);
    expect(collections).toEqual([]);
    memory = 5000;
    checkAt(1000);
    checkAt(2000); // within 20 x 100 ms of the first collection: none
    checkAt(3000);
    expect(changes).toEqual([true]);
    expect(collections).toEqual([1000, 3000]);
    memory = 10; // what the collection freed is read at the next check
    checkAt(4000);
    checkAt(9000);
    expect(changes).toEqual([true, false]);
    expect(collections).toEqual([1000, 3000]);
  });
});
