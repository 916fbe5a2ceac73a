// A replica whose log is damaged between restarts rebuilds itself from its peers: three real group
// hosts on loopback, each serving the repair RPCs and running the repair driver. The damaged node
// is removed, re-added as a learner, caught up (log or snapshot) and promoted, by itself, and the
// group keeps every committed entry.

import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GroupRepairDriver, serveGroupRepair } from '../../src/cluster/group-repair.js';
import { ClusterRpc } from '../../src/cluster/rpc.js';
import { isOperatingError, OperatingErrorCode } from '../../src/lib/errors.js';
import type { GroupId, NodeId } from '../../src/lib/ids.js';
import { createLogger, type Logger } from '../../src/lib/log.js';
import { Harness, ids, text } from './cluster-harness.js';

const [n1, n2, n3] = ids as [NodeId, NodeId, NodeId];

let h: Harness | undefined;
let stops: Array<() => void> = [];
afterEach(async () => {
  for (const s of stops) s();
  stops = [];
  await h?.cleanup();
  h = undefined;
});

/** Starts hosts `only` with one logger that keeps every line, and the repair RPCs on each. */
async function startWithRepair(harness: Harness, lines: string[], only: readonly NodeId[] = ids): Promise<void> {
  const logger: Logger = createLogger({ sink: (l) => lines.push(l), clock: { nowMs: () => 0 }, level: 'info', component: 'test' });
  await harness.startAll({ logger }, only);
  for (const id of only) {
    const host = harness.hosts.get(id)!;
    const rpc = new ClusterRpc(host.transport, logger);
    serveGroupRepair(host, rpc, logger);
    const driver = new GroupRepairDriver({ host, rpc, logger, limits: { backoffFirstMs: 20, backoffMaxMs: 200, scanIntervalMs: 50 } });
    stops.push(() => driver.close(), () => rpc.close());
  }
}

/** Proposes each payload in order through whoever leads, retrying on a leader change (bounded). */
async function proposeInOrder(harness: Harness, g: GroupId, payloads: readonly string[]): Promise<void> {
  for (const p of payloads) {
    for (let attempt = 0; ; attempt++) {
      const leader = await harness.waitForLeader(g);
      try {
        await leader.propose(g, text(p));
        break;
      } catch (e) {
        if (attempt >= 20 || !isOperatingError(e, OperatingErrorCode.NotLeader)) throw e;
      }
    }
  }
}

/** Flips one byte inside the stored body `body` in whichever WAL segment of node `id` holds it. */
function damage(harness: Harness, id: NodeId, body: string): void {
  const dir = join(harness.root, id, 'wal');
  const needle = Buffer.from(body);
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.wal'))) {
    const file = join(dir, name);
    const bytes = readFileSync(file);
    const at = bytes.indexOf(needle);
    if (at < 0) continue;
    bytes[at + 5] = bytes[at + 5]! ^ 0x5a;
    writeFileSync(file, bytes);
    return;
  }
  throw new Error(`body not found in ${dir}`);
}

function logged(lines: readonly string[], msg: string, node: NodeId): Array<Record<string, unknown>> {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['event'] === msg && l['node'] === node);
}

function isRepaired(harness: Harness, id: NodeId, g: GroupId): boolean {
  const host = harness.hosts.get(id)!;
  return host.groupsToRepair().length === 0 && (host.status(g)?.membership.voters.includes(id) ?? false);
}

const bodies = Array.from({ length: 30 }, (_, i) => `body-${i}-${'x'.repeat(48)}`);

