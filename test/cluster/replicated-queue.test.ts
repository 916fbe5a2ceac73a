// A durable queue as a 1-replica Raft group on a real GroupHost (WAL with fdatasync on loopback):
// confirmed messages survive a restart and a SIGKILL, unacked ones come back redelivered, acked
// ones never return, snapshots keep live bodies, and delete drops the group's log.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { GroupHost } from '../../src/cluster/group-host.js';
import { ReplicatedQueue } from '../../src/cluster/replicated-queue.js';
import type { Delivery, StoredMessage } from '../../src/broker/queue-backend.js';
import { groupId, nodeId } from '../../src/lib/ids.js';
import { defaultQueueConfig, type Owner } from '../../src/queue/index.js';
import { wireFieldValues } from '../../src/broker/field-values.js';

const roots: string[] = [];
const hosts: GroupHost[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'espresso-rq-'));
  roots.push(d);
  return d;
}

async function startHost(dataDir: string): Promise<GroupHost> {
  const h = await GroupHost.start({ nodeId: nodeId('n1'), dataDir, listen: { host: '127.0.0.1', port: 0 }, secret: 's' });
  hosts.push(h);
  return h;
}

async function stopHost(h: GroupHost): Promise<void> {
  hosts.splice(hosts.indexOf(h), 1);
  await h.close();
}

let incarnations = 0;
function openQueue(host: GroupHost, snapshotEveryEntries?: number): ReplicatedQueue {
  return new ReplicatedQueue({
    name: 'q1', groupId: groupId('q/%2F/q1'), host, node: 'n1', incarnation: `i${++incarnations}`,
    config: defaultQueueConfig, clock: { nowMs: () => Date.now() }, deadLetterExchange: null, deadLetterRoutingKey: null,
    onDeadLetter: () => undefined, fieldValues: wireFieldValues, ...(snapshotEveryEntries !== undefined ? { snapshotEveryEntries } : {}),
  });
}

function message(i: number): StoredMessage {
  return { exchange: '', routingKey: 'q1', properties: { deliveryMode: 2, headers: { n: { tag: 'I', value: i } } }, body: Buffer.from(`m${i}`) };
}

const owner = (c: string): Owner => ({ node: 'n1', connection: `n1/${c}`, channel: `n1/${c}/1` });

/** Registers a consumer with unlimited prefetch; deliveries of what is ready arrive as it is applied. */
async function consumeAll(q: ReplicatedQueue, c: string, noAck = false): Promise<Delivery[]> {
  const got: Delivery[] = [];
  await q.consume({ owner: owner(c), consumerTag: 't', noAck, creditMode: 'auto', prefetch: 0, priority: 0 }, (d) => got.push(d));
  return got;
}

