// A snapshot sent to a follower carries the entries the leader's log keeps below it: read in chunks
// of any size, installed on another log, readable there at once and after that log reopens; a
// group with nothing kept sends its snapshot's bare bytes.

import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { logIndex, term } from '../../src/lib/ids.js';
import { WriteAheadLog } from '../../src/storage/index.js';
import { fillTrailer, planTrailer, splitTrailer, type KeptEntry } from '../../src/storage/snapshot-trailer.js';
import { bodyOf, gid, makeEntries, tempDir } from './helpers.js';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openWal(label: string): Promise<{ wal: WriteAheadLog; dir: string }> {
  const t = tempDir(label);
  const wal = await WriteAheadLog.open(t.dir, { limits: { cacheBytesMax: 0 } });
  cleanups.push(t.remove, () => wal.close());
  return { wal, dir: t.dir };
}

/** Reads the whole sendable snapshot the way the Raft leader does, chunk by chunk. */
function readAll(wal: WriteAheadLog, index: number, chunkBytes: number): Buffer {
  const parts: Uint8Array[] = [];
  for (let offset = 0, n = 0; n < 100_000; n++) {
    const c = wal.snapshotChunk(gid(1), logIndex(index), offset, chunkBytes);
    expect(c).toBeDefined();
    parts.push(c!.data);
    offset += c!.data.length;
    if (c!.done) return Buffer.concat(parts);
  }
  throw new Error('snapshot never done');
}

const membership = new Uint8Array([9, 9]);

describe('snapshot trailer', () => {
  it('any chunking of snapshot bytes plus trailer splits back into the same snapshot and entries', () => {
    fc.assert(fc.property(
      fc.uint8Array({ maxLength: 50 }),
      fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 12 }),
      fc.integer({ min: 1, max: 64 }),
      (snapshot, bodies, chunk) => {
        const entries: KeptEntry[] = bodies.map((data, k) => ({ index: 3 * k + 1, term: k + 2, kind: k % 2, data }));
        const plan = planTrailer(entries.map((e) => [e.index, e.data.length]));
        const trailerBytes = plan?.bytes ?? 0;
        const total = snapshot.length + trailerBytes;
        const out = Buffer.alloc(total);
        for (let at = 0; at < total; at += chunk) {
          const end = Math.min(total, at + chunk);
          const fromFile = Math.max(0, Math.min(end, snapshot.length) - at);
          out.set(snapshot.subarray(at, at + fromFile), at);
          if (end - at > fromFile) {
            fillTrailer(plan!, at + fromFile - snapshot.length, end - snapshot.length, out, at + fromFile, (i) => entries.find((e) => e.index === i)!);
          }
        }
        const back = splitTrailer(out);
        expect(Buffer.from(back.snapshot).equals(Buffer.from(snapshot))).toBe(true);
        expect(back.entries.map((e) => ({ ...e, data: Buffer.from(e.data) }))).toEqual(entries.map((e) => ({ ...e, data: Buffer.from(e.data) })));
      },
    ), { numRuns: 200 });
  });

  it('a follower installing the leader\'s snapshot keeps the entries the leader kept, also after it reopens', async () => {
    const leader = await openWal('trailer-leader');
    const g = gid(1);
    leader.wal.createGroup(g);
    leader.wal.append(g, makeEntries('q1', 1, 20, 1, 200));
    await leader.wal.flush();
    const snap = Buffer.from('the state of the queue');
    await leader.wal.saveSnapshot(g, { index: logIndex(15), term: term(1), membership }, snap);
    leader.wal.setLive(g, logIndex(16), [3, 7, 12].map(logIndex));
    await leader.wal.compact();
    const sent = readAll(leader.wal, 15, 97);
    expect(sent.length).toBeGreaterThan(snap.length + 3 * 200);

    const follower = await openWal('trailer-follower');
    follower.wal.createGroup(g);
    follower.wal.append(g, makeEntries('q1', 1, 2, 1, 200));
    await follower.wal.flush();
    const restored = await follower.wal.installSnapshot(g, { index: logIndex(15), term: term(1), membership }, sent);
    expect(Buffer.from(restored).equals(snap)).toBe(true);
    const check = (wal: WriteAheadLog): void => {
      for (const i of [3, 7, 12]) expect(Buffer.from(wal.entry(g, logIndex(i))!.data).equals(Buffer.from(bodyOf('q1', i, 1, 200)))).toBe(true);
      for (const i of [1, 2, 5, 15]) expect(wal.entry(g, logIndex(i))).toBeUndefined();
      expect(wal.firstIndex(g)).toBe(16);
      expect(Buffer.from(wal.readSnapshot(g)!).equals(snap)).toBe(true);
    };
    check(follower.wal);
    await follower.wal.close();
    const reopened = await WriteAheadLog.open(follower.dir, {});
    cleanups.push(() => reopened.close());
    check(reopened);
    // What the follower sends on in its turn carries them too.
    expect(splitTrailer(reopened.snapshotChunk(g, logIndex(15), 0, 1 << 20)!.data).entries.map((e) => e.index)).toEqual([3, 7, 12]);
  });

  it('a group with nothing kept sends its snapshot as it is', async () => {
    const { wal } = await openWal('trailer-none');
    wal.createGroup(gid(1));
    wal.append(gid(1), makeEntries('q1', 1, 5, 1));
    await wal.flush();
    await wal.saveSnapshot(gid(1), { index: logIndex(5), term: term(1), membership }, Buffer.from('abc'));
    wal.setLive(gid(1), logIndex(6));
    expect(readAll(wal, 5, 2).toString()).toBe('abc');
  });
});