describe('group repair', () => {
  it('a follower whose log is damaged rejoins as a learner, is promoted, and every committed entry survives', async () => {
    h = new Harness();
    const lines: string[] = [];
    await startWithRepair(h, lines);
    const g = h.createGroup('q1');
    await proposeInOrder(h, g, bodies);
    await h.until(() => ids.every((id) => h!.appliedOn(id, g).length === bodies.length), 'all applied before the damage');
    for (const s of stops) s();
    stops = [];
    await h.closeAll();
    damage(h, n1, bodies[7]!);

    await startWithRepair(h, lines);
    h.recreateGroups();
    // Out of Raft until the leader re-adds it: no status, nothing applied, proposals refused.
    expect(h.hosts.get(n1)!.groupsToRepair().map((r) => r.id)).toEqual([g]);
    expect(logged(lines, 'group repair started: damaged log discarded, rebuilding from peers', n1)).toHaveLength(1);
    await proposeInOrder(h, g, ['during-repair-1', 'during-repair-2']);
    await h.until(() => isRepaired(h!, n1, g), 'n1 a voter again', 30_000);
    await proposeInOrder(h, g, ['after-repair']);
    const all = [...bodies, 'during-repair-1', 'during-repair-2', 'after-repair'];
    await h.until(() => ids.every((id) => h!.appliedOn(id, g).length === all.length), 'all applied after the repair');
    for (const id of ids) expect(h.appliedOn(id, g)).toEqual(all);
    const finished = logged(lines, 'group repair finished: voter again', n1);
    expect(finished).toHaveLength(1);
    expect(finished[0]!['group']).toBe(g);
    expect(typeof finished[0]!['durationMs']).toBe('number');
    const s = h.leaderOf(g)!.status(g)!;
    expect(s.membership).toEqual({ voters: [n1, n2, n3], learners: [] });
  });

  it('catches up from a snapshot when the leader compacted its log, and a restart keeps it repaired', async () => {
    h = new Harness();
    const lines: string[] = [];
    await startWithRepair(h, lines);
    const g = h.createGroup('q1');
    await proposeInOrder(h, g, bodies);
    await h.until(() => ids.every((id) => h!.appliedOn(id, g).length === bodies.length), 'all applied before the damage');
    for (const s of stops) s();
    stops = [];
    await h.closeAll();
    damage(h, n3, bodies[20]!);

    // n3 comes back alone first: nobody leads, so it stays in repair (and out of Raft).
    await startWithRepair(h, lines, [n3]);
    h.createGroupOn('q1', [n3]);
    expect(h.hosts.get(n3)!.status(g)).toBeNull();
    for (const s of stops) s();
    stops = [];
    await h.close(n3);
    // n1 and n2 move on and compact their logs: n3 can only catch up from a snapshot.
    await startWithRepair(h, lines, [n1, n2]);
    h.createGroupOn('q1', [n1, n2]);
    await proposeInOrder(h, g, ['before-snapshot']);
    await h.until(() => [n1, n2].every((id) => h!.appliedOn(id, g).length === bodies.length + 1), 'n1 and n2 applied');
    await h.snapshot(n1, g);
    await h.snapshot(n2, g);
    // The log it had is gone for good: a restart resumes the repair instead of voting with an empty log.
    await startWithRepair(h, lines, [n3]);
    h.createGroupOn('q1', [n3]);
    expect(h.hosts.get(n3)!.groupsToRepair().map((r) => r.id)).toEqual([g]);
    expect(logged(lines, 'group repair resumed after a restart', n3)).toHaveLength(1);
    await h.until(() => isRepaired(h!, n3, g), 'n3 a voter again', 30_000);
    await h.until(() => h!.appliedOn(n3, g).length === bodies.length + 1, 'n3 rebuilt');
    expect(h.appliedOn(n3, g)).toEqual([...bodies, 'before-snapshot']);
    expect(h.snapshotsInstalled.get(`${n3}/${g}`)).toBeGreaterThanOrEqual(1);

    for (const s of stops) s();
    stops = [];
    await h.closeAll();
    await startWithRepair(h, lines);
    h.recreateGroups();
    expect(h.hosts.get(n3)!.groupsToRepair()).toEqual([]);
    await proposeInOrder(h, g, ['after-restart']);
    await h.until(() => ids.every((id) => h!.appliedOn(id, g).length === bodies.length + 2), 'all applied after the restart');
    for (const id of ids) expect(h.appliedOn(id, g)).toEqual([...bodies, 'before-snapshot', 'after-restart']);
  });

  it('a node whose WAL lost its tail abstains from elections until a leader confirmed its log, and gets the lost entries back', async () => {
    h = new Harness();
    const lines: string[] = [];
    await startWithRepair(h, lines);
    const g = h.createGroup('q1');
    await proposeInOrder(h, g, bodies);
    await h.until(() => ids.every((id) => h!.appliedOn(id, g).length === bodies.length), 'all applied before the cut');
    for (const s of stops) s();
    stops = [];
    await h.closeAll();
    // Cut n2's newest segment in the middle of the last body it holds: a torn write, as far as recovery can tell.
    const dir = join(h.root, n2, 'wal');
    const newest = readdirSync(dir).filter((n) => n.endsWith('.wal')).sort().at(-1)!;
    const file = join(dir, newest);
    const at = readFileSync(file).lastIndexOf(Buffer.from(bodies[bodies.length - 1]!));
    expect(at).toBeGreaterThan(0);
    truncateSync(file, at + 10);
    expect(statSync(file).size).toBe(at + 10);

    await startWithRepair(h, lines);
    h.recreateGroups();
    expect(h.hosts.get(n2)!.status(g)!.abstaining).toBe(true);
    expect(h.hosts.get(n2)!.status(g)!.lastIndex).toBeLessThan(h.hosts.get(n1)!.status(g)!.lastIndex);
    await proposeInOrder(h, g, ['after-cut']);
    await h.until(() => ids.every((id) => h!.appliedOn(id, g).length === bodies.length + 1), 'all applied after the cut');
    for (const id of ids) expect(h.appliedOn(id, g)).toEqual([...bodies, 'after-cut']);
    await h.until(() => h!.hosts.get(n2)!.status(g)!.abstaining === false, 'n2 votes again');
  });
});
