// The group host when its disk fails it (through a fault-injecting WalIo on real files): failed
// writes raise the storage alarm and proposals wait, then commit exactly once when the disk is
// back; past the pending bound they are refused with DiskFull; a failed fdatasync stops the host.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GroupHost, type GroupHostOptions } from '../../src/cluster/group-host.js';
import { isOperatingError, OperatingErrorCode, type OperatingError } from '../../src/lib/errors.js';
import { groupId, nodeId } from '../../src/lib/ids.js';
import { FaultyIo } from '../storage/faulty-io.js';

const dirs: string[] = [];
const hosts: GroupHost[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const g = groupId('q1');
const enc = (s: string): Uint8Array => Buffer.from(s);

async function start(dir: string, extra: Partial<GroupHostOptions> = {}): Promise<{ host: GroupHost; applied: string[] }> {
  const host = await GroupHost.start({
    nodeId: nodeId('n1'), dataDir: dir, listen: { host: '127.0.0.1', port: 0 }, secret: 's',
    storageLimits: { writeRetryDelayMsMin: 1, writeRetryDelayMsMax: 4 }, ...extra,
  });
  hosts.push(host);
  const applied: string[] = [];
  host.createGroup(g, [host.nodeId], { apply: (e) => applied.push(Buffer.from(e.data).toString()) });
  return { host, applied };
}

function nextAlarm(host: GroupHost): Promise<OperatingError | null> {
  return new Promise((resolve) => {
    const off = host.onStorageAlarm((f) => { off(); resolve(f); });
  });
}

describe('group host on a failing disk', () => {
  it('holds proposals under the storage alarm and commits each exactly once when writes succeed again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-ghs-'));
    dirs.push(dir);
    const io = new FaultyIo();
    let { host, applied } = await start(dir, { storageIo: io });
    await Promise.all(['a0', 'a1', 'a2'].map((p) => host.propose(g, enc(p))));

    io.writeErrno = 'ENOSPC';
    io.partial = true;
    const raised = nextAlarm(host);
    let done = 0;
    const waiting = ['b0', 'b1', 'b2', 'b3'].map((p) => host.propose(g, enc(p)).then(() => { done++; }));
    const failure = await raised;
    expect(isOperatingError(failure, OperatingErrorCode.DiskFull)).toBe(true);
    expect(failure!.message).toContain(join(dir, 'wal'));
    expect(failure!.message).toContain('q1');
    expect(host.storageAlarm()).toBe(failure);
    await io.nextFailure();
    await io.nextFailure();
    expect(done).toBe(0);
    expect(applied).toEqual(['a0', 'a1', 'a2']);

    const cleared = nextAlarm(host);
    io.writeErrno = undefined;
    await Promise.all(waiting);
    expect(await cleared).toBeNull();
    expect(host.storageAlarm()).toBeNull();
    await host.propose(g, enc('c0'));
    const expected = ['a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'b3', 'c0'];
    expect(applied).toEqual(expected);

    await host.close();
    hosts.splice(hosts.indexOf(host), 1);
    ({ host, applied } = await start(dir));
    await host.propose(g, enc('d0')); // applied in order after everything the log replays
    expect(applied).toEqual([...expected, 'd0']);
  });

  it('refuses proposals past the pending bound with DiskFull while the alarm is raised', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-ghs-'));
    dirs.push(dir);
    const io = new FaultyIo();
    const { host } = await start(dir, { storageIo: io, limits: { pendingProposalsPerGroupMax: 3 } });
    await host.propose(g, enc('ok'));
    io.writeErrno = 'ENOSPC';
    const raised = nextAlarm(host);
    const waiting = [host.propose(g, enc('w0')), host.propose(g, enc('w1')), host.propose(g, enc('w2'))];
    await raised;
    const refused = await host.propose(g, enc('w3')).catch((e: unknown) => e);
    expect(isOperatingError(refused, OperatingErrorCode.DiskFull)).toBe(true);
    expect((refused as Error).message).toContain('ENOSPC');
    io.writeErrno = undefined;
    await Promise.all(waiting);
  });

  it('closes without waiting for the disk, failing the proposals that waited for it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-ghs-'));
    dirs.push(dir);
    const io = new FaultyIo();
    let { host, applied } = await start(dir, { storageIo: io });
    await host.propose(g, enc('kept'));
    io.writeErrno = 'ENOSPC';
    const raised = nextAlarm(host);
    const waiting = host.propose(g, enc('lost')).then(() => 'committed', (e: unknown) => e);
    await raised;
    await host.close();
    hosts.splice(hosts.indexOf(host), 1);
    const outcome = await waiting;
    expect(isOperatingError(outcome)).toBe(true);
    ({ host, applied } = await start(dir));
    await host.propose(g, enc('next'));
    expect(applied).toEqual(['kept', 'next']);
  });

  it('stops when an fdatasync fails, failing pending proposals with an error that says it is not retried', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-ghs-'));
    dirs.push(dir);
    const io = new FaultyIo();
    const { host } = await start(dir, { storageIo: io });
    await host.propose(g, enc('ok'));
    io.syncErrno = 'EIO';
    const err = await host.propose(g, enc('lost')).catch((e: unknown) => e);
    expect(isOperatingError(err, OperatingErrorCode.Io)).toBe(true);
    expect((err as Error).message).toMatch(/fdatasync failed on .*not retried/);
    await expect(host.propose(g, enc('after'))).rejects.toBe(err);
  });
});
