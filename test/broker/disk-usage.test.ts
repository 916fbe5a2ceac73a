// What a node keeps on disk, as `du` on its data directory shows it: once 20,000 persistent
// messages are consumed and the node is quiet, the write-ahead log lets go of its segments (the
// head segment too, which would otherwise stay at up to 64 MiB of dead records) down to what each
// group's log holds since its last snapshot.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { startReplicatedNode } from './replicated-node.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function bytesUnder(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? bytesUnder(p) : statSync(p).size;
  }
  return total;
}

describe('disk usage', () => {
  it('gives the disk back once a backlog is consumed and the node is quiet', async () => {
    // The idle look comes after 300 ms instead of 5 s: the same path, sooner.
    const n = await startReplicatedNode({ limits: { idleCompactMs: 300 } });
    cleanups.push(() => n.stop());
    const conn = await amqp.connect(n.url);
    cleanups.push(async () => { await conn.close().catch(() => {}); });
    const publisher = await conn.createConfirmChannel();
    await publisher.assertQueue('backlog', { durable: true });
    const total = 20_000;
    for (let i = 0; i < total; i++) publisher.sendToQueue('backlog', Buffer.alloc(1024, 1), { persistent: true });
    await publisher.waitForConfirms();
    const consumer = await conn.createChannel();
    await consumer.prefetch(500);
    let consumed = 0;
    await new Promise<void>((done) => void consumer.consume('backlog', (m) => {
      consumer.ack(m!);
      if (++consumed === total) done();
    }));
    const full = bytesUnder(n.dir);
    expect(full).toBeGreaterThan(20 * 1024 * 1024);
    let now = full;
    for (let i = 0; i < 300 && now > 8 * 1024 * 1024; i++) {
      await new Promise((r) => setTimeout(r, 100));
      now = bytesUnder(n.dir);
    }
    expect(now).toBeLessThan(8 * 1024 * 1024);
    expect((await consumer.checkQueue('backlog')).messageCount).toBe(0);
  });
});
