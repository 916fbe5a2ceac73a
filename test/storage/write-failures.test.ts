// Failed writes through a fault-injecting file layer over real segment files: a failed write is
// cut off the segment and retried under a write alarm until it succeeds, without losing or
// duplicating an acknowledged entry; a failed fdatasync stops the log (never retried).

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isOperatingError, OperatingErrorCode, type OperatingError } from '../../src/lib/errors.js';
import { logIndex } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/log.js';
import { WriteAheadLog } from '../../src/storage/index.js';
import { FaultyIo } from './faulty-io.js';
import { bodyOf, gid, makeEntries, tempDir } from './helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => { for (const c of cleanups.splice(0)) c(); });

const fastRetries = { writeRetryDelayMsMin: 1, writeRetryDelayMsMax: 4 };

/** Alarm events in order, with a promise for the next one. */
class Alarms {
  readonly seen: Array<OperatingError | undefined> = [];
  private waiter: ((e: OperatingError | undefined) => void) | undefined;
  on = (e: OperatingError | undefined): void => {
    this.seen.push(e);
    this.waiter?.(e);
    this.waiter = undefined;
  };
  next(): Promise<OperatingError | undefined> {
    return new Promise((resolve) => { this.waiter = resolve; });
  }
}

function headSegmentPath(dir: string, wal: WriteAheadLog): string {
  return join(dir, String(wal.stats().segments).padStart(16, '0') + '.wal');
}

async function expectEntries(wal: WriteAheadLog, group: string, n: number, count: number): Promise<void> {
  expect(wal.lastIndex(gid(n))).toBe(count);
  const got = wal.entries(gid(n), logIndex(1), logIndex(count + 1), 1 << 24);
  expect(got.map((e) => e.index)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  for (const e of got) expect(Buffer.from(e.data).equals(Buffer.from(bodyOf(group, e.index, 1, 200)))).toBe(true);
}

describe('a failed write', () => {
  it.each([
    ['ENOSPC', OperatingErrorCode.DiskFull],
    ['EACCES', OperatingErrorCode.PermissionDenied],
    ['EIO', OperatingErrorCode.Io],
  ] as const)('(%s) is cut off the segment and retried under the write alarm; no acknowledged entry is lost or duplicated', async (errno, code) => {
    const t = tempDir('wfail');
    cleanups.push(t.remove);
    const io = new FaultyIo();
    const alarms = new Alarms();
    let wal = await WriteAheadLog.open(t.dir, { io, onWriteAlarm: alarms.on, limits: fastRetries });
    wal.createGroup(gid(1));
    wal.createGroup(gid(2));
    wal.append(gid(1), makeEntries('q1', 1, 20, 1, 200));
    await wal.flush();
    const segment = headSegmentPath(t.dir, wal);
    const goodBytes = statSync(segment).size;

    io.writeErrno = errno;
    io.partial = true;
    wal.append(gid(1), makeEntries('q1', 21, 10, 1, 200));
    wal.append(gid(2), makeEntries('q2', 1, 10, 1, 200));
    let settled = false;
    const blocked = wal.flush().then(() => { settled = true; });
    const raised = await alarms.next();
    expect(isOperatingError(raised, code)).toBe(true);
    expect(raised!.message).toContain(segment);
    expect(raised!.message).toMatch(/q1, q2|q2, q1/);
    expect(wal.writeAlarm()).toBe(raised);
    expect(wal.failure()).toBeUndefined();
    // Half a batch reached the file before the error: it was cut off again.
    expect(statSync(segment).size).toBe(goodBytes);
    // More writes queue up behind the failing batch and wait with it.
    wal.append(gid(2), makeEntries('q2', 11, 5, 1, 200));
    const later = wal.flush();
    await io.nextFailure(); // a retry failed again: still raised, still nothing acknowledged
    await io.nextFailure();
    expect(settled).toBe(false);
    expect(alarms.seen).toEqual([raised]); // told once, not per attempt

    io.writeErrno = undefined;
    const cleared = alarms.next();
    await Promise.all([blocked, later]);
    expect(await cleared).toBeUndefined();
    expect(wal.writeAlarm()).toBeUndefined();
    expect(io.failedWrites).toBeGreaterThanOrEqual(3);
    // Every failed attempt was cut back to the end of the last good batch, and nothing else was cut.
    expect(io.truncations).toEqual(Array.from({ length: io.failedWrites }, () => goodBytes));
    await expectEntries(wal, 'q1', 1, 30);
    await expectEntries(wal, 'q2', 2, 15);
    await wal.close();

    wal = await WriteAheadLog.open(t.dir, { limits: fastRetries });
    expect(wal.recovery.tornTailBytes).toBe(0);
    expect(wal.corruptedGroups()).toEqual([]);
    await expectEntries(wal, 'q1', 1, 30);
    await expectEntries(wal, 'q2', 2, 15);
    await wal.close();
  });

  it('stops the log after writeRetriesMax failed attempts', async () => {
    const t = tempDir('wgiveup');
    cleanups.push(t.remove);
    const io = new FaultyIo();
    const wal = await WriteAheadLog.open(t.dir, { io, limits: { ...fastRetries, writeRetriesMax: 3 } });
    wal.createGroup(gid(1));
    io.writeErrno = 'ENOSPC';
    wal.append(gid(1), makeEntries('q1', 1, 3, 1, 200));
    const error = await wal.flush().then(() => undefined, (e: unknown) => e);
    expect(isOperatingError(error, OperatingErrorCode.DiskFull)).toBe(true);
    expect(io.failedWrites).toBe(4);
    expect(wal.failure()).toBe(error);
    expect(() => wal.append(gid(1), makeEntries('q1', 4, 1, 1))).toThrow(/ENOSPC/);
    await wal.close();
  });
});

describe('a failed fdatasync', () => {
  it('is not retried: the flush rejects saying why, the log stops, and what was durable survives', async () => {
    const t = tempDir('syncfail');
    cleanups.push(t.remove);
    const io = new FaultyIo();
    const lines: string[] = [];
    const logger = createLogger({ sink: (l) => lines.push(l), clock: { nowMs: () => 0 }, level: 'info', component: 'test' });
    let wal = await WriteAheadLog.open(t.dir, { io, logger, limits: fastRetries });
    wal.createGroup(gid(1));
    wal.append(gid(1), makeEntries('q1', 1, 5, 1, 200));
    await wal.flush();
    io.syncErrno = 'EIO';
    wal.append(gid(1), makeEntries('q1', 6, 5, 1, 200));
    const error = await wal.flush().then(() => undefined, (e: unknown) => e as OperatingError);
    expect(isOperatingError(error, OperatingErrorCode.Io)).toBe(true);
    expect(error!.message).toContain('fdatasync failed on');
    expect(error!.message).toContain('q1');
    expect(error!.message).toMatch(/not retried/);
    expect(wal.failure()).toBe(error);
    expect(wal.writeAlarm()).toBeUndefined();
    expect(lines.some((l) => l.includes('wal.write_failed') && l.includes('not retried'))).toBe(true);
    await wal.close();

    wal = await WriteAheadLog.open(t.dir);
    expect(wal.corruptedGroups()).toEqual([]);
    await expectEntries(wal, 'q1', 1, 5);
    await wal.close();
  });
});
