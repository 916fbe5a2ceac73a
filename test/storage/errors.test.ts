// Disk full and permission denied on real files: a failing write waits under the write alarm
// (naming the file and the groups) and what was durable stays intact; a segment that cannot be
// created leaves the log on its current one. Injected failures: write-failures.test.ts.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isOperatingError, OperatingErrorCode, type OperatingError } from '../../src/lib/errors.js';
import { logIndex } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/log.js';
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
  it('waits under the write alarm while the kernel answers ENOSPC, naming the segment and the groups; close does not wait; acked data survives', async () => {
    const t = tempDir('diskfull');
    cleanups.push(t.remove);
    let raise!: (e: OperatingError) => void;
    const raised = new Promise<OperatingError>((resolve) => { raise = resolve; });
    let wal = await WriteAheadLog.open(t.dir, {
      limits: { ...limits, writeRetryDelayMsMin: 1, writeRetryDelayMsMax: 4 },
      onWriteAlarm: (e) => { if (e !== undefined) raise(e); },
    });
    await fillHead(wal);
    // The next segment is /dev/full: the kernel answers ENOSPC to every write.
    const next = join(t.dir, String(wal.stats().segments + 1).padStart(16, '0') + '.wal');
    symlinkSync('/dev/full', next);
    wal.append(gid(2), makeEntries('q2', 1, 3, 1, 100));
    const first = wal.flush();
    const again = wal.flush(); // nothing new buffered: must share the outcome, not resolve early
    const error = await raised;
    expect(isOperatingError(error, OperatingErrorCode.DiskFull)).toBe(true);
    expect(error.message).toContain(next);
    expect(error.message).toContain('q2');
    expect(wal.writeAlarm()).toBe(error);
    expect(wal.failure()).toBeUndefined(); // retrying, not stopped
    wal.append(gid(1), makeEntries('q1', 11, 1, 1)); // still accepted: it waits with the batch
    await wal.close(); // gives up the retries instead of waiting for space
    const outcome = await first.then(() => undefined, (e: unknown) => e);
    expect(isOperatingError(outcome, OperatingErrorCode.DiskFull)).toBe(true);
    await expect(again).rejects.toBe(outcome);

    wal = await WriteAheadLog.open(t.dir, { limits });
    expect(wal.corruptedGroups()).toEqual([]);
    expect(wal.lastIndex(gid(1))).toBe(10);
    expect(wal.lastIndex(gid(2))).toBe(0); // never acknowledged
    expect(wal.entries(gid(1), logIndex(1), logIndex(11), 1 << 20)).toHaveLength(10);
    await wal.close();
  });

  it.skipIf(!immutableDirsWork())('keeps appending to the current segment when a new one cannot be created, says so naming the file, and rolls once it can', async () => {
    const t = tempDir('perm');
    cleanups.push(t.remove);
    const lines: string[] = [];
    const logger = createLogger({ sink: (l) => lines.push(l), clock: { nowMs: () => 0 }, level: 'info', component: 'test' });
    let wal = await WriteAheadLog.open(t.dir, { limits, logger });
    await fillHead(wal);
    const segments = wal.stats().segments;
    execFileSync('chattr', ['+i', t.dir]);
    const unlock = (): void => { execFileSync('chattr', ['-i', t.dir]); };
    cleanups.unshift(unlock);
    wal.append(gid(2), makeEntries('q2', 1, 1, 1));
    await wal.flush();
    expect(wal.stats().segments).toBe(segments);
    const line = lines.find((l) => l.includes('wal.segment_roll_failed'));
    expect(line).toBeDefined();
    expect(line).toContain(t.dir);
    expect(line).toContain('q2');
    expect(line).toContain('E_PERMISSION_DENIED');
    unlock();
    wal.append(gid(2), makeEntries('q2', 2, 1, 1));
    await wal.flush();
    expect(wal.stats().segments).toBe(segments + 1);
    await wal.close();

    wal = await WriteAheadLog.open(t.dir, { limits });
    expect(wal.lastIndex(gid(2))).toBe(2);
    await wal.close();
  });
});

describe('level store write errors', () => {
  /** Makes the files writable again, once (the store may delete them after that). */
  function unlocker(files: string[]): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const f of files) execFileSync('chattr', ['-i', f]);
    };
  }

  function levelLogs(dir: string): string[] {
    return readdirSync(join(dir, 'meta')).filter((n) => n.endsWith('.log')).map((n) => join(dir, 'meta', n));
  }

  it.skipIf(!immutableDirsWork())('retries a failed level batch under the write alarm and completes it once the store takes writes again', async () => {
    const t = tempDir('levelfail');
    cleanups.push(t.remove);
    const alarms: Array<OperatingError | undefined> = [];
    let wal = await WriteAheadLog.open(t.dir, { limits: { writeRetryDelayMsMin: 1, writeRetryDelayMsMax: 4 }, onWriteAlarm: (e) => alarms.push(e) });
    wal.createGroup(gid(1));
    wal.append(gid(1), makeEntries('q1', 1, 3, 1));
    await wal.flush();
    const logs = levelLogs(t.dir);
    for (const f of logs) execFileSync('chattr', ['+i', f]);
    const unlock = unlocker(logs);
    cleanups.unshift(unlock);
    wal.createGroup(gid(2)); // a registry change: the batch carries a level write
    wal.append(gid(2), makeEntries('q2', 1, 2, 1));
    let done = false;
    const flushed = wal.flush().then(() => { done = true; });
    await until(() => alarms.length === 1);
    expect(alarms[0]!.message).toContain(join(t.dir, 'meta'));
    expect(alarms[0]!.message).toContain('q2');
    expect(done).toBe(false);
    expect(wal.failure()).toBeUndefined();
    unlock();
    await flushed;
    await until(() => alarms.length === 2);
    expect(alarms[1]).toBeUndefined();
    await wal.close();

    wal = await WriteAheadLog.open(t.dir);
    expect(wal.groupIds().sort()).toEqual([gid(1), gid(2)]);
    expect(wal.lastIndex(gid(2))).toBe(2);
    await wal.close();
  });

  it.skipIf(!immutableDirsWork())('a failed checkpoint fails that compaction only: the log goes on and the next compaction deletes the dead segments', async () => {
    const t = tempDir('ckptfail');
    cleanups.push(t.remove);
    const wal = await WriteAheadLog.open(t.dir, { limits: { segmentBytesTarget: 4 * 1024 } });
    await fillHead(wal);
    wal.append(gid(2), makeEntries('q2', 1, 10, 1, 500)); // rolls to a second segment
    await wal.flush();
    wal.setLive(gid(1), logIndex(11)); // everything of q1 is garbage now
    const logs = levelLogs(t.dir);
    for (const f of logs) execFileSync('chattr', ['+i', f]);
    const unlock = unlocker(logs);
    cleanups.unshift(unlock);
    const before = wal.stats().segments;
    await expect(wal.compact()).rejects.toSatisfy((e: unknown) => isOperatingError(e) && (e as Error).message.includes('checkpoint'));
    expect(wal.failure()).toBeUndefined();
    expect(wal.stats().segments).toBe(before);
    wal.append(gid(2), makeEntries('q2', 11, 1, 1));
    await wal.flush();
    unlock();
    const report = await wal.compact();
    expect(report.deletedSegments).toBeGreaterThan(0);
    await wal.close();
  });
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100_000 && !check(); i++) await new Promise((r) => setImmediate(r));
  expect(check()).toBe(true);
}
