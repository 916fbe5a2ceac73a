// Three group hosts in one process on 127.0.0.1 with real transports and WALs in a temp dir:
// start, connect, record what every group applies, wait for conditions re-checked on every
// callback (no polling sleeps), restart from the same data dirs, clean up.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GroupHost } from '../../src/cluster/group-host.js';
import type { GroupHostOptions } from '../../src/cluster/group-host.js';
import type { GroupId, LogIndex, NodeId } from '../../src/lib/ids.js';
import { groupId, nodeId } from '../../src/lib/ids.js';
import { SeededRandom } from '../../src/lib/random.js';

export const ids: NodeId[] = ['n1', 'n2', 'n3'].map(nodeId);
const decoder = new TextDecoder();

export class Harness {
  readonly root = mkdtempSync(join(tmpdir(), 'espresso-cluster-'));
  hosts = new Map<NodeId, GroupHost>();
  /** Applied payloads per node per group, as strings, in apply order. */
  applied = new Map<NodeId, Map<GroupId, string[]>>();
  /** Last applied index and snapshot installs per node and group. */
  lastApplied = new Map<string, number>();
  snapshotsInstalled = new Map<string, number>();
  private waiters: Array<{ cond: () => boolean; resolve: () => void }> = [];
  private groupsCreated: GroupId[] = [];

  async startAll(extra: Partial<GroupHostOptions> = {}, only: readonly NodeId[] = ids): Promise<void> {
    for (const id of only) {
      const seed = ids.indexOf(id) + 1;
      const h = await GroupHost.start({
        nodeId: id, dataDir: join(this.root, id), listen: { host: '127.0.0.1', port: 0 }, secret: 'test-secret',
        random: new SeededRandom(seed), ...extra,
      });
      this.hosts.set(id, h);
      this.applied.set(id, new Map());
    }
    for (const [a, ha] of this.hosts) {
      for (const [b, hb] of this.hosts) if (a !== b) ha.addPeer(b, `127.0.0.1:${hb.port}`);
    }
  }

  /** Hosts group `name` on every running node (and remembers it for restarts). */
  createGroup(name: string): GroupId {
    const g = groupId(name);
    if (!this.groupsCreated.includes(g)) this.groupsCreated.push(g);
    for (const [id, h] of this.hosts) this.host(h, id, g);
    return g;
  }

  /** Hosts group `name` on some running nodes only, with these bootstrap members (default all three). */
  createGroupOn(name: string, nodes: readonly NodeId[], members: readonly NodeId[] = ids): GroupId {
    const g = groupId(name);
    for (const id of nodes) this.host(this.hosts.get(id)!, id, g, members);
    return g;
  }

  recreateGroups(): void {
    for (const g of this.groupsCreated) for (const [id, h] of this.hosts) this.host(h, id, g);
  }

  private host(h: GroupHost, id: NodeId, g: GroupId, members: readonly NodeId[] = ids): void {
    const log: string[] = [];
    this.applied.get(id)!.set(g, log);
    h.createGroup(g, members, {
      apply: (e) => {
        log.push(decoder.decode(e.data));
        this.lastApplied.set(`${id}/${g}`, e.index);
        this.notify();
      },
      // The state machine is the list of payloads; a snapshot is that list as JSON.
      installSnapshot: (index, _term, data) => {
        log.splice(0, log.length, ...(JSON.parse(decoder.decode(data)) as string[]));
        this.lastApplied.set(`${id}/${g}`, index);
        this.snapshotsInstalled.set(`${id}/${g}`, (this.snapshotsInstalled.get(`${id}/${g}`) ?? 0) + 1);
        this.notify();
      },
      leaderChange: () => this.notify(),
    });
  }

  /** Snapshots node `id`'s state of `g` at the last entry it applied. */
  async snapshot(id: NodeId, g: GroupId): Promise<void> {
    const index = this.lastApplied.get(`${id}/${g}`)!;
    await this.hosts.get(id)!.saveSnapshot(g, index as LogIndex, new TextEncoder().encode(JSON.stringify(this.appliedOn(id, g))));
  }

  appliedOn(id: NodeId, g: GroupId): string[] {
    return this.applied.get(id)?.get(g) ?? [];
  }

  /** The running host that leads `g` with no other running host claiming a later term. */
  leaderOf(g: GroupId): GroupHost | undefined {
    let best: GroupHost | undefined;
    let bestTerm = -1;
    for (const h of this.hosts.values()) {
      const s = h.status(g);
      if (s === null) continue;
      if (s.role === 'leader' && s.term > bestTerm) {
        best = h;
        bestTerm = s.term;
      }
    }
    return best;
  }

  async waitForLeader(g: GroupId, label = `a leader of ${g}`): Promise<GroupHost> {
    await this.until(() => this.leaderOf(g) !== undefined, label);
    return this.leaderOf(g)!;
  }

  /** Resolves when `cond` holds; re-checked after every apply and leader change, and every tick-ish. */
  until(cond: () => boolean, label: string, timeoutMs = 20_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { cond, resolve: () => { clearTimeout(timer); clearInterval(recheck); resolve(); } };
      // Leader elections show up in status() before any callback: recheck on a slow interval too.
      const recheck = setInterval(() => this.notify(), 20);
      const timer = setTimeout(() => {
        clearInterval(recheck);
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out waiting for ${label}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  private notify(): void {
    const done = this.waiters.filter((w) => w.cond());
    if (done.length === 0) return;
    this.waiters = this.waiters.filter((w) => !done.includes(w));
    for (const w of done) w.resolve();
  }

  async close(id: NodeId): Promise<void> {
    const h = this.hosts.get(id);
    this.hosts.delete(id);
    await h?.close();
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.hosts.keys()]) await this.close(id);
  }

  async cleanup(): Promise<void> {
    await this.closeAll();
    rmSync(this.root, { recursive: true, force: true });
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
