// Deep replicated queues keep at most a byte budget of bodies in memory and read the rest back from
// the WAL: every body comes back intact and in order after eviction, after a restart, after
// snapshots and compaction dropped the log around a long-unacked message, and on a follower that
// caught up by the leader's snapshot and then leads.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BodyBudget, BodyStore } from '../../src/cluster/body-store.js';
import { GroupHost, type GroupHostOptions } from '../../src/cluster/group-host.js';
import { ReplicatedQueue } from '../../src/cluster/replicated-queue.js';
import type { Delivery, StoredMessage } from '../../src/broker/queue-backend.js';
import { groupId, logIndex, nodeId, type NodeId } from '../../src/lib/ids.js';
import { defaultQueueConfig, type Owner } from '../../src/queue/index.js';
import { wireFieldValues } from '../../src/broker/field-values.js';

const roots: string[] = [];
const hosts: GroupHost[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'espresso-bodies-'));
  roots.push(d);
  return d;
}

/** Small segments, so compaction has whole segments to delete in a test-sized log. */
async function startHost(dataDir: string, id = 'n1', extra: Partial<GroupHostOptions> = {}): Promise<GroupHost> {
  const h = await GroupHost.start({
    nodeId: nodeId(id), dataDir, listen: { host: '127.0.0.1', port: 0 }, secret: 's',
    storageLimits: { segmentBytesTarget: 8 * 1024, cacheBytesMax: 0 }, ...extra,
  });
  hosts.push(h);
  return h;
}

async function stopHost(h: GroupHost): Promise<void> {
  hosts.splice(hosts.indexOf(h), 1);
  await h.close();
}

const gid = groupId('q/%2F/deep');
let incarnations = 0;

function openQueue(host: GroupHost, budget: BodyBudget, o: { snapshotEveryEntries?: number; members?: readonly NodeId[] } = {}): ReplicatedQueue {
  return new ReplicatedQueue({
    name: 'deep', groupId: gid, host, node: host.nodeId, incarnation: `i${++incarnations}`,
    config: defaultQueueConfig, clock: { nowMs: () => Date.now() }, deadLetterExchange: null, deadLetterRoutingKey: null,
    onDeadLetter: () => undefined, fieldValues: wireFieldValues, bodyBudget: budget, ...o,
  });
}

/** ~600-byte bodies that differ in every byte position, so a mixed-up or cut body shows. */
function body(i: number): Buffer {
  return Buffer.from(`m${i}:` + String(i * 7919).repeat(120).slice(0, 600));
}

function message(i: number): StoredMessage {
  return { exchange: 'ex', routingKey: `rk${i}`, properties: { deliveryMode: 2, messageId: `id-${i}`, headers: { n: { tag: 'I', value: i } } }, body: body(i) };
}

const owner = (node: string, c: string): Owner => ({ node, connection: `${node}/${c}`, channel: `${node}/${c}/1` });

async function consumeAll(q: ReplicatedQueue, o: Owner, noAck = true): Promise<Delivery[]> {
  const got: Delivery[] = [];
  await q.consume({ owner: o, consumerTag: 't', noAck, creditMode: 'auto', prefetch: 0, priority: 0 }, (d) => got.push(d));
  return got;
}

function expectIntact(got: readonly Delivery[], numbers: readonly number[]): void {
  expect(got.map((d) => d.message.properties.messageId)).toEqual(numbers.map((i) => `id-${i}`));
  for (const [k, d] of got.entries()) {
    const i = numbers[k]!;
    expect(Buffer.compare(d.message.body, body(i))).toBe(0);
    expect(d.message.routingKey).toBe(`rk${i}`);
    expect(d.message.properties.headers).toEqual({ n: { tag: 'I', value: i } });
  }
}

/** Re-checks `cond` every few ms; bounded in time. Integration tests only (real hosts, real disks). */
async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);

