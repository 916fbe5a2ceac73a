// Deterministic simulation of several Raft groups on 3 or 5 nodes: one seed picks the faults
// (swarm testing), a chaos phase checks safety after every tick, then a healed phase must converge.
//
// Besides faults that strike any node at any time, two aim at leaders, because the bugs that
// matter most hide in a leader's first and last ticks, where random faults rarely land:
// - leader churn: a leader is crashed or cut off from every peer early in its term, or the tick
//   its commit index first moves, and comes back soon. Its own entries (the no-op first) may then
//   be on no majority while older ones are: logs diverge in uncommitted tails of different terms,
//   a later leader replicates an older term's tail piecemeal, and a leader that counts replicas
//   of old-term entries commits one a newer-term log can still overwrite (the Raft paper's
//   Figure 8).
// - leader pauses: a leader stops (GC, an overloaded host) for longer than an election takes;
//   when it runs again it serves a client's read that queued meanwhile before it reads its peers'
//   messages, as a process does that finds both waiting. A read answered then without a quorum
//   round returns a commit index older than one a client already saw.
// Both are drawn from their own random stream: a seed that uses neither replays as before.
//
// Leader completeness is checked on every tick as a state invariant too, not only when a leader
// is elected: no node lacking a committed entry may have a durable log that could win a majority's
// votes. An unsafe commit is caught the tick it happens, not only in the rare run that goes on to
// elect the node that overwrites it.

import type { GroupId, NodeId } from '../../../src/lib/ids.js';
import { groupId, logIndex, nodeId, term as toTerm } from '../../../src/lib/ids.js';
import { SeededRandom } from '../../../src/lib/random.js';
import {
  ConfChangeKind, EntryType, MultiRaft, applyConfChange, decodeConfChange, defaultRaftConfig,
} from '../../../src/raft/index.js';
import type { GroupReady, Membership, Message, RaftConfig, Ready, UnsafeTestFlags } from '../../../src/raft/index.js';
import { MemStorage, chainOf } from './mem-storage.js';
import { Network } from './network.js';

export interface SimOptions {
  readonly seed: number;
  readonly chaosTicks?: number;
  readonly livenessTicks?: number;
  readonly unsafe?: UnsafeTestFlags;
  readonly trace?: (line: string) => void;
}

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation: string | null;
  readonly tick: number;
  readonly replay: string;
  readonly summary: string;
  readonly committed: number;
}

interface AppState {
  index: number;
  chain: number;
  membership: Membership;
}

interface SimNode {
  readonly id: NodeId;
  raft: MultiRaft | null;
  readonly storage: Map<GroupId, MemStorage>;
  readonly app: Map<GroupId, AppState>;
  held: { ready: Ready; until: number } | null;
  downUntil: number;
  /** A process pause (GC, overloaded host): no ticks, no processing; messages wait in backlog. */
  pausedUntil: number;
  backlog: Message[];
  /** Resuming from a pause: serve queued client requests before the peers' messages. */
  clientsFirst: boolean;
}

class Violation extends Error {}

/** Leader churn: how early in a term, how likely per tick, and for how long (in election timeouts at most). */
const churn = { ageTicksMax: 10, perTickP: 0.2, downElectionTimeoutsMax: 3 } as const;

const encoder = new TextEncoder();

function snapshotData(app: AppState, padBytes: number): Uint8Array {
  const out = new Uint8Array(8 + padBytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, app.index);
  view.setUint32(4, app.chain);
  return out;
}

function chainFromSnapshot(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(4);
}

