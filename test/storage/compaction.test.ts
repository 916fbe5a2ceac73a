// Live-range compaction: segments no group needs are deleted, sparse old segments are rewritten,
// so one entry kept live for ever cannot pin the disk while other groups write a lot.

import { afterEach, describe, expect, it } from 'vitest';
import { logIndex } from '../../src/lib/ids.js';
import { WriteAheadLog } from '../../src/storage/index.js';
import { bodyOf, gid, makeEntries, tempDir } from './helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => { for (const c of cleanups.splice(0)) c(); });

describe('compaction', () => {
  it('keeps disk bounded while one group holds an old entry live for ever', async () => {
    const t = tempDir('compaction');
    cleanups.push(t.remove);
    const segmentBytes = 32 * 1024;
    const limits = { segmentBytesTarget: segmentBytes, cacheBytesMax: 16 * 1024 };
    let wal = await WriteAheadLog.open(t.dir, { limits });
    const stuck = gid(0);
    const busy = Array.from({ length: 8 }, (_, k) => gid(k + 1));
    wal.createGroup(stuck);
    for (const g of busy) wal.createGroup(g);
    wal.append(stuck, makeEntries(stuck, 1, 1, 1, 500)); // the message nobody ever acks
    let diskMax = 0;
    let written = 0;
    for (let turn = 0; turn < 300; turn++) {
      for (const g of busy) {
        const next = wal.lastIndex(g) + 1;
        wal.append(g, makeEntries(g, next, 2, 1, 200));
        // Each busy queue keeps its last 4 entries live (a small backlog), the rest is settled.
        wal.setLive(g, logIndex(Math.max(1, next + 2 - 4)));
        written += 2 * 236;
      }
      // The stuck queue also leaves one message in 25 unacked for ever: without rewriting,
      // each of them would pin a whole segment.
      wal.append(stuck, makeEntries(stuck, wal.lastIndex(stuck) + 1, 1, 1, 100));
      const keep = [logIndex(1)];
      for (let i = 25; i < wal.lastIndex(stuck); i += 25) keep.push(logIndex(i));
      wal.setLive(stuck, logIndex(wal.lastIndex(stuck)), keep);
      await wal.flush();
      if (turn % 10 === 9) await wal.compact();
      diskMax = Math.max(diskMax, wal.stats().diskBytes);
    }
    expect(written).toBeGreaterThan(30 * segmentBytes);
    expect(diskMax).toBeLessThan(8 * segmentBytes);
    expect(Buffer.from(wal.entry(stuck, logIndex(1))!.data).equals(Buffer.from(bodyOf(stuck, 1, 1, 500)))).toBe(true);
    expect(wal.entry(stuck, logIndex(2))).toBeUndefined(); // settled entries are gone
    expect(Buffer.from(wal.entry(stuck, logIndex(250))!.data).equals(Buffer.from(bodyOf(stuck, 250, 1, 100)))).toBe(true);
    const lastOf = new Map(busy.map((g) => [g, wal.lastIndex(g)]));
    await wal.close();

    wal = await WriteAheadLog.open(t.dir, { limits });
    expect(wal.recovery.corruptedGroups).toEqual([]);
    expect(Buffer.from(wal.entry(stuck, logIndex(1))!.data).equals(Buffer.from(bodyOf(stuck, 1, 1, 500)))).toBe(true);
    for (let i = 25; i < 300; i += 25) {
      expect(Buffer.from(wal.entry(stuck, logIndex(i))!.data).equals(Buffer.from(bodyOf(stuck, i, 1, 100)))).toBe(true);
    }
    expect(wal.entry(stuck, logIndex(26))).toBeUndefined();
    for (const g of busy) {
      const last = lastOf.get(g)!;
      expect(wal.lastIndex(g)).toBe(last);
      expect(wal.firstIndex(g)).toBe(last - 3);
      for (const e of wal.entries(g, logIndex(last - 3), logIndex(last + 1), 1 << 20)) {
        expect(Buffer.from(e.data).equals(Buffer.from(bodyOf(g, e.index, 1, 200)))).toBe(true);
      }
    }
    await wal.close();
  });

  it('lets an idle log drop its mostly dead head segment, keeping the live entries', async () => {
    const t = tempDir('idle-head');
    cleanups.push(t.remove);
    // One big segment (as a node's 64 MiB): a drained queue leaves it full of dead records.
    const limits = { segmentBytesTarget: 1024 * 1024, idleHeadRollBytesMin: 16 * 1024 };
    let wal = await WriteAheadLog.open(t.dir, { limits });
    const meta = gid(1);
    const queue = gid(2);
    wal.createGroup(meta);
    wal.createGroup(queue);
    wal.append(meta, makeEntries(meta, 1, 3, 1, 200)); // definitions, live until a snapshot
    for (let i = 1; i <= 400; i += 20) {
      wal.append(queue, makeEntries(queue, i, 20, 1, 1000));
      await wal.flush();
    }
    wal.setLive(queue, logIndex(401)); // every message consumed
    const busy = await wal.compact();
    expect(busy.diskBytes).toBeGreaterThan(400 * 1000); // the head is never let go while the log grows
    const idle = await wal.compact({ idle: true });
    expect(idle.rewrittenRecords).toBe(3);
    expect(idle.diskBytes).toBeLessThan(4 * 1024);
    expect(wal.stats().segments).toBe(1);
    for (let i = 1; i <= 3; i++) expect(Buffer.from(wal.entry(meta, logIndex(i))!.data).equals(Buffer.from(bodyOf(meta, i, 1, 200)))).toBe(true);
    // A small head is left alone.
    expect((await wal.compact({ idle: true })).rewrittenRecords).toBe(0);
    await wal.close();
    wal = await WriteAheadLog.open(t.dir, { limits });
    expect(wal.recovery.corruptedGroups).toEqual([]);
    for (let i = 1; i <= 3; i++) expect(Buffer.from(wal.entry(meta, logIndex(i))!.data).equals(Buffer.from(bodyOf(meta, i, 1, 200)))).toBe(true);
    expect(wal.lastIndex(queue)).toBe(400);
    await wal.close();
  });

  it('serves every retained entry while a compaction copies it (before and after the copy is durable)', async () => {
    const t = tempDir('compaction-reads');
    cleanups.push(t.remove);
    const limits = { segmentBytesTarget: 4 * 1024, cacheBytesMax: 0, rewriteAfterSegments: 1 };
    const wal = await WriteAheadLog.open(t.dir, { limits });
    const g = gid(1);
    wal.createGroup(g);
    for (let i = 1; i <= 60; i += 5) {
      wal.append(g, makeEntries(g, i, 5, 1, 300));
      await wal.flush();
    }
    const keep = [3, 17, 29, 41].map(logIndex);
    wal.setLive(g, logIndex(58), keep); // old segments are now sparse: their kept entries get copied
    const done = wal.compact().then((r) => r);
    let settled = false;
    void done.then(() => { settled = true; });
    let rounds = 0;
    for (; !settled && rounds < 100_000; rounds++) {
      for (const i of keep) expect(Buffer.from(wal.entry(g, i)!.data).equals(Buffer.from(bodyOf(g, i, 1, 300)))).toBe(true);
      await new Promise((r) => setImmediate(r));
    }
    expect((await done).rewrittenRecords).toBeGreaterThan(0);
    for (const i of keep) expect(Buffer.from(wal.entry(g, i)!.data).equals(Buffer.from(bodyOf(g, i, 1, 300)))).toBe(true);
    await wal.close();
  });

  it('deletes a segment holding a truncation only with every older segment, so old entries stay superseded', async () => {
    const t = tempDir('supersede');
    cleanups.push(t.remove);
    const limits = { segmentBytesTarget: 4 * 1024, rewriteAfterSegments: 1000 }; // no rewrites: pins stay
    let wal = await WriteAheadLog.open(t.dir, { limits });
    const [a, pin, filler] = [gid(1), gid(2), gid(3)];
    wal.createGroup(a);
    wal.createGroup(pin);
    wal.createGroup(filler);
    wal.append(pin, makeEntries(pin, 1, 1, 1, 100)); // pins the first segment
    wal.append(a, makeEntries(a, 1, 10, 1, 500)); // a's old term-1 suffix, in segment 1
    await wal.flush();
    wal.append(a, makeEntries(a, 3, 1, 2, 5000)); // truncates 3..10, in the next segment
    await wal.flush();
    for (let i = 0; i < 5; i++) { // later segments hold only another group's dead entries
      wal.append(filler, makeEntries(filler, wal.lastIndex(filler) + 1, 1, 1, 5000));
      wal.setLive(filler, logIndex(wal.lastIndex(filler) + 1));
      await wal.flush();
    }
    wal.setLive(a, logIndex(4)); // a needs nothing any more
    expect((await wal.compact()).deletedSegments).toBeGreaterThan(0);
    await wal.compact();
    await wal.close();
    wal = await WriteAheadLog.open(t.dir, { limits });
    // The term-1 entries 3..10 are still in segment 1; they must not come back.
    expect(wal.firstIndex(a)).toBe(4);
    expect(wal.lastIndex(a)).toBe(3);
    expect(wal.entry(a, logIndex(5))).toBeUndefined();
    expect(wal.recovery.corruptedGroups).toEqual([]);
    await wal.close();
  });
});