describe('replicated queue on one node', () => {
  it('confirms after commit and keeps every confirmed message, in order, across a restart', async () => {
    const dir = tempDir();
    let host = await startHost(dir);
    let q = openQueue(host);
    const outcomes = await Promise.all(Array.from({ length: 300 }, (_, i) => q.enqueue(message(i))));
    expect(outcomes.every((o) => o === 'ok')).toBe(true);
    expect(q.stats().messagesReady).toBe(300);
    // Pipelined: many publishes share an fdatasync.
    expect(host.stats().cycles).toBeLessThan(300);
    await stopHost(host);

    host = await startHost(dir);
    q = openQueue(host);
    const got = await consumeAll(q, 'c1');
    expect(got.map((d) => d.message.body.toString())).toEqual(Array.from({ length: 300 }, (_, i) => `m${i}`));
    expect(got.every((d) => !d.redelivered)).toBe(true);
    expect(got[7]!.message.properties.headers).toEqual({ n: { tag: 'I', value: 7 } });
    expect(got[7]!.message.routingKey).toBe('q1');
  });

  it('returns unacked messages redelivered after a restart and never returns acked ones', async () => {
    const dir = tempDir();
    let host = await startHost(dir);
    let q = openQueue(host);
    await Promise.all(Array.from({ length: 10 }, (_, i) => q.enqueue(message(i))));
    const first = await consumeAll(q, 'c1');
    expect(first).toHaveLength(10);
    await q.settle(owner('c1').channel, first.slice(0, 6).map((d) => d.msgId));
    expect(q.stats()).toMatchObject({ messagesReady: 0, messagesUnacked: 4 });
    await stopHost(host);

    host = await startHost(dir);
    q = openQueue(host);
    // Replayed, the four still count as unacked to the dead consumer: not the queue's counts (what
    // declare-ok reports) until this life's leaderStart has returned them.
    expect(q.current).toBe(false);
    for (const until = Date.now() + 10_000; !q.current && Date.now() < until;) await new Promise((r) => setTimeout(r, 5));
    expect(q.stats()).toMatchObject({ messagesReady: 4, messagesUnacked: 0 });
    // The same channel id again (connection counters restart): it must not own the old messages.
    const again = await consumeAll(q, 'c1');
    expect(again.map((d) => d.message.body.toString())).toEqual(['m6', 'm7', 'm8', 'm9']);
    expect(again.every((d) => d.redelivered && d.deliveryCount === 1)).toBe(true);
    await q.settle(owner('c1').channel, again.map((d) => d.msgId));
    expect(q.stats()).toMatchObject({ messagesReady: 0, messagesUnacked: 0 });
    await stopHost(host);

    host = await startHost(dir);
    q = openQueue(host);
    expect(await consumeAll(q, 'c1')).toEqual([]);
  });

  it('a channel going down returns its messages at once; basic.get and purge go through the log', async () => {
    const host = await startHost(tempDir());
    const q = openQueue(host);
    await Promise.all(Array.from({ length: 5 }, (_, i) => q.enqueue(message(i))));
    const got = await q.get(owner('g'), false);
    expect(got?.message.body.toString()).toBe('m0');
    expect(got?.messageCount).toBe(4);
    await q.down('channel', owner('g').channel);
    expect(q.stats().messagesReady).toBe(5);
    expect(await q.purge()).toBe(5);
    expect(await q.get(owner('g'), true)).toBeNull();
  });

  it('keeps live bodies through snapshots that let the log go', async () => {
    const dir = tempDir();
    let host = await startHost(dir);
    let q = openQueue(host, 16);
    const ids: number[] = [];
    const sink: Delivery[] = [];
    await q.consume({ owner: owner('c1'), consumerTag: 't', noAck: false, creditMode: 'auto', prefetch: 0, priority: 0 }, (d) => sink.push(d));
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => q.enqueue(message(round * 20 + i))));
      // Ack all but the first of each round: a few old messages stay live below many dead entries.
      const toAck = sink.splice(0).filter((d, i) => (i === 0 ? (ids.push(d.msgId), false) : true));
      await q.settle(owner('c1').channel, toAck.map((d) => d.msgId));
    }
    const firstIndex = host.status(groupId('q/%2F/q1'))!;
    expect(firstIndex).not.toBeNull();
    await stopHost(host);

    host = await startHost(dir);
    q = openQueue(host, 16);
    const back = await consumeAll(q, 'c1');
    expect(back.map((d) => d.message.body.toString())).toEqual(['m0', 'm20', 'm40', 'm60', 'm80']);
    expect(back.every((d) => d.redelivered)).toBe(true);
  });

  it('deleting the queue removes its group and log: a new queue of the same name starts empty', async () => {
    const dir = tempDir();
    let host = await startHost(dir);
    let q = openQueue(host);
    await Promise.all(Array.from({ length: 5 }, (_, i) => q.enqueue(message(i))));
    expect(await q.delete()).toBe(5);
    expect(host.status(groupId('q/%2F/q1'))).toBeNull();
    await stopHost(host);
    host = await startHost(dir);
    q = openQueue(host);
    await q.enqueue(message(99));
    const got = await consumeAll(q, 'c1', true);
    expect(got.map((d) => d.message.body.toString())).toEqual(['m99']);
  });

  it('deleting the queue cancels consumers of other nodes too, which the leader finds by owner and tag', async () => {
    const host = await startHost(tempDir());
    const cancelled: string[] = [];
    const q = new ReplicatedQueue({
      name: 'q1', groupId: groupId('q/%2F/q1'), host, node: 'n1', incarnation: `i${++incarnations}`,
      config: defaultQueueConfig, clock: { nowMs: () => Date.now() }, deadLetterExchange: null, deadLetterRoutingKey: null,
      onDeadLetter: () => undefined, fieldValues: wireFieldValues,
      resolveConsumer: (holderNode, channel, tag) => ({ sink: () => undefined, cancelled: (reason) => cancelled.push(`${holderNode} ${channel} ${tag} ${reason}`) }),
    });
    const remote: Owner = { node: 'n2', connection: 'c3', channel: 'n2/c3/1' };
    await q.consume({ owner: remote, consumerTag: 'far', noAck: false, creditMode: 'auto', prefetch: 0, priority: 0 }, null, 'n2-life');
    await q.delete();
    expect(cancelled).toEqual(['n2#n2-life n2/c3/1 far deleted']);
  });

  it('every confirmed message survives a SIGKILL of the process in the middle of publishing', async () => {
    const dir = tempDir();
    const src = (p: string): string => new URL(`../../src/${p}`, import.meta.url).href;
    const script = join(dir, 'child.mts');
    writeFileSync(script, `
      import { GroupHost } from '${src('cluster/group-host.js')}';
      import { ReplicatedQueue } from '${src('cluster/replicated-queue.js')}';
      import { groupId, nodeId } from '${src('lib/ids.js')}';
      import { defaultQueueConfig, plainFieldValues } from '${src('queue/index.js')}';
      const host = await GroupHost.start({ nodeId: nodeId('n1'), dataDir: ${JSON.stringify(join(dir, 'data'))}, listen: { host: '127.0.0.1', port: 0 }, secret: 's' });
      const q = new ReplicatedQueue({ name: 'q1', groupId: groupId('q/%2F/q1'), host, node: 'n1', incarnation: 'child',
        config: defaultQueueConfig, clock: { nowMs: () => Date.now() }, deadLetterExchange: null, deadLetterRoutingKey: null,
        onDeadLetter: () => undefined, fieldValues: plainFieldValues, snapshotEveryEntries: 500 });
      // Batches of 50 in flight; each confirm is printed; bounded so a lost kill cannot run forever.
      for (let b = 0; b < 400; b++) {
        await Promise.all(Array.from({ length: 50 }, (_, k) => {
          const i = b * 50 + k;
          return q.enqueue({ exchange: '', routingKey: 'q1', properties: {}, body: Buffer.from('m' + i) })
            .then((o) => { if (o === 'ok') process.stdout.write('c' + i + '\\n'); });
        }));
      }
      process.stdout.write('done\\n');
    `);
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
    const confirmed = new Set<string>();
    let buffered = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) if (line.startsWith('c')) confirmed.add(`m${line.slice(1)}`);
        if (confirmed.size >= 1500 && child.exitCode === null && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited ${code}`))));
    });
    await new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.on('exit', () => resolve())));
    expect(confirmed.size).toBeGreaterThanOrEqual(1500);

    const host = await startHost(join(dir, 'data'));
    const q = openQueue(host);
    const got = await consumeAll(q, 'c1', true);
    const bodies = new Set(got.map((d) => d.message.body.toString()));
    const missing = [...confirmed].filter((m) => !bodies.has(m));
    expect(missing).toEqual([]);
    // In publish order, no duplicates.
    const order = got.map((d) => Number(d.message.body.toString().slice(1)));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(new Set(order).size).toBe(order.length);
  });
});