export class Simulation {
  private readonly rng: SeededRandom;
  private readonly faultRng: SeededRandom;
  private readonly workRng: SeededRandom;
  private readonly net: Network;
  private readonly nodes: SimNode[] = [];
  private readonly groups: GroupId[] = [];
  private readonly bootstrap = new Map<GroupId, Membership>();
  private readonly cfg: RaftConfig;
  private tick = 0;
  private proposals = 0;
  private readonly counts = { crashes: 0, snapshotsInstalled: 0, confChanges: 0, reads: 0, failedReads: 0, leaders: 0, truncations: 0 };
  // ghosts for the checker
  private readonly leaderOfTerm = new Map<string, NodeId>();
  private readonly logChains = new Map<string, number>();
  private readonly appliedChain = new Map<GroupId, number[]>();
  private readonly commitTerm = new Map<GroupId, number[]>();
  private readonly commitEntryTerm = new Map<GroupId, number[]>();
  private readonly readFloor = new Map<number, number>();
  private readonly everRemoved = new Map<GroupId, Set<NodeId>>();
  /** Groups whose voters may have changed (a configuration change was proposed). */
  private readonly confChanged = new Set<GroupId>();
  private readSeq = 0;
  /** Liveness phase: one proposal per group per leader term shows proposals still commit. */
  private readonly probed = new Set<string>();
  // swarm: which faults this seed uses
  private readonly swarm: Record<string, boolean>;
  private readonly rates: { crash: number; partition: number; member: number; transfer: number; compact: number };
  /** Leader-targeted faults (see the file header), from their own stream. */
  private readonly nemesisRng: SeededRandom;
  private readonly nemesis: { leaderChurn: boolean; leaderPause: boolean };
  /** Leaders cut off by leaderChurn, and the tick each rejoins. */
  private readonly isolated = new Map<NodeId, number>();
  /** When each group's current leadership began: `${group}:${term}` -> tick. */
  private readonly leaderSince = new Map<string, number>();
  /** Each group's current leadership's commit index when it began: `${group}:${term}` -> index. */
  private readonly commitAtStart = new Map<string, number>();

  constructor(private readonly opts: SimOptions) {
    const root = new SeededRandom(opts.seed);
    this.rng = root.fork();
    this.faultRng = root.fork();
    this.workRng = root.fork();
    const netRng = root.fork();
    this.nemesisRng = root.fork();
    this.nemesis = { leaderChurn: this.nemesisRng.chance(0.5), leaderPause: this.nemesisRng.chance(0.5) };
    const on = (): boolean => this.faultRng.chance(0.5);
    this.swarm = {
      drop: on(), dup: on(), delay: on(), crash: on(), partition: on(), oneWay: on(), member: on(),
      transfer: on(), compact: on(), asyncPersist: on(), reads: on(), pause: on(), timeouts: on(),
    };
    this.rates = { crash: 0.03, partition: 0.03, member: 0.05, transfer: 0.02, compact: 0.05 };
    this.net = new Network(netRng, {
      dropP: this.swarm.drop ? this.faultRng.next() * 0.15 : 0,
      dupP: this.swarm.dup ? this.faultRng.next() * 0.1 : 0,
      maxDelayTicks: this.swarm.delay ? 1 + this.faultRng.int(4) : 1,
    });
    this.cfg = {
      ...defaultRaftConfig,
      electionTimeoutTicks: this.swarm.timeouts ? 6 + this.faultRng.int(10) : 10,
      heartbeatIntervalTicks: this.swarm.timeouts ? 1 + this.faultRng.int(3) : 2,
      maxInflightAppends: 1 + this.faultRng.int(4), maxEntriesPerAppend: 1 + this.faultRng.int(8),
      maxBytesPerAppend: 64, snapshotChunkBytes: 16, maxApplyBytesPerReady: 64,
      ...(opts.unsafe !== undefined ? { unsafe: opts.unsafe } : {}),
    };
    const nodeCount = this.faultRng.chance(0.5) ? 3 : 5;
    for (let i = 1; i <= nodeCount; i++) {
      this.nodes.push({ id: nodeId(`n${i}`), raft: null, storage: new Map(), app: new Map(), held: null, downUntil: 0, pausedUntil: 0, backlog: [], clientsFirst: false });
    }
    const groupCount = 2 + this.faultRng.int(2);
    for (let k = 1; k <= groupCount; k++) {
      const g = groupId(`g${k}`);
      this.groups.push(g);
      const voters = nodeCount === 3 || this.faultRng.chance(0.3) ? this.nodes.map((n) => n.id) : this.nodes.slice(0, 3).map((n) => n.id);
      this.bootstrap.set(g, { voters, learners: [] });
      this.appliedChain.set(g, []);
      this.commitTerm.set(g, []);
      this.commitEntryTerm.set(g, []);
      this.everRemoved.set(g, new Set());
      for (const n of this.nodes) n.storage.set(g, new MemStorage());
    }
    for (const n of this.nodes) this.start(n);
  }

