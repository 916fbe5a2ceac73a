// MultiRaft: every Raft group of one node behind one tick, one step and one Ready. Owns the timer
// wheel (idle groups cost nothing per tick), heartbeat coalescing per peer, and the two outboxes.

import { assert } from '../lib/assert.js';
import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';
import type { Random } from '../lib/random.js';
import type { ConfChange } from './conf-change.js';
import { RaftGroup } from './group.js';
import type { GroupHost, ProposeResult } from './group.js';
import type { RaftConfig } from './limits.js';
import { validateRaftConfig } from './limits.js';
import type {
  GroupReady, HardState, HeartbeatItem, HeartbeatResponseItem, LogReader, Membership, Message, Ready, Role,
  SnapshotMeta,
} from './types.js';

export interface GroupInit {
  /** Bootstrap membership; used only when the reader holds no snapshot (then the snapshot's wins). */
  readonly membership: Membership;
  readonly hardState: HardState;
  readonly reader: LogReader;
  /** The application's applied index (>= the snapshot index); defaults to the snapshot index. */
  readonly applied?: LogIndex;
  /**
   * A replica rebuilt from peers after its log was damaged: it grants no vote and never campaigns
   * until a config entry above this index (the leader's AddLearner for it) makes it a voter again.
   */
  readonly rebuiltAfter?: LogIndex;
  /**
   * The WAL cut a torn tail at restart (maybe acknowledged entries): the group neither grants votes
   * nor campaigns until an append from a leader verified its log through the leader's commit, or
   * for at most this many ticks (a whole-cluster restart must still elect someone).
   */
  readonly tornTailAbstainTicks?: number;
}

export interface GroupStatus {
  readonly role: Role;
  readonly term: Term;
  readonly vote: NodeId | null;
  readonly leader: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly membership: Membership;
  readonly transferee: NodeId | null;
  /** Grants no votes now (a rebuilt replica not yet a voter again, or a torn tail not yet confirmed by a leader). */
  readonly abstaining: boolean;
  /** Leader only (empty otherwise): each replica's acknowledged index and flow-control state. */
  readonly replicas: ReadonlyArray<{ node: NodeId; match: number; state: 'probe' | 'replicate' | 'snapshot' }>;
}

export class MultiRaft {
  private readonly groups = new Map<GroupId, RaftGroup>();
  private readonly leaders = new Set<RaftGroup>();
  private readonly dirty = new Set<RaftGroup>();
  private readonly broadcast = new Set<RaftGroup>();
  private readonly wheel = new Map<number, RaftGroup[]>();
  private messages: Message[] = [];
  private afterPersist: Message[] = [];
  private outstanding: Ready | null = null;
  private nowTicks = 0;
  private readonly host: GroupHost;
  /** Plain counters for observe/ (never reset): group wake-ups by the timer wheel, heartbeat messages. */
  readonly counters = { wakeups: 0, heartbeatMessagesSent: 0, heartbeatItemsSent: 0, readies: 0 };

  constructor(readonly self: NodeId, readonly config: RaftConfig, random: Random) {
    const problems = validateRaftConfig(config);
    assert(problems.length === 0, `bad raft config: ${problems.join('; ')}`);
    this.host = {
      self,
      cfg: config,
      random,
      now: () => this.nowTicks,
      send: (m) => this.messages.push(m),
      sendAfterPersist: (m) => this.afterPersist.push(m),
      touched: (g) => this.touched(g),
      wantBroadcast: (g) => this.broadcast.add(g),
    };
  }

  get ticks(): number {
    return this.nowTicks;
  }

  addGroup(id: GroupId, init: GroupInit): void {
    assert(!this.groups.has(id), `group ${id} already hosted`);
    assert(this.groups.size < this.config.maxGroups, 'too many groups');
    const g = new RaftGroup(id, this.host, {
      membership: init.membership, hardState: init.hardState, reader: init.reader, applied: init.applied ?? 0,
      rebuiltAfter: init.rebuiltAfter ?? null, tornTailAbstainTicks: init.tornTailAbstainTicks ?? 0,
    });
    this.groups.set(id, g);
    this.touched(g);
  }

  removeGroup(id: GroupId): void {
    const g = this.groups.get(id);
    if (g === undefined) return;
    g.removed = true;
    this.groups.delete(id);
    this.leaders.delete(g);
    this.dirty.delete(g);
    this.broadcast.delete(g);
  }

  hasGroup(id: GroupId): boolean {
    return this.groups.has(id);
  }

  /** One tick for every group: only groups whose deadline is due do any work. */
  tick(): void {
    this.nowTicks++;
    const due = this.wheel.get(this.nowTicks);
    if (due !== undefined) {
      this.wheel.delete(this.nowTicks);
      for (const g of due) {
        if (g.removed || g.wakeAt !== this.nowTicks) continue;
        g.wakeAt = Number.POSITIVE_INFINITY;
        this.counters.wakeups++;
        g.onDeadline();
        this.schedule(g);
      }
    }
    if (this.nowTicks % this.config.heartbeatIntervalTicks === 0) this.sendHeartbeats();
  }

  private sendHeartbeats(): void {
    const perPeer = new Map<NodeId, HeartbeatItem[]>();
    for (const g of this.leaders) {
      for (const peer of g.progress.keys()) {
        if (peer === this.self) continue;
        const item = g.heartbeatItem(peer, 0);
        if (item === null) continue;
        let items = perPeer.get(peer);
        if (items === undefined) perPeer.set(peer, (items = []));
        items.push(item);
      }
    }
    for (const [to, items] of perPeer) {
      this.counters.heartbeatMessagesSent++;
      this.counters.heartbeatItemsSent += items.length;
      this.messages.push({ type: 'heartbeat', from: this.self, to, items });
    }
  }

