// Disk full and permission denied: the failing writes are rejected with an OperatingError that
// names the file and the groups, later writes are refused, and what was durable stays intact.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isOperatingError, OperatingErrorCode, type OperatingError } from '../../src/lib/errors.js';
import { logIndex } from '../../src/lib/ids.js';
import { WriteAheadLog } from '../../src/storage/index.js';
import { gid, makeEntries, tempDir } from './helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => { for (const c of cleanups.splice(0)) c(); });

const limits = { segmentBytesTarget: 4 * 1024 };

/** Fills the head segment past its target so the next batch rolls to segment `headId + 1`. */
async function fillHead(wal: WriteAheadLog): Promise<void> {
  wal.createGroup(gid(1));
  wal.createGroup(gid(2));
  wal.append(gid(1), makeEntries('q1', 1, 10, 1, 500));
  await wal.flush();
}

function immutableDirsWork(): boolean {
  const d = mkdtempSync(join(tmpdir(), 'espresso-chattr-'));
  try {
    execFileSync('chattr', ['+i', d], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', d], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmdirSync(d);
  }
}

describe('configuration', () => {
  it('refuses unusable limits with BadConfig, saying which', async () => {
    const t = tempDir('badlimits');
    cleanups.push(t.remove);
    const opened = WriteAheadLog.open(t.dir, { limits: { segmentBytesTarget: 0, rewriteLiveRatioMax: 2 } });
    await expect(opened).rejects.toThrow(/segmentBytesTarget.*rewriteLiveRatioMax/);
    await expect(opened).rejects.toSatisfy((e: unknown) => isOperatingError(e, OperatingErrorCode.BadConfig));
  });
});

describe('write errors', () => {
  it('rejects the flush with DiskFull naming the segment and the groups, then refuses writes; acked data survives', async () => {
    const t = tempDir('diskfull');
    cleanups.push(t.remove);
    let wal = await WriteAheadLog.open(t.dir, { limits });
    await fillHead(wal);
    // The next segment is /dev/full: the kernel answers ENOSPC to every write.
    const next = join(t.dir, String(wal.stats().segments + 1).padStart(16, '0') + '.wal');
    symlinkSync('/dev/full', next);
    wal.append(gid(2), makeEntries('q2', 1, 3, 1, 100));
    let error: OperatingError | undefined;
    const first = wal.flush();
    const again = wal.flush(); // nothing new buffered: must share the outcome, not resolve early
    await first.catch((e: OperatingError) => { error = e; });
    await expect(again).rejects.toBe(error);
    expect(isOperatingError(error, OperatingErrorCode.DiskFull)).toBe(true);
    expect(error!.message).toContain(next);
    expect(error!.message).toContain('q2');
    expect(wal.failure()).toBe(error);
    expect(() => wal.append(gid(1), makeEntries('q1', 11, 1, 1))).toThrow(/ENOSPC/);
    await expect(wal.flush()).rejects.toBe(error);
    await wal.close();

    wal = await WriteAheadLog.open(t.dir, { limits });
    expect(wal.corruptedGroups()).toEqual([]);
    expect(wal.lastIndex(gid(1))).toBe(10);
    expect(wal.lastIndex(gid(2))).toBe(0); // never acknowledged
    expect(wal.entries(gid(1), logIndex(1), logIndex(11), 1 << 20)).toHaveLength(10);
    await wal.close();
  });

  it.skipIf(!immutableDirsWork())('reports PermissionDenied naming the file when a new segment cannot be created', async () => {
    const t = tempDir('perm');
    cleanups.push(t.remove);
    const wal = await WriteAheadLog.open(t.dir, { limits });
    await fillHead(wal);
    execFileSync('chattr', ['+i', t.dir]);
    cleanups.unshift(() => execFileSync('chattr', ['-i', t.dir]));
    let error: unknown;
    try { wal.append(gid(2), makeEntries('q2', 1, 1, 1)); } catch (e) { error = e; }
    expect(isOperatingError(error, OperatingErrorCode.PermissionDenied)).toBe(true);
    expect((error as Error).message).toContain(t.dir);
    expect((error as Error).message).toContain('q2');
    await expect(wal.flush()).rejects.toBe(error);
    await wal.close();
  });
});