  private trace(line: string): void {
    this.opts.trace?.(`t${this.tick} ${line}`);
  }

  private start(n: SimNode): void {
    n.raft = new MultiRaft(n.id, this.cfg, this.rng.fork());
    for (const g of this.groups) {
      const st = n.storage.get(g)!;
      const app: AppState = st.snap !== null
        ? { index: st.snap.meta.index, chain: chainFromSnapshot(st.snap.data), membership: st.snap.meta.membership }
        : { index: 0, chain: 0, membership: this.bootstrap.get(g)! };
      n.app.set(g, app);
      n.raft.addGroup(g, { membership: this.bootstrap.get(g)!, hardState: st.hardState, reader: st, applied: logIndex(app.index) });
    }
  }

  private crash(n: SimNode, downTicks = 5 + this.faultRng.int(40)): void {
    this.trace(`crash ${n.id}`);
    this.counts.crashes++;
    n.raft = null;
    n.held = null; // unpersisted state is gone
    n.backlog = [];
    n.pausedUntil = 0;
    n.clientsFirst = false;
    n.downUntil = this.tick + downTicks;
  }

  run(): SimResult {
    const chaos = this.opts.chaosTicks ?? 250;
    const live = this.opts.livenessTicks ?? 400;
    let violation: string | null = null;
    try {
      for (; this.tick < chaos; ) this.step(true);
      this.heal();
      const end = this.tick + live;
      let converged = false;
      while (this.tick < end && !converged) {
        this.step(false);
        converged = this.converged();
      }
      if (!converged) throw new Violation(`liveness: no convergence within ${live} ticks after healing (${this.describe()})`);
    } catch (e) {
      violation = e instanceof Error ? `${e.name === 'Error' ? '' : e.name + ': '}${e.message}` : String(e);
    }
    const committed = Math.max(0, ...this.groups.map((g) => this.commitTerm.get(g)!.length - 1));
    return {
      seed: this.opts.seed, ok: violation === null, violation, tick: this.tick,
      replay: `npm run sim -- --seed ${this.opts.seed}${Object.keys(this.opts.unsafe ?? {}).map((f) => ` --unsafe ${f}`).join('')}`,
      summary: `nodes=${this.nodes.length} groups=${this.groups.length} faults=${[...Object.keys(this.swarm).filter((k) => this.swarm[k]), ...Object.entries(this.nemesis).filter(([, on]) => on).map(([k]) => k)].join(',')} ${JSON.stringify(this.counts)}`,
      committed,
    };
  }

  private describe(): string {
    const parts: string[] = [];
    for (const g of this.groups) {
      for (const n of this.nodes) {
        const s = n.raft?.status(g);
        parts.push(s ? `${g}/${n.id}:${s.role[0]}${s.term} c${s.commit} a${s.applied} l${s.lastIndex} L=${s.leader} v=${s.membership.voters.join('+')}` : `${g}/${n.id}:down`);
      }
    }
    return parts.join(' ');
  }

  private heal(): void {
    this.net.heal();
    this.net.faults = { dropP: 0, dupP: 0, maxDelayTicks: this.net.faults.maxDelayTicks };
    for (const n of this.nodes) n.pausedUntil = Math.min(n.pausedUntil, this.tick);
    for (const n of this.nodes) if (n.raft === null) this.start(n);
    this.trace('heal');
  }

