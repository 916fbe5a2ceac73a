// Measures the write-ahead log against LevelDB (chained batch, sync: true) doing the same work in
// the same run: fsyncs/s, entries per fsync, entries/s and CPU µs per entry with 1, 100 and 1,000
// active groups appending 1 KiB entries, then recovery time for 1 million entries.
// Run: npx tsx bench/storage-wal.ts [--seconds 3] [--recovery-entries 1000000]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { groupId, logIndex, term, type GroupId } from '../src/lib/ids.js';
import { WriteAheadLog } from '../src/storage/index.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const seconds = arg('seconds', 3);
const recoveryEntries = arg('recovery-entries', 1_000_000);
const entryBytes = 1024;

interface Result { store: string; groups: number; fsyncsPerS: number; entriesPerFsync: number; entriesPerS: number; cpuUsPerEntry: number }

const body = Buffer.alloc(entryBytes, 7);

/**
 * G groups, each with one proposal outstanding (append one entry, wait until durable, repeat),
 * and a host that, like the Raft host, calls flush once per event-loop turn for every group.
 */
async function drive(groups: number, append: (g: number, index: number) => void, flush: () => Promise<void>): Promise<{ entries: number; seconds: number; cpuUs: number }> {
  let entries = 0;
  let waiters: Array<() => void> = [];
  let scheduled = false;
  const durableThisTurn = (): Promise<void> => new Promise((resolve) => {
    waiters.push(resolve);
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      const ws = waiters;
      waiters = [];
      void flush().then(() => { for (const w of ws) w(); });
    });
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const loop = async (g: number): Promise<void> => {
    for (let index = 1; index < 100_000_000 && performance.now() < deadline; index++) {
      append(g, index);
      entries++;
      await durableThisTurn();
    }
  };
  await Promise.all(Array.from({ length: groups }, (_, g) => loop(g)));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { entries, seconds: elapsed, cpuUs: cpu.user + cpu.system };
}

async function benchWal(groups: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'espresso-bench-wal-'));
  const wal = await WriteAheadLog.open(dir);
  const ids: GroupId[] = Array.from({ length: groups }, (_, k) => groupId(`g${k}`));
  for (const id of ids) wal.createGroup(id);
  await wal.flush();
  const before = wal.stats();
  const r = await drive(groups, (g, index) => wal.append(ids[g]!, [{ index: logIndex(index), term: term(1), data: body }]), () => wal.flush());
  const after = wal.stats();
  await wal.close();
  rmSync(dir, { recursive: true, force: true });
  const fsyncs = after.fsyncs - before.fsyncs;
  return { store: 'wal', groups, fsyncsPerS: fsyncs / r.seconds, entriesPerFsync: r.entries / fsyncs, entriesPerS: r.entries / r.seconds, cpuUsPerEntry: r.cpuUs / r.entries };
}

/** LevelDB with the same adaptive group commit: one chained batch in flight, the next accumulating. */
async function benchLevel(groups: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'espresso-bench-level-'));
  const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  let batch = db.batch();
  let batchOps = 0;
  let inflight: Promise<void> | undefined;
  let waiting: Promise<void> | undefined;
  let syncs = 0;
  const key = Buffer.alloc(12);
  const start = (): Promise<void> => {
    const b = batch;
    batch = db.batch();
    batchOps = 0;
    syncs++;
    return b.write({ sync: true });
  };
  const flush = (): Promise<void> => {
    if (batchOps === 0) return inflight ?? Promise.resolve();
    if (inflight === undefined) {
      inflight = start().then(() => { inflight = undefined; });
      return inflight;
    }
    waiting ??= inflight.then(() => { waiting = undefined; return flush(); });
    return waiting;
  };
  const r = await drive(groups, (g, index) => {
    key.writeUInt32BE(g, 0);
    key.writeUInt32BE(0, 4);
    key.writeUInt32BE(index, 8);
    batch.put(Buffer.from(key), body);
    batchOps++;
  }, flush);
  await flush();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
  return { store: 'level', groups, fsyncsPerS: syncs / r.seconds, entriesPerFsync: r.entries / syncs, entriesPerS: r.entries / r.seconds, cpuUsPerEntry: r.cpuUs / r.entries };
}