describe('body store', () => {
  it('keeps at most its byte budget in memory, evicting the oldest, and reads evicted bodies back', () => {
    const budget = new BodyBudget(4 * 1024);
    const loaded: number[] = [];
    const a = new BodyStore(budget, (id) => (loaded.push(id), message(id)));
    const b = new BodyStore(budget, (id) => (loaded.push(id), message(id)));
    for (let i = 1; i <= 20; i++) (i % 2 === 0 ? a : b).set(i, message(i));
    expect(budget.stats().bytes).toBeLessThanOrEqual(4 * 1024);
    expect(budget.stats().evictions).toBeGreaterThan(0);
    expect(a.size + b.size).toBe(20);
    // The newest stay in memory; the oldest come from the loader, intact.
    expect(a.get(20)?.body.equals(body(20))).toBe(true);
    expect(loaded).toEqual([]);
    expect(b.get(1)?.body.equals(body(1))).toBe(true);
    expect(loaded).toEqual([1]);
    expect(a.delete(2)).toBe(true);
    expect(a.get(2)).toBeUndefined();
    expect(a.keep()).toEqual(range(2, 11).map((k) => 2 * k));
  });

  it('stays bounded under a shallow queue\'s churn: memory accounting returns to zero when all is settled', () => {
    const budget = new BodyBudget(1024 * 1024);
    const s = new BodyStore(budget, () => undefined);
    for (let i = 1; i <= 50_000; i++) {
      s.set(i, message(i % 100));
      if (i > 10) s.delete(i - 10);
    }
    expect(s.size).toBe(10);
    expect(budget.stats().residents).toBe(10);
    s.clear();
    expect(budget.stats()).toMatchObject({ bytes: 0, residents: 0 });
  });

  it('restores from a snapshot: carried bodies stay in memory, the others are read from the log', () => {
    const s = new BodyStore(new BodyBudget(0), (id) => (id === 5 ? message(5) : undefined));
    s.restore([9, 5, 7], new Map([[7, message(7)]]));
    expect(s.size).toBe(3);
    expect(s.keep()).toEqual([5, 9]);
    expect(s.get(7)?.body.equals(body(7))).toBe(true);
    expect(s.get(5)?.body.equals(body(5))).toBe(true);
    expect([...s.pinned().keys()]).toEqual([7]);
  });
});

describe('deep replicated queue on one node', () => {
  it('delivers every body intact and in order after most were evicted from memory', async () => {
    const host = await startHost(tempDir());
    const budget = new BodyBudget(8 * 1024);
    const q = openQueue(host, budget);
    expect((await Promise.all(range(0, 200).map((i) => q.enqueue(message(i))))).every((o) => o === 'ok')).toBe(true);
    expect(budget.stats().bytes).toBeLessThanOrEqual(8 * 1024);
    const got = await consumeAll(q, owner('n1', 'c1'));
    expectIntact(got, range(0, 200));
    expect(q.bodiesReadBack).toBeGreaterThan(150);
    expect(q.bodiesHeld).toBe(0);
  });

  it('delivers every body intact and in order after a restart, with a tiny budget', async () => {
    const dir = tempDir();
    let host = await startHost(dir);
    let q = openQueue(host, new BodyBudget(4 * 1024));
    await Promise.all(range(0, 150).map((i) => q.enqueue(message(i))));
    await stopHost(host);
    host = await startHost(dir);
    q = openQueue(host, new BodyBudget(4 * 1024));
    expectIntact(await consumeAll(q, owner('n1', 'c1')), range(0, 150));
  });

  it('keeps a long-unacked message and a backlog through snapshots and compaction, across a restart', async () => {
    const dir = tempDir();
    let host = await startHost(dir);
    let q = openQueue(host, new BodyBudget(2 * 1024), { snapshotEveryEntries: 8 });
    const sink: Delivery[] = [];
    const o = owner('n1', 'c1');
    await q.consume({ owner: o, consumerTag: 't', noAck: false, creditMode: 'auto', prefetch: 0, priority: 0 }, (d) => sink.push(d));
    await q.enqueue(message(0)); // delivered, never acked
    for (let round = 0; round < 15; round++) {
      await Promise.all(range(1 + round * 20, 21 + round * 20).map((i) => q.enqueue(message(i))));
      await q.settle(o.channel, sink.splice(1).map((d) => d.msgId));
    }
    const stuck = sink[0]!;
    expect(stuck.message.properties.messageId).toBe('id-0');
    // A backlog nobody consumes yet, behind the stuck message.
    await Promise.all(range(1000, 1100).map((i) => q.enqueue(message(i))));
    for (let k = 0; k < 250; k++) q.touch(); // entries enough for a snapshot with 101 live messages
    await q.enqueue(message(1100));
    const status = (): number => host.status(gid)?.firstIndex ?? 0;
    await until(() => status() > stuck.msgId + 1, 'a snapshot past the stuck message');
    const report = await host.compactLog();
    // Segments went, in this compaction or in one the host ran by itself (after the snapshot, or
    // once the log was quiet): far less is on disk than was ever written.
    expect(report.diskBytes).toBeLessThan(host.stats().wal.bytesWritten / 2);
    // The stuck message's entry is below the Raft log now, kept for its body only.
    expect(host.readEntry(gid, logIndex(stuck.msgId))).toBeDefined();
    await stopHost(host);

    host = await startHost(dir);
    q = openQueue(host, new BodyBudget(2 * 1024), { snapshotEveryEntries: 8 });
    const back = await consumeAll(q, owner('n1', 'c2'));
    expectIntact(back, [0, ...range(1000, 1101)]);
    expect(back[0]!.redelivered).toBe(true);
  });
});