  // ---- one tick ----

  private step(chaos: boolean): void {
    this.tick++;
    if (chaos) this.injectFaults();
    for (const m of this.net.due(this.tick)) {
      const n = this.nodes.find((x) => x.id === m.to);
      if (n === undefined || n.raft === null) continue;
      if (this.tick < n.pausedUntil) n.backlog.push(m);
      else n.raft.step(m);
    }
    for (const n of this.nodes) {
      if (n.raft === null) {
        if (chaos && this.tick >= n.downUntil) this.start(n);
        continue;
      }
      if (this.tick < n.pausedUntil) continue;
      if (n.clientsFirst) {
        // Back from a pause: the requests clients queued are served before the peers' messages.
        n.clientsFirst = false;
        this.queuedReads(n);
        this.drain(n, chaos);
      }
      if (n.backlog.length > 0) {
        const late = n.backlog;
        n.backlog = [];
        for (const m of late) n.raft.step(m);
      }
      n.raft.tick();
      this.workload(n, chaos);
      this.drain(n, chaos);
    }
    this.check();
  }

  private drain(n: SimNode, chaos: boolean): void {
    const raft = n.raft!;
    for (let k = 0; k < 8; k++) {
      if (n.held !== null) {
        if (this.tick < n.held.until) return;
        const r = n.held.ready;
        n.held = null;
        this.complete(n, r);
      }
      if (!raft.hasReady()) return;
      const r = raft.ready();
      for (const m of r.messages) this.net.send(this.tick, m);
      if (chaos && this.swarm.asyncPersist && this.workRng.chance(0.3)) {
        // fsync in progress: the node keeps stepping and ticking meanwhile
        n.held = { ready: r, until: this.tick + 1 + this.workRng.int(3) };
        return;
      }
      this.complete(n, r);
    }
  }

  private complete(n: SimNode, r: Ready): void {
    for (const gr of r.groups) {
      const problems = n.storage.get(gr.group)!.persist(gr, chainFromSnapshot);
      if (problems.length > 0) throw new Violation(`${n.id}/${gr.group}: ${problems.join('; ')}`);
      this.recordLogChains(n, gr);
    }
    for (const m of r.messagesAfterPersist) this.net.send(this.tick, m);
    for (const gr of r.groups) this.apply(n, gr);
    n.raft!.advance(r);
    if (this.swarm.compact) for (const g of this.groups) this.maybeCompact(n, g);
  }

  private recordLogChains(n: SimNode, gr: GroupReady): void {
    const st = n.storage.get(gr.group)!;
    for (const e of gr.entries) {
      const key = `${gr.group}:${e.index}:${e.term}`;
      const chain = st.chainAt(e.index)!;
      const seen = this.logChains.get(key);
      if (seen === undefined) this.logChains.set(key, chain);
      else if (seen !== chain) throw new Violation(`log matching: ${n.id} has a different prefix at ${key}`);
    }
  }

