// Round trips of the write-ahead log: many groups, reopen, reads from cache and from disk,
// truncation of a conflicting suffix, hard state, group removal, snapshots.

import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { logIndex, term, type GroupId } from '../../src/lib/ids.js';
import { WriteAheadLog } from '../../src/storage/index.js';
import { bodyOf, gid, makeEntries, tempDir } from './helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => { for (const c of cleanups.splice(0)) c(); });
function dir(label: string): string {
  const t = tempDir(label);
  cleanups.push(t.remove);
  return t.dir;
}

function expectLog(wal: WriteAheadLog, g: GroupId, first: number, last: number, termOf: (i: number) => number): void {
  expect(wal.firstIndex(g)).toBe(first);
  expect(wal.lastIndex(g)).toBe(last);
  const got = wal.entries(g, logIndex(first), logIndex(last + 1), Number.MAX_SAFE_INTEGER);
  expect(got.map((e) => e.index)).toEqual(Array.from({ length: last - first + 1 }, (_, k) => first + k));
  for (const e of got) {
    expect(e.term).toBe(termOf(e.index));
    expect(Buffer.from(e.data).equals(Buffer.from(bodyOf(g, e.index, e.term)))).toBe(true);
  }
}

describe('write-ahead log round trip', () => {
  it('keeps every entry of 200 groups across flushes, segment rolls and a reopen', async () => {
    const d = dir('roundtrip');
    const limits = { segmentBytesTarget: 64 * 1024, cacheBytesMax: 32 * 1024 };
    let wal = await WriteAheadLog.open(d, { limits });
    const groups = Array.from({ length: 200 }, (_, k) => gid(k));
    for (const g of groups) wal.createGroup(g);
    for (let turn = 0; turn < 10; turn++) {
      for (const [k, g] of groups.entries()) wal.append(g, makeEntries(g, turn * 3 + 1, 3, 1 + (k % 3)));
      await wal.flush();
    }
    expect(wal.stats().segments).toBeGreaterThan(3);
    expect(wal.stats().fsyncs).toBeLessThanOrEqual(10);
    // Most bodies were evicted from the 32 KiB cache: reads go to the segment files.
    for (const [k, g] of groups.entries()) expectLog(wal, g, 1, 30, () => 1 + (k % 3));
    await wal.close();

    wal = await WriteAheadLog.open(d, { limits });
    expect(wal.recovery.records).toBeGreaterThanOrEqual(200 * 30);
    expect(wal.recovery.corruptedGroups).toEqual([]);
    expect(wal.recovery.unregisteredRecords).toBe(0);
    expect(wal.groupIds().length).toBe(200);
    for (const [k, g] of groups.entries()) expectLog(wal, g, 1, 30, () => 1 + (k % 3));
    await wal.close();
  });

  it('batches appends made while a flush is in flight into the next single fsync', async () => {
    const wal = await WriteAheadLog.open(dir('adaptive'));
    wal.createGroup(gid(1));
    wal.append(gid(1), makeEntries('q1', 1, 1, 1));
    const first = wal.flush();
    const waits: Array<Promise<void>> = [];
    for (let i = 2; i <= 50; i++) {
      wal.append(gid(1), makeEntries('q1', i, 1, 1));
      waits.push(wal.flush());
    }
    await Promise.all([first, ...waits]);
    expect(wal.stats().fsyncs).toBe(2);
    expect(wal.lastIndex(gid(1))).toBe(50);
    await wal.close();
  });

  it('replaces a conflicting suffix, and the replacement survives a reopen', async () => {
    const d = dir('truncate');
    let wal = await WriteAheadLog.open(d);
    wal.createGroup(gid(1));
    wal.createGroup(gid(2));
    wal.append(gid(1), makeEntries('q1', 1, 10, 1));
    wal.append(gid(2), makeEntries('q2', 1, 10, 1));
    await wal.flush();
    wal.append(gid(1), makeEntries('q1', 6, 2, 2)); // a new leader's entries overwrite 6..10
    wal.truncateSuffix(gid(2), logIndex(4));
    await wal.flush();
    const termOf1 = (i: number): number => (i <= 5 ? 1 : 2);
    expectLog(wal, gid(1), 1, 7, termOf1);
    expectLog(wal, gid(2), 1, 3, () => 1);
    await wal.close();
    wal = await WriteAheadLog.open(d);
    expectLog(wal, gid(1), 1, 7, termOf1);
    expectLog(wal, gid(2), 1, 3, () => 1);
    expect(wal.term(gid(1), logIndex(8))).toBeUndefined();
    await wal.close();
  });

  it('keeps the Raft entry type of each entry, through compaction rewrites and a reopen', async () => {
    const d = dir('kind');
    const limits = { segmentBytesTarget: 2 * 1024, rewriteAfterSegments: 1 };
    let wal = await WriteAheadLog.open(d, { limits });
    wal.createGroup(gid(1));
    wal.append(gid(1), [{ index: logIndex(1), term: term(1), type: 1, data: new Uint8Array([7]) }]);
    wal.append(gid(1), makeEntries('q1', 2, 30, 1, 300));
    await wal.flush();
    wal.setLive(gid(1), logIndex(31), [logIndex(1)]); // entry 1 stays, alone in the old segment
    await wal.compact();
    await wal.compact();
    await wal.close();
    wal = await WriteAheadLog.open(d, { limits });
    expect(wal.entry(gid(1), logIndex(1))).toEqual({ index: 1, term: 1, type: 1, data: Buffer.from([7]) });
    expect(wal.entries(gid(1), logIndex(31), logIndex(32), 1 << 20)[0]!.type).toBe(0);
    await wal.close();
  });

  it('answers term and entries like the Raft storage interface, with a byte budget', async () => {
    const wal = await WriteAheadLog.open(dir('reader'));
    wal.createGroup(gid(1));
    wal.append(gid(1), makeEntries('q1', 1, 10, 3, 100));
    await wal.flush();
    const r = wal.reader(gid(1));
    expect(r.firstIndex()).toBe(1);
    expect(r.lastIndex()).toBe(10);
    expect(r.term(logIndex(0))).toBe(0);
    expect(r.term(logIndex(11))).toBeUndefined();
    expect(r.entries(logIndex(2), logIndex(10), 250).map((e) => e.index)).toEqual([2, 3]);
    expect(r.entries(logIndex(2), logIndex(10), 10).map((e) => e.index)).toEqual([2]);
    await wal.close();
  });

  it('keeps hard state across a reopen and never lets it go backwards', async () => {
    const d = dir('hardstate');
    let wal = await WriteAheadLog.open(d);
    wal.createGroup(gid(1));
    wal.setHardState(gid(1), { term: term(3), vote: 'n2', commit: logIndex(0) });
    wal.append(gid(1), makeEntries('q1', 1, 4, 3));
    wal.setHardState(gid(1), { term: term(3), vote: 'n2', commit: logIndex(4) });
    await wal.flush();
    expect(() => wal.setHardState(gid(1), { term: term(3), vote: 'n3', commit: logIndex(4) })).toThrow(/vote changes/);
    await wal.close();
    wal = await WriteAheadLog.open(d);
    expect(wal.hardState(gid(1))).toEqual({ term: 3, vote: 'n2', commit: 4 });
    await wal.close();
  });

  it('keeps term and vote in level as soon as the flush that sets them resolves', async () => {
    const d = dir('hardstate-level');
    let wal = await WriteAheadLog.open(d);
    wal.createGroup(gid(1));
    await wal.flush();
    wal.setHardState(gid(1), { term: term(5), vote: 'n1', commit: logIndex(0) });
    await wal.flush();
    // A copy taken now, as a crash would leave it (no close, no checkpoint), without any log.
    const copy = dir('hardstate-copy');
    cpSync(d, copy, { recursive: true, filter: (src) => !src.endsWith('.wal') });
    await wal.close();
    wal = await WriteAheadLog.open(copy);
    expect(wal.hardState(gid(1))).toEqual({ term: 5, vote: 'n1', commit: 0 });
    await wal.close();
  });

  it('keeps hard state once the segments holding its records are compacted away', async () => {
    const d = dir('hardstate-compact');
    const limits = { segmentBytesTarget: 4 * 1024 };
    let wal = await WriteAheadLog.open(d, { limits });
    wal.createGroup(gid(1));
    wal.createGroup(gid(2));
    wal.setHardState(gid(1), { term: term(7), vote: 'n3', commit: logIndex(0) });
    await wal.flush();
    for (let i = 1; i <= 40; i++) {
      wal.append(gid(2), makeEntries('q2', i, 1, 1, 1000));
      wal.setLive(gid(2), logIndex(i));
      await wal.flush();
    }
    await wal.compact();
    expect(wal.stats().segments).toBeLessThan(3); // the first segment, with the vote, is gone
    await wal.close();
    wal = await WriteAheadLog.open(d, { limits });
    expect(wal.hardState(gid(1))).toEqual({ term: 7, vote: 'n3', commit: 0 });
    await wal.close();
  });

  it('reports records no registry entry explains (a lost level store) instead of passing them off as an empty node', async () => {
    const d = dir('lost-meta');
    let wal = await WriteAheadLog.open(d);
    wal.createGroup(gid(1));
    wal.append(gid(1), makeEntries('q1', 1, 5, 1));
    await wal.flush();
    await wal.close();
    rmSync(join(d, 'meta'), { recursive: true, force: true });
    wal = await WriteAheadLog.open(d);
    expect(wal.recovery.unregisteredRecords).toBeGreaterThanOrEqual(5);
    wal.createGroup(gid(2)); // a new group never takes the numeric id the orphans carry
    wal.append(gid(2), makeEntries('q2', 1, 1, 1));
    await wal.flush();
    await wal.close();
    wal = await WriteAheadLog.open(d);
    expect(wal.lastIndex(gid(2))).toBe(1);
    expect(wal.recovery.unregisteredRecords).toBeGreaterThanOrEqual(5); // still orphans, not q2's
    await wal.close();
  });

  it('forgets a removed group and never reuses its numeric id for a new one', async () => {
    const d = dir('remove');
    let wal = await WriteAheadLog.open(d);
    wal.createGroup(gid(1));
    wal.append(gid(1), makeEntries('q1', 1, 5, 1));
    await wal.flush();
    wal.removeGroup(gid(1));
    wal.createGroup(gid(2));
    wal.append(gid(2), makeEntries('q2', 1, 2, 1));
    await wal.flush();
    await wal.close();
    wal = await WriteAheadLog.open(d);
    expect(wal.groupIds()).toEqual([gid(2)]);
    expectLog(wal, gid(2), 1, 2, () => 1);
    wal.createGroup(gid(1)); // the id may come back as a new replica, with an empty log
    expect(wal.lastIndex(gid(1))).toBe(0);
    await wal.close();
  });

  it('stores snapshots in files recorded in level; an installed one replaces the log', async () => {
    const d = dir('snapshot');
    let wal = await WriteAheadLog.open(d);
    wal.createGroup(gid(1));
    wal.createGroup(gid(2));
    wal.append(gid(1), makeEntries('q1', 1, 10, 1));
    wal.append(gid(2), makeEntries('q2', 1, 10, 1));
    await wal.flush();
    const membership = new TextEncoder().encode('voters=n1,n2,n3');
    await wal.saveSnapshot(gid(1), { index: logIndex(8), term: term(1), membership }, new Uint8Array([1, 2, 3]));
    wal.setLive(gid(1), logIndex(9));
    await wal.installSnapshot(gid(2), { index: logIndex(20), term: term(4), membership }, new Uint8Array([9]));
    wal.append(gid(2), makeEntries('q2', 21, 2, 4));
    await wal.flush();
    await wal.compact();
    await wal.close();
    wal = await WriteAheadLog.open(d);
    expect(wal.snapshotMeta(gid(1))?.index).toBe(8);
    expect(Buffer.from(wal.snapshotMeta(gid(1))!.membership).toString()).toBe('voters=n1,n2,n3');
    expect([...wal.readSnapshot(gid(1))!]).toEqual([1, 2, 3]);
    expectLog(wal, gid(1), 9, 10, () => 1);
    expect(wal.term(gid(1), logIndex(8))).toBe(1);
    expectLog(wal, gid(2), 21, 22, () => 4);
    expect(wal.term(gid(2), logIndex(20))).toBe(4);
    expect([...wal.readSnapshot(gid(2))!]).toEqual([9]);
    expect(wal.snapshotChunk(gid(1), logIndex(8), 1, 1)).toEqual({ data: Buffer.from([2]), done: false });
    expect(wal.snapshotChunk(gid(1), logIndex(8), 2, 100)).toEqual({ data: Buffer.from([3]), done: true });
    expect(wal.snapshotChunk(gid(1), logIndex(7), 0, 100)).toBeUndefined();
    await wal.close();
  });
});
