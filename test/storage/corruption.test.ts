// Recovery tells a torn tail (never fsynced: cut it) from damage in the middle of the log
// (maybe committed: keep it, report the group as corrupted, never truncate).

import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isOperatingError, OperatingErrorCode } from '../../src/lib/errors.js';
import { logIndex } from '../../src/lib/ids.js';
import { WriteAheadLog } from '../../src/storage/index.js';
import { bodyOf, gid, makeEntries, tempDir } from './helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => { for (const c of cleanups.splice(0)) c(); });

const limits = { segmentBytesTarget: 8 * 1024, cacheBytesMax: 0 };
const groups = [gid(1), gid(2), gid(3)];

/** Three groups, 40 entries each of 200 bytes, over several segments; returns the directory. */
async function writeLog(label: string): Promise<string> {
  const t = tempDir(label);
  cleanups.push(t.remove);
  const wal = await WriteAheadLog.open(t.dir, { limits });
  for (const g of groups) wal.createGroup(g);
  for (let i = 1; i <= 40; i += 4) {
    for (const g of groups) wal.append(g, makeEntries(g, i, 4, 1, 200));
    await wal.flush();
  }
  await wal.close();
  return t.dir;
}

/** The segment file and offset holding the body of (group, index). */
function findBody(dir: string, group: string, index: number): { file: string; offset: number } {
  const needle = Buffer.from(bodyOf(group, index, 1, 200));
  for (let id = 1; id < 100; id++) {
    const file = join(dir, String(id).padStart(16, '0') + '.wal');
    let bytes: Buffer;
    try { bytes = readFileSync(file); } catch { continue; }
    const offset = bytes.indexOf(needle);
    if (offset >= 0) return { file, offset };
  }
  throw new Error(`body of ${group}/${index} not found`);
}

function flipByte(file: string, offset: number): void {
  const bytes = readFileSync(file);
  bytes[offset] = bytes[offset]! ^ 0x5a;
  writeFileSync(file, bytes);
}

describe('corruption versus torn tail', () => {
  it('reports the group of a damaged body mid-log, keeps its entries and refuses the bad one', async () => {
    const dir = await writeLog('midbody');
    const at = findBody(dir, 'q2', 5);
    const sizeBefore = statSync(at.file).size;
    flipByte(at.file, at.offset + 17);
    const wal = await WriteAheadLog.open(dir, { limits });
    expect(wal.corruptedGroups()).toEqual([gid(2)]);
    expect(wal.recovery.tornTailBytes).toBe(0);
    expect(statSync(at.file).size).toBe(sizeBefore); // nothing was cut
    expect(wal.lastIndex(gid(2))).toBe(40);
    expect(wal.term(gid(2), logIndex(5))).toBe(1); // the identifiers are intact
    let error: unknown;
    try { wal.entries(gid(2), logIndex(4), logIndex(6), 1 << 20); } catch (e) { error = e; }
    expect(isOperatingError(error, OperatingErrorCode.Corrupted)).toBe(true);
    expect(String((error as Error).message)).toContain(at.file);
    for (const g of [gid(1), gid(3)]) expect(wal.entries(g, logIndex(1), logIndex(41), 1 << 20)).toHaveLength(40);
    await wal.close();
  });

  it('reports every group of a segment whose record header is damaged, without cutting the log', async () => {
    const dir = await writeLog('midheader');
    const at = findBody(dir, 'q1', 9);
    flipByte(at.file, at.offset - 20); // inside the header: group/index can no longer be trusted
    const wal = await WriteAheadLog.open(dir, { limits });
    expect(wal.corruptedGroups().sort()).toEqual([...groups].sort());
    expect(wal.recovery.tornTailBytes).toBe(0);
    expect(wal.recovery.damage.join()).toContain('bad-header');
    await wal.close();
  });

  it('cuts a torn tail: no group is corrupted, the torn entry is gone, later writes land after it', async () => {
    const dir = await writeLog('torn');
    const at = findBody(dir, 'q3', 40); // the very last record
    truncateSync(at.file, at.offset + 100); // its body only half reached the disk
    let wal = await WriteAheadLog.open(dir, { limits });
    expect(wal.corruptedGroups()).toEqual([]);
    expect(wal.recovery.tornTailBytes).toBeGreaterThan(0);
    expect(wal.lastIndex(gid(3))).toBe(39);
    expect(wal.lastIndex(gid(1))).toBe(40);
    wal.append(gid(3), makeEntries('q3', 40, 1, 2, 200));
    await wal.flush();
    await wal.close();
    wal = await WriteAheadLog.open(dir, { limits });
    expect(wal.corruptedGroups()).toEqual([]);
    expect(wal.term(gid(3), logIndex(40))).toBe(2);
    await wal.close();
  });

  it('treats a zero-filled last body (sectors never written) as torn, but a flipped one with a record after it as damage', async () => {
    const dir = await writeLog('zeros');
    const last = findBody(dir, 'q3', 40);
    const bytes = readFileSync(last.file);
    bytes.fill(0, last.offset, last.offset + 200);
    writeFileSync(last.file, bytes);
    let wal = await WriteAheadLog.open(dir, { limits });
    expect(wal.corruptedGroups()).toEqual([]);
    expect(wal.lastIndex(gid(3))).toBe(39);
    await wal.close();

    const earlier = findBody(dir, 'q1', 40); // same segment, intact records follow it
    flipByte(earlier.file, earlier.offset + 3);
    wal = await WriteAheadLog.open(dir, { limits });
    expect(wal.corruptedGroups()).toEqual([gid(1)]);
    expect(wal.lastIndex(gid(1))).toBe(40);
    await wal.close();
  });
});