  private apply(n: SimNode, gr: GroupReady): void {
    const app = n.app.get(gr.group)!;
    const ghost = this.appliedChain.get(gr.group)!;
    if (gr.snapshot !== null) {
      const meta = gr.snapshot.meta;
      this.counts.snapshotsInstalled++;
      app.index = meta.index;
      app.chain = chainFromSnapshot(gr.snapshot.data);
      app.membership = meta.membership;
      const g = ghost[meta.index];
      if (g !== undefined && g !== app.chain) throw new Violation(`state machine safety: snapshot ${gr.group}@${meta.index} on ${n.id} differs`);
    }
    for (const e of gr.committedEntries) {
      if (e.index !== app.index + 1) throw new Violation(`${n.id}/${gr.group} applied ${e.index} after ${app.index}`);
      app.chain = chainOf(app.chain, e);
      app.index = e.index;
      if (e.type === EntryType.ConfChange) {
        this.counts.confChanges++;
        const c = decodeConfChange(e.data);
        if (c !== null) app.membership = applyConfChange(app.membership, c);
      }
      const g = ghost[e.index];
      if (g === undefined) ghost[e.index] = app.chain;
      else if (g !== app.chain) throw new Violation(`state machine safety: ${n.id} applied a different entry at ${gr.group}@${e.index}`);
    }
    this.counts.failedReads += gr.failedReads.length;
    if (gr.truncateFrom !== null) this.counts.truncations++;
    for (const rs of gr.readStates) {
      this.counts.reads++;
      const floor = this.readFloor.get(rs.requestId);
      if (floor !== undefined && rs.index < floor) {
        throw new Violation(`stale read: ${gr.group} read ${rs.requestId} got index ${rs.index} < ${floor} committed before it`);
      }
    }
  }

  private maybeCompact(n: SimNode, g: GroupId): void {
    const st = n.storage.get(g)!;
    const app = n.app.get(g)!;
    if (app.index - st.base < 6 || !this.workRng.chance(this.rates.compact)) return;
    const t = st.term(logIndex(app.index));
    if (t === undefined) return;
    const meta = { index: logIndex(app.index), term: toTerm(t), membership: app.membership };
    const snap = { meta, data: snapshotData(app, this.workRng.int(40)) };
    n.raft!.compact(g, meta);
    st.compact(snap);
  }

  // ---- workload and faults ----

  private workload(n: SimNode, chaos: boolean): void {
    const raft = n.raft!;
    for (const g of this.groups) {
      const s = raft.status(g)!;
      if (s.role !== 'leader') continue;
      const probe = `${g}:${s.term}`;
      // Clients back off when the leader has a backlog (as publishers wait for confirms).
      const busy = s.lastIndex - s.commit > 16;
      const count = chaos ? (!busy && this.workRng.chance(0.3) ? 1 + this.workRng.int(3) : 0) : this.probed.has(probe) ? 0 : 1;
      this.probed.add(probe);
      for (let k = 0; k < count; k++) {
        this.proposals++;
        raft.propose(g, encoder.encode(`${g}:${n.id}:${this.proposals}`));
      }
      if (this.swarm.reads && this.workRng.chance(0.25)) this.read(raft, g);
      if (!chaos) continue;
      if (this.swarm.member && this.faultRng.chance(this.rates.member)) this.changeMembership(raft, g, s.membership);
      if (this.swarm.transfer && this.faultRng.chance(this.rates.transfer)) {
        const to = s.membership.voters[this.faultRng.int(s.membership.voters.length)]!;
        if (to !== n.id) raft.transferLeadership(g, to);
      }
    }
  }

  /** A read whose answer must not be older than what was committed when it was asked. */
  private read(raft: MultiRaft, g: GroupId): void {
    const id = ++this.readSeq;
    this.readFloor.set(id, this.commitTerm.get(g)!.length - 1);
    raft.readIndex(g, id);
  }

  /** Back from a pause: a read a client sent meanwhile, for each group the node still leads. */
  private queuedReads(n: SimNode): void {
    for (const g of this.groups) if (n.raft!.status(g)!.role === 'leader') this.read(n.raft!, g);
  }

  private changeMembership(raft: MultiRaft, g: GroupId, m: Membership): void {
    this.confChanged.add(g);
    const removed = this.everRemoved.get(g)!;
    const outside = this.nodes.map((x) => x.id).filter((id) => !m.voters.includes(id) && !m.learners.includes(id) && !removed.has(id));
    const choice = this.faultRng.int(3);
    if (choice === 0 && outside.length > 0) {
      raft.proposeConfChange(g, { kind: ConfChangeKind.AddLearner, node: outside[0]! });
    } else if (choice === 1 && m.learners.length > 0) {
      raft.proposeConfChange(g, { kind: ConfChangeKind.Promote, node: m.learners[0]! });
    } else if (choice === 2 && m.voters.length > 2) {
      const victim = m.voters[this.faultRng.int(m.voters.length)]!;
      if (raft.proposeConfChange(g, { kind: ConfChangeKind.Remove, node: victim }).ok) removed.add(victim);
    }
  }