/** The store alone: batches of `batch` entries over 1,000 groups, one flush in flight at a time. */
async function rawBatches(batch: number): Promise<void> {
  const groups = 1000;
  const walDir = mkdtempSync(join(tmpdir(), 'espresso-bench-raw-wal-'));
  const wal = await WriteAheadLog.open(walDir);
  const ids: GroupId[] = Array.from({ length: groups }, (_, k) => groupId(`g${k}`));
  for (const id of ids) wal.createGroup(id);
  await wal.flush();
  const next = new Array<number>(groups).fill(1);
  let k = 0;
  const w = await timed(async () => {
    for (let i = 0; i < batch; i++, k = (k + 1) % groups) wal.append(ids[k]!, [{ index: logIndex(next[k]!++), term: term(1), data: body }]);
    await wal.flush();
  });
  await wal.close();
  rmSync(walDir, { recursive: true, force: true });
  const levelDir = mkdtempSync(join(tmpdir(), 'espresso-bench-raw-level-'));
  const db = new Level<Buffer, Buffer>(levelDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  let n = 0;
  const l = await timed(async () => {
    const b = db.batch();
    for (let i = 0; i < batch; i++, n++) {
      const key = Buffer.allocUnsafe(12);
      key.writeUInt32BE(n % groups, 0);
      key.writeUInt32BE(0, 4);
      key.writeUInt32BE(n, 8);
      b.put(key, body);
    }
    await b.write({ sync: true });
  });
  await db.close();
  rmSync(levelDir, { recursive: true, force: true });
  for (const [name, r] of [['wal', w], ['level', l]] as const) {
    console.log(`${name.padEnd(6)} ${String(batch).padStart(6)}  ${(r.rounds / r.seconds).toFixed(0).padStart(8)}  ${((r.rounds * batch) / r.seconds).toFixed(0).padStart(9)}  ${(r.cpuUs / (r.rounds * batch)).toFixed(2).padStart(12)}  ${r.p50Ms.toFixed(2).padStart(7)}`);
  }
}

async function timed(round: () => Promise<void>): Promise<{ rounds: number; seconds: number; cpuUs: number; p50Ms: number }> {
  const lat: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000 && lat.length < 10_000_000) {
    const a = performance.now();
    await round();
    lat.push(performance.now() - a);
  }
  const cpu = process.cpuUsage(cpu0);
  lat.sort((a, b) => a - b);
  return { rounds: lat.length, seconds: (performance.now() - t0) / 1000, cpuUs: cpu.user + cpu.system, p50Ms: lat[lat.length >> 1] ?? 0 };
}

async function benchRecovery(entries: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'espresso-bench-recovery-'));
  let wal = await WriteAheadLog.open(dir);
  const ids: GroupId[] = Array.from({ length: 100 }, (_, k) => groupId(`g${k}`));
  for (const id of ids) wal.createGroup(id);
  const perGroup = Math.ceil(entries / ids.length);
  for (let i = 1; i <= perGroup; i += 10) {
    for (const id of ids) {
      const batch = [];
      for (let k = i; k < i + 10 && k <= perGroup; k++) batch.push({ index: logIndex(k), term: term(1), data: body });
      wal.append(id, batch);
    }
    await wal.flush();
  }
  const bytes = wal.stats().diskBytes;
  await wal.close();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  wal = await WriteAheadLog.open(dir);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(`recovery: ${wal.recovery.records} records, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${wal.recovery.segments} segments: ` +
    `${ms.toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU (${(((cpu.user + cpu.system) / wal.recovery.records)).toFixed(2)} µs/record), heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`);
  await wal.close();
  rmSync(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${seconds} s per case, ${entryBytes} B entries, each active group keeps one append outstanding, one flush per turn`);
  console.log('store  groups  fsyncs/s  entries/fsync  entries/s  CPU µs/entry');
  for (const groups of [1, 100, 1000]) {
    for (const run of [benchWal, benchLevel]) {
      const r = await run(groups);
      console.log(`${r.store.padEnd(6)} ${String(r.groups).padStart(6)}  ${r.fsyncsPerS.toFixed(0).padStart(8)}  ${r.entriesPerFsync.toFixed(1).padStart(13)}  ${r.entriesPerS.toFixed(0).padStart(9)}  ${r.cpuUsPerEntry.toFixed(2).padStart(12)}`);
    }
  }
  console.log('\nthe store alone: one batch in flight, entries over 1,000 groups');
  console.log('store   batch  fsyncs/s  entries/s  CPU µs/entry  p50 ms');
  for (const batch of [1, 16, 128, 1024]) await rawBatches(batch);
  if (recoveryEntries > 0) await benchRecovery(recoveryEntries);
}

await main();