describe('deep replicated queue log', () => {
  it('lets the log of a drained backlog go without waiting for new traffic', async () => {
    const host = await startHost(tempDir());
    const q = openQueue(host, new BodyBudget(2 * 1024), { snapshotEveryEntries: 1000 });
    await Promise.all(range(0, 600).map((i) => q.enqueue(message(i))));
    const sink: Delivery[] = [];
    const o = owner('n1', 'c1');
    await q.consume({ owner: o, consumerTag: 't', noAck: false, creditMode: 'auto', prefetch: 30, priority: 0 }, (d) => sink.push(d));
    for (let batch = 0; batch < 20; batch++) await q.settle(o.channel, sink.splice(0).map((d) => d.msgId));
    expect(q.stats()).toMatchObject({ messagesReady: 0, messagesUnacked: 0 });
    // About 620 entries in all, fewer than the 1000 between snapshots: the 600 settled messages count.
    await until(() => (host.status(gid)?.firstIndex ?? 0) > 600, 'a snapshot after the drain', 3000);
    expect(host.readEntry(gid, logIndex(5))).toBeUndefined();
  });
});

describe('deep replicated queue on three nodes', () => {
  it('a follower that caught up by the leader\'s snapshot holds every live body and delivers them when it leads', async () => {
    const root = tempDir();
    const ids = ['n1', 'n2', 'n3'].map(nodeId);
    const hs = await Promise.all(ids.map((id) => startHost(join(root, id), id, { raft: { electionTimeoutTicks: 10, heartbeatIntervalTicks: 2 } })));
    for (const a of hs) for (const b of hs) if (a !== b) a.addPeer(b.nodeId, `127.0.0.1:${b.port}`);
    const opts = { snapshotEveryEntries: 8, members: ids };
    const qs = [openQueue(hs[0]!, new BodyBudget(2 * 1024), opts), openQueue(hs[1]!, new BodyBudget(2 * 1024), opts)];
    await until(() => qs.some((q) => q.ready), 'n1 or n2 leads');
    const k = qs.findIndex((q) => q.ready);
    const [q, h] = [qs[k]!, hs[k]!];
    await Promise.all(range(0, 60).map((i) => q.enqueue(message(i))));
    for (let t = 0; t < 150; t++) q.touch();
    await q.enqueue(message(60));
    await until(() => (h.status(gid)?.firstIndex ?? 0) > 62, 'the leader snapshots past every enqueue');

    // n3 joins late: the log it needs is gone, so it gets the snapshot and the kept entries with it.
    const q3 = openQueue(hs[2]!, new BodyBudget(2 * 1024), opts);
    const caughtUp = (): boolean => (hs[2]!.status(gid)?.applied ?? 0) >= (h.status(gid)?.commit ?? Infinity);
    await until(caughtUp, 'n3 catches up');
    expect(hs[2]!.status(gid)!.firstIndex).toBeGreaterThan(62);
    h.transferLeadership(gid, ids[2]!);
    await until(() => q3.ready, 'n3 leads');
    const got = await consumeAll(q3, owner('n3', 'c1'));
    expectIntact(got, range(0, 61));
  });
});