  private injectFaults(): void {
    this.injectLeaderFaults();
    const r = this.faultRng;
    if (this.swarm.crash && r.chance(this.rates.crash)) {
      const up = this.nodes.filter((n) => n.raft !== null);
      if (up.length > 0) this.crash(up[r.int(up.length)]!);
    }
    if (this.swarm.pause && r.chance(this.rates.crash)) {
      const n = this.nodes[r.int(this.nodes.length)]!;
      if (n.raft !== null) n.pausedUntil = this.tick + 1 + r.int(25);
    }
    if (this.swarm.partition && r.chance(this.rates.partition)) {
      this.net.healPartitions();
      const ids = this.nodes.map((n) => n.id);
      const a = ids[r.int(ids.length)]!;
      if (this.swarm.oneWay && r.chance(0.5)) {
        const b = ids.filter((x) => x !== a)[r.int(ids.length - 1)]!;
        this.net.block(a, b);
        this.trace(`one-way ${a}>${b}`);
      } else {
        const side = new Set(ids.filter(() => r.chance(0.4)));
        side.add(a);
        for (const x of ids) for (const y of ids) if (side.has(x) !== side.has(y)) this.net.block(x, y);
        this.trace(`partition ${[...side].join(',')}`);
      }
    } else if (r.chance(0.02)) {
      this.net.healPartitions();
    }
  }

  /** Leader-targeted faults: see the file header. */
  private injectLeaderFaults(): void {
    const r = this.nemesisRng;
    for (const [node, until] of this.isolated) {
      if (this.tick < until) continue;
      this.net.rejoin(node);
      this.isolated.delete(node);
      this.trace(`rejoin ${node}`);
    }
    if (!this.nemesis.leaderChurn && !this.nemesis.leaderPause) return;
    const et = this.cfg.electionTimeoutTicks;
    for (const g of this.groups) {
      for (const n of this.nodes) {
        const s = n.raft?.status(g);
        if (s === undefined || s === null || s.role !== 'leader' || this.tick < n.pausedUntil || this.isolated.has(n.id)) continue;
        const key = `${g}:${s.term}`;
        let since = this.leaderSince.get(key);
        if (since === undefined) {
          this.leaderSince.set(key, (since = this.tick));
          this.commitAtStart.set(key, s.commit);
        }
        const age = this.tick - since;
        const firstCommit = s.commit > this.commitAtStart.get(key)!;
        if (firstCommit) this.commitAtStart.set(key, Infinity);
        // Early in its term, or the moment it first commits: then its own entries may not be on a
        // majority yet, only older ones (which a correct leader must not count, Figure 8).
        if (this.nemesis.leaderChurn && ((age <= churn.ageTicksMax && r.chance(churn.perTickP)) || firstCommit)) {
          const down = 2 + r.int(churn.downElectionTimeoutsMax * et);
          if (r.chance(0.5)) {
            this.crash(n, down);
          } else {
            this.isolated.set(n.id, this.tick + down);
            this.net.isolate(n.id);
            this.trace(`isolate leader ${n.id} of ${g} until t${this.tick + down}`);
          }
        } else if (this.nemesis.leaderPause && age > 4 && r.chance(0.02)) {
          n.pausedUntil = this.tick + 2 * et + r.int(2 * et);
          n.clientsFirst = true;
          this.trace(`pause leader ${n.id} of ${g} until t${n.pausedUntil}`);
        }
      }
    }
  }

  // ---- invariants ----