  step(m: Message): void {
    if (m.to !== this.self) return;
    if (m.type === 'heartbeat') {
      const out: HeartbeatResponseItem[] = [];
      for (const item of m.items) {
        const g = this.groups.get(item.group);
        const r = g?.stepHeartbeat(m.from, item);
        if (g !== undefined) this.touched(g);
        if (r !== null && r !== undefined) out.push(r);
      }
      // Answers carry our term, which the heartbeat may just have raised: durable first.
      if (out.length > 0) this.afterPersist.push({ type: 'heartbeat-response', from: this.self, to: m.from, items: out });
      return;
    }
    if (m.type === 'heartbeat-response') {
      for (const item of m.items) {
        const g = this.groups.get(item.group);
        if (g === undefined) continue;
        g.stepHeartbeatResponse(m.from, item);
        this.touched(g);
      }
      return;
    }
    const g = this.groups.get(m.group);
    if (g === undefined) return;
    g.step(m);
    this.touched(g);
  }

  propose(id: GroupId, data: Uint8Array): ProposeResult {
    return this.withGroup(id, (g) => g.propose(data));
  }

  proposeConfChange(id: GroupId, change: ConfChange): ProposeResult {
    return this.withGroup(id, (g) => g.proposeConfChange(change));
  }

  transferLeadership(id: GroupId, to: NodeId): ProposeResult {
    return this.withGroup(id, (g) => g.transferLeadership(to));
  }

  /** Starts a read-index round; the answer comes as a ReadState (or failedReads) in a Ready. */
  readIndex(id: GroupId, requestId: number): ProposeResult {
    return this.withGroup(id, (g) => g.readIndex(requestId));
  }

  /** Starts an election now (tests, and bootstrapping a fresh group faster). */
  campaign(id: GroupId): void {
    const g = this.groups.get(id);
    if (g === undefined || g.role === 'leader') return;
    g.campaign('pre');
    this.touched(g);
  }

  /** The application snapshotted up to meta.index; the host may drop log entries up to it. */
  compact(id: GroupId, meta: SnapshotMeta): void {
    const g = this.groups.get(id);
    assert(g !== undefined, `compact: unknown group ${id}`);
    g.compact(meta);
  }

  status(id: GroupId): GroupStatus | null {
    const g = this.groups.get(id);
    if (g === undefined) return null;
    return {
      role: g.role, term: g.term as Term, vote: g.vote, leader: g.leader, commit: g.log.committed,
      applied: g.log.applied, firstIndex: g.log.firstIndex(), lastIndex: g.log.lastIndex(),
      membership: g.membership, transferee: g.transferee, abstaining: g.abstaining(),
      replicas: g.role === 'leader' ? [...g.progress].map(([node, pr]) => ({ node, match: pr.match, state: pr.state })) : [],
    };
  }

  /** The group's commit index as this node knows it (0 when not hosted): cheap, no status object. */
  commitIndex(id: GroupId): number {
    return this.groups.get(id)?.log.committed ?? 0;
  }

  /** Term of one entry as this node sees it (durable or not); undefined outside its log. */
  entryTerm(id: GroupId, index: number): Term | undefined {
    return this.groups.get(id)?.log.term(index);
  }

  private withGroup(id: GroupId, f: (g: RaftGroup) => ProposeResult): ProposeResult {
    const g = this.groups.get(id);
    if (g === undefined) return { ok: false, reason: 'not_leader', detail: `group ${id} is not hosted here` };
    const r = f(g);
    this.touched(g);
    return r;
  }

  private touched(g: RaftGroup): void {
    if (g.removed) return;
    this.dirty.add(g);
    if (g.role === 'leader') this.leaders.add(g);
    else this.leaders.delete(g);
    this.schedule(g);
  }

  /** One wheel slot per group at its earliest deadline; later deadlines reschedule when it fires. */
  private schedule(g: RaftGroup): void {
    const d = Math.max(g.nextDeadline(), this.nowTicks + 1);
    if (d === Number.POSITIVE_INFINITY || d >= g.wakeAt) return;
    g.wakeAt = d;
    let slot = this.wheel.get(d);
    if (slot === undefined) this.wheel.set(d, (slot = []));
    slot.push(g);
  }

  private flushBroadcasts(): void {
    for (const g of this.broadcast) {
      if (g.role === 'leader' && !g.removed) g.bcastAppend(false);
    }
    this.broadcast.clear();
  }

  hasReady(): boolean {
    if (this.outstanding !== null) return false;
    if (this.messages.length > 0 || this.afterPersist.length > 0 || this.broadcast.size > 0) return true;
    for (const g of this.dirty) if (g.hasReady()) return true;
    return false;
  }

  /** Everything to persist, send and apply; call advance(ready) once it is durable. One at a time. */
  ready(): Ready {
    assert(this.outstanding === null, 'ready() called again before advance()');
    this.flushBroadcasts();
    const groups: GroupReady[] = [];
    const dirty = [...this.dirty];
    this.dirty.clear();
    for (const g of dirty) if (g.hasReady()) groups.push(g.takeReady());
    const r: Ready = { groups, messages: this.messages, messagesAfterPersist: this.afterPersist };
    this.messages = [];
    this.afterPersist = [];
    this.outstanding = r;
    this.counters.readies++;
    return r;
  }

  /** The host persisted the Ready, sent its messages and applied its committed entries. */
  advance(r: Ready): void {
    assert(this.outstanding === r, 'advance() with a Ready that is not the outstanding one');
    this.outstanding = null;
    for (const gr of r.groups) {
      const g = this.groups.get(gr.group);
      if (g === undefined) continue;
      g.advance(gr);
      this.touched(g);
    }
  }
}