  private check(): void {
    for (const n of this.nodes) {
      const raft = n.raft;
      if (raft === null) continue;
      for (const g of this.groups) {
        const s = raft.status(g)!;
        if (!(s.applied <= s.commit && s.commit <= s.lastIndex)) {
          throw new Violation(`${n.id}/${g}: applied ${s.applied} <= commit ${s.commit} <= last ${s.lastIndex} broken`);
        }
        if (s.role === 'leader') this.checkLeader(n, raft, g, s.term, s.commit);
      }
    }
    for (const g of this.groups) if (!this.confChanged.has(g)) this.checkElectable(g);
  }

  /**
   * Leader completeness as a state invariant, checked before any election happens: a node whose
   * durable log lacks the last committed entry must not have a log at least as up to date as a
   * majority of the voters' durable logs, or it could be elected (after crashes that leave every
   * node with its durable log) and overwrite that entry. Checked for groups whose voters never
   * changed, where the voters are known without reading each node's configuration.
   */
  private checkElectable(g: GroupId): void {
    const et = this.commitEntryTerm.get(g)!;
    const c = et.length - 1;
    if (c < 1) return;
    const voters = this.bootstrap.get(g)!.voters;
    const logs = voters.map((v) => {
      const st = this.nodes.find((n) => n.id === v)!.storage.get(g)!;
      const last = st.lastIndex();
      return { id: v, st, last, lastTerm: st.term(last) ?? 0 };
    });
    for (const cand of logs) {
      if (c <= cand.st.base || cand.st.term(logIndex(c)) === et[c]) continue;
      const votes = logs.filter((v) => cand.lastTerm > v.lastTerm || (cand.lastTerm === v.lastTerm && cand.last >= v.last)).length;
      if (votes >= Math.floor(voters.length / 2) + 1) {
        throw new Violation(`leader completeness: ${cand.id} could be elected in ${g} without committed entry ${c} (term ${et[c]}): its log (last ${cand.last}, term ${cand.lastTerm}) is as up to date as ${votes} of ${voters.length} voters'`);
      }
    }
  }

  private checkLeader(n: SimNode, raft: MultiRaft, g: GroupId, t: number, commit: number): void {
    const key = `${g}:${t}`;
    const prev = this.leaderOfTerm.get(key);
    if (prev !== undefined && prev !== n.id) throw new Violation(`two leaders in ${g} term ${t}: ${prev} and ${n.id}`);
    const ct = this.commitTerm.get(g)!;
    const et = this.commitEntryTerm.get(g)!;
    if (prev === undefined) {
      this.leaderOfTerm.set(key, n.id);
      this.counts.leaders++;
      // Leader completeness: everything committed in an earlier term is in this leader's log.
      for (let i = 1; i < ct.length; i++) {
        if (ct[i]! >= t || et[i] === 0) continue;
        const mine = raft.entryTerm(g, i);
        if (mine === undefined && i < raft.status(g)!.firstIndex) continue;
        if (mine !== et[i]) throw new Violation(`leader completeness: ${n.id} leads ${g} term ${t} without committed entry ${i} (term ${et[i]}, has ${mine})`);
      }
    }
    if (ct.length === 0) ct.push(0), et.push(0);
    for (let i = ct.length; i <= commit; i++) {
      ct.push(t);
      et.push(raft.entryTerm(g, i) ?? 0);
    }
  }

  private converged(): boolean {
    for (const g of this.groups) {
      let leader: SimNode | null = null;
      for (const n of this.nodes) if (n.raft?.status(g)?.role === 'leader') leader = n;
      if (leader === null) return false;
      const ls = leader.raft!.status(g)!;
      if (ls.commit !== ls.lastIndex || leader.raft!.entryTerm(g, ls.commit) !== ls.term) return false;
      for (const v of ls.membership.voters) {
        const s = this.nodes.find((x) => x.id === v)?.raft?.status(g);
        if (!s || s.leader !== leader.id || s.term !== ls.term || s.applied !== ls.commit) return false;
      }
    }
    return true;
  }
}

export function runSeed(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}
