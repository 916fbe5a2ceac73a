// One Raft group on this node: roles and their step functions, elections (pre-vote, check-quorum,
// stickiness), replication and commit, snapshots, membership, transfer, read index, and what it
// contributes to a Ready. Time comes from the host's tick counter; it owns no timer.

import { assert } from '../lib/assert.js';
import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';
import type { Random } from '../lib/random.js';
import { logIndex, term as toTerm } from '../lib/ids.js';
import { ConfChangeKind, applyConfChange, checkConfChange, decodeConfChange, encodeConfChange, sameMembership } from './conf-change.js';
import type { ConfChange } from './conf-change.js';
import type { RaftConfig } from './limits.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import { ReadIndexQueue } from './read-index.js';
import type {
  AppendMessage, AppendResponseMessage, Entry, GroupMessage, GroupReady, HardState, HeartbeatItem,
  HeartbeatResponseItem, LogReader, Membership, Message, Role, SnapshotMessage,
  SnapshotResponseMessage, SoftState, VoteMessage, VoteResponseMessage,
} from './types.js';
import { EntryType } from './types.js';

export interface GroupHost {
  readonly self: NodeId;
  readonly cfg: RaftConfig;
  readonly random: Random;
  now(): number;
  send(m: Message): void;
  sendAfterPersist(m: Message): void;
  /** Something changed: the group may have a Ready, and its next deadline may be earlier. */
  touched(g: RaftGroup): void;
  /** Bcast appends at the next Ready (batches all proposals of one turn into one append). */
  wantBroadcast(g: RaftGroup): void;
}

export type ProposeResult =
  | { ok: true; index: LogIndex; term: Term }
  | { ok: false; reason: 'not_leader' | 'dropped' | 'invalid' | 'pending_change'; leaderHint?: NodeId; detail?: string };

interface SnapshotAssembly {
  readonly index: number;
  readonly term: number;
  nextOffset: number;
  readonly chunks: Uint8Array[];
}

const NEVER = Number.POSITIVE_INFINITY;

export class RaftGroup {
  role: Role = 'follower';
  term: number;
  vote: NodeId | null;
  leader: NodeId | null = null;
  readonly log: RaftLog;
  membership: Membership;
  /** Config entries not yet covered by a snapshot: effective membership = last one. */
  private configLog: Array<{ index: number; membership: Membership }>;
  readonly progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  /** See GroupInit.rebuiltAfter: null once this node never was or no longer is a rebuilt replica. */
  private readonly rebuiltAfter: number | null;
  /** Tick until which a torn tail keeps this node from granting votes; null when it does not. */
  private tornTailUntil: number | null;
  electionDeadline = NEVER;
  private leaderContactTick = -NEVER;
  private checkQuorumDeadline = NEVER;
  transferee: NodeId | null = null;
  private transferDeadline = NEVER;
  /** Index of this leader's first entry of its term: reads and config changes wait for it to commit. */
  private termStartIndex = 0;
  private uncommittedBytes = 0;
  private readonly reads: ReadIndexQueue;
  private assembly: SnapshotAssembly | null = null;
  private persisted: HardState;
  private lastSoft: SoftState;
  private membershipDirty = false;
  /** Tick at which the host's wheel will wake this group (NEVER: not scheduled). */
  wakeAt = NEVER;
  removed = false;

  constructor(
    readonly id: GroupId,
    private readonly host: GroupHost,
    init: { membership: Membership; hardState: HardState; reader: LogReader; applied: number; rebuiltAfter: number | null; tornTailAbstainTicks: number },
  ) {
    this.rebuiltAfter = init.rebuiltAfter;
    this.tornTailUntil = init.tornTailAbstainTicks > 0 ? host.now() + init.tornTailAbstainTicks : null;
    this.reads = new ReadIndexQueue(host.cfg.maxPendingReads);
    this.term = init.hardState.term;
    this.vote = init.hardState.vote;
    this.persisted = init.hardState;
    this.log = new RaftLog(init.reader, init.hardState.commit, init.applied);
    const snap = init.reader.snapshot();
    const base = snap?.membership ?? init.membership;
    const baseIndex = this.log.firstIndex() - 1;
    this.configLog = [{ index: baseIndex, membership: normalize(base) }];
    this.membership = this.configLog[0]!.membership;
    this.replayConfigEntries(baseIndex + 1, this.log.lastIndex());
    this.lastSoft = this.softState();
    this.resetElectionDeadline();
  }

  private get self(): NodeId {
    return this.host.self;
  }

  private get cfg(): RaftConfig {
    return this.host.cfg;
  }

  // ---- membership ----

  private replayConfigEntries(lo: number, hi: number): void {
    const budget = 64 << 20;
    for (let i = lo; i <= hi; ) {
      const batch = this.log.entries(i, hi + 1, budget);
      this.noteConfigEntries(batch);
      i += batch.length;
    }
  }

  private noteConfigEntries(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.type !== EntryType.ConfChange) continue;
      const c = decodeConfChange(e.data);
      if (c === null) continue;
      this.configLog.push({ index: e.index, membership: applyConfChange(this.membership, c) });
      this.setMembership(this.configLog[this.configLog.length - 1]!.membership);
    }
  }

  /** Config entries at or above `from` were truncated: fall back to the previous config. */
  private truncateConfig(from: number): void {
    while (this.configLog.length > 1 && this.configLog[this.configLog.length - 1]!.index >= from) this.configLog.pop();
    this.setMembership(this.configLog[this.configLog.length - 1]!.membership);
  }

  private setMembership(m: Membership): void {
    if (sameMembership(m, this.membership)) return;
    this.membership = m;
    this.membershipDirty = true;
    if (this.role === 'leader') this.syncProgress();
  }

  private lastConfigIndex(): number {
    return this.configLog[this.configLog.length - 1]!.index;
  }

  isVoter(n: NodeId): boolean {
    return this.membership.voters.includes(n);
  }

  private promotable(): boolean {
    // An abstaining node does not vote for itself either: its own log may lack acknowledged entries.
    return this.isVoter(this.self) && this.log.pendingSnapshotIndex() === null && !this.abstaining();
  }

  /** A rebuilt replica stays out of elections until the leader made it a voter again after re-adding it. */
  private rebuilding(): boolean {
    return this.rebuiltAfter !== null && !(this.isVoter(this.self) && this.lastConfigIndex() > this.rebuiltAfter);
  }

  /** True while this node must not grant votes (see GroupInit.rebuiltAfter and tornTailAbstainTicks). */
  abstaining(): boolean {
    if (this.tornTailUntil !== null && this.host.now() >= this.tornTailUntil) this.tornTailUntil = null;
    return this.rebuilding() || this.tornTailUntil !== null;
  }

  private quorum(): number {
    return Math.floor(this.membership.voters.length / 2) + 1;
  }

  private syncProgress(): void {
    const members = new Set<NodeId>([...this.membership.voters, ...this.membership.learners, this.self]);
    for (const n of [...this.progress.keys()]) if (!members.has(n)) this.progress.delete(n);
    for (const n of members) {
      if (!this.progress.has(n)) {
        const pr = new Progress(this.log.lastIndex() + 1, this.cfg.maxInflightAppends);
        pr.recentActive = true;
        this.progress.set(n, pr);
      }
    }
  }

  // ---- time ----

  private resetElectionDeadline(): void {
    const t = this.cfg.electionTimeoutTicks;
    this.electionDeadline = this.host.now() + t + this.host.random.int(t);
  }

  private inLease(): boolean {
    if (this.leader === null) return false;
    if (this.leader === this.self) return this.role === 'leader';
    return this.host.now() - this.leaderContactTick < this.cfg.electionTimeoutTicks;
  }

  nextDeadline(): number {
    if (this.role === 'leader') return Math.min(this.checkQuorumDeadline, this.transferDeadline);
    // A torn tail's abstention ends by itself: wake then to campaign if nobody leads.
    if (this.tornTailUntil !== null && this.isVoter(this.self) && !this.rebuilding()) return Math.max(this.tornTailUntil, this.electionDeadline);
    return this.promotable() ? this.electionDeadline : NEVER;
  }

  /** Called by the host's timer wheel when a deadline of this group may have passed. */
  onDeadline(): void {
    const now = this.host.now();
    if (this.role === 'leader') {
      if (now >= this.transferDeadline) this.abortTransfer();
      if (now >= this.checkQuorumDeadline) this.checkQuorum();
    } else if (now >= this.electionDeadline && this.promotable()) {
      this.campaign('pre');
    }
    this.host.touched(this);
  }

  private checkQuorum(): void {
    this.checkQuorumDeadline = this.host.now() + this.cfg.electionTimeoutTicks;
    let active = 0;
    for (const v of this.membership.voters) {
      const pr = this.progress.get(v);
      if (v === this.self || pr?.recentActive === true) active++;
    }
    for (const [n, pr] of this.progress) if (n !== this.self) pr.recentActive = false;
    // A leader that cannot hear from a majority steps down, so clients go find the real one.
    if (active < this.quorum()) this.becomeFollower(this.term, null);
  }

  // ---- role changes ----

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.leader = null;
    this.votes.clear();
    this.abortTransfer();
    this.reads.failAll();
    this.progress.clear();
    this.checkQuorumDeadline = NEVER;
    this.resetElectionDeadline();
  }

  becomeFollower(term: number, leader: NodeId | null): void {
    this.reset(term);
    this.role = 'follower';
    this.leader = leader;
    if (leader !== null) this.leaderContactTick = this.host.now();
    this.host.touched(this);
  }

  campaign(kind: 'pre' | 'real' | 'transfer'): void {
    if (!this.promotable()) return;
    if (kind === 'pre') {
      // Forget the leader: peers must not see us as having one (pitfall: pre-vote + check-quorum).
      this.reset(this.term);
      this.role = 'pre-candidate';
    } else {
      this.reset(this.term + 1);
      this.role = 'candidate';
      this.vote = this.self;
    }
    this.votes.set(this.self, true);
    this.host.touched(this);
    if (this.tallyVotes()) return;
    const pre = kind === 'pre';
    for (const v of this.membership.voters) {
      if (v === this.self) continue;
      const m: VoteMessage = {
        type: 'vote', group: this.id, from: this.self, to: v, term: toTerm(pre ? this.term + 1 : this.term), pre,
        lastIndex: logIndex(this.log.lastIndex()), lastTerm: this.log.lastTerm(), transfer: kind === 'transfer',
      };
      // A real vote request carries a new term and our own vote: both durable before it leaves.
      if (pre) this.host.send(m);
      else this.host.sendAfterPersist(m);
    }
  }

  /** Counts votes; moves on when decided. True when the role changed. */
  private tallyVotes(): boolean {
    let granted = 0;
    let rejected = 0;
    for (const v of this.membership.voters) {
      const g = this.votes.get(v);
      if (g === true) granted++;
      else if (g === false) rejected++;
    }
    if (granted >= this.quorum()) {
      if (this.role === 'pre-candidate') this.campaign('real');
      else this.becomeLeader();
      return true;
    }
    if (rejected >= this.quorum()) {
      this.becomeFollower(this.term, null);
      return true;
    }
    return false;
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader');
    this.reset(this.term);
    this.role = 'leader';
    this.leader = this.self;
    this.electionDeadline = NEVER;
    this.checkQuorumDeadline = this.host.now() + this.cfg.electionTimeoutTicks;
    this.uncommittedBytes = 0;
    this.syncProgress();
    const self = this.progress.get(this.self)!;
    self.match = this.log.stableLastIndex();
    // The no-op: the commit point is only known once an entry of this term commits (Figure 8).
    this.termStartIndex = this.log.lastIndex() + 1;
    this.appendLocal([{ type: EntryType.Normal, data: new Uint8Array(0) }]);
    this.host.touched(this);
  }

  // ---- leader: proposals ----

  private appendLocal(items: ReadonlyArray<{ type: Entry['type']; data: Uint8Array }>): { index: number } {
    let index = this.log.lastIndex();
    const entries: Entry[] = items.map((it) => ({ index: logIndex(++index), term: toTerm(this.term), type: it.type, data: it.data }));
    this.log.append(entries);
    this.noteConfigEntries(entries);
    this.host.wantBroadcast(this);
    this.host.touched(this);
    if (this.cfg.unsafe?.commitWithoutQuorum === true) this.maybeCommit();
    return { index };
  }

  private notLeader(): ProposeResult {
    const r: ProposeResult = { ok: false, reason: 'not_leader' };
    return this.leader !== null && this.leader !== this.self ? { ...r, leaderHint: this.leader } : r;
  }

  propose(data: Uint8Array): ProposeResult {
    if (this.role !== 'leader') return this.notLeader();
    if (this.transferee !== null) return { ok: false, reason: 'dropped', detail: 'leadership transfer in progress' };
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + data.length > this.cfg.maxUncommittedBytes) {
      return { ok: false, reason: 'dropped', detail: 'too many uncommitted bytes' };
    }
    this.uncommittedBytes += data.length;
    const { index } = this.appendLocal([{ type: EntryType.Normal, data }]);
    return { ok: true, index: logIndex(index), term: toTerm(this.term) };
  }

  proposeConfChange(c: ConfChange): ProposeResult {
    if (this.role !== 'leader') return this.notLeader();
    if (this.transferee !== null) return { ok: false, reason: 'dropped', detail: 'leadership transfer in progress' };
    // One change at a time, and only after an entry of this term committed (Ongaro, raft-dev 2015).
    if (this.lastConfigIndex() > this.log.committed || this.log.committed < this.termStartIndex) {
      return { ok: false, reason: 'pending_change' };
    }
    const problem = checkConfChange(this.membership, c);
    if (problem !== null) return { ok: false, reason: 'invalid', detail: problem };
    if (c.kind === ConfChangeKind.Promote) {
      const pr = this.progress.get(c.node);
      if (pr === undefined || this.log.lastIndex() - pr.match > this.cfg.maxEntriesPerAppend) {
        return { ok: false, reason: 'invalid', detail: `learner ${c.node} has not caught up` };
      }
    }
    const { index } = this.appendLocal([{ type: EntryType.ConfChange, data: encodeConfChange(c) }]);
    return { ok: true, index: logIndex(index), term: toTerm(this.term) };
  }

  transferLeadership(to: NodeId): ProposeResult {
    if (this.role !== 'leader') return this.notLeader();
    if (to === this.self || !this.isVoter(to)) return { ok: false, reason: 'invalid', detail: `${to} is not another voter` };
    this.transferee = to;
    this.transferDeadline = this.host.now() + this.cfg.electionTimeoutTicks;
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppends(to);
    this.host.touched(this);
    return { ok: true, index: logIndex(this.log.lastIndex()), term: toTerm(this.term) };
  }

  private abortTransfer(): void {
    this.transferee = null;
    this.transferDeadline = NEVER;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.host.send({ type: 'timeout-now', group: this.id, from: this.self, to, term: toTerm(this.term) });
  }

  // ---- leader: replication ----

  bcastAppend(sendIfEmpty: boolean): void {
    for (const n of this.progress.keys()) {
      if (n === this.self) continue;
      if (sendIfEmpty) this.sendAppend(n, true);
      this.sendAppends(n);
    }
  }

  /** Sends as many appends as the follower's window allows. */
  private sendAppends(to: NodeId): void {
    for (let k = 0; k <= this.cfg.maxInflightAppends; k++) if (!this.sendAppend(to, false)) return;
  }

  /** One append (or snapshot start) to `to`; false when nothing was sent. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || !pr.canSend()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined || pr.next < this.log.firstIndex()) return this.startSnapshot(to, pr);
    const last = this.log.lastIndex();
    const entries = pr.next <= last
      ? this.log.entries(pr.next, Math.min(last + 1, pr.next + this.cfg.maxEntriesPerAppend), this.cfg.maxBytesPerAppend)
      : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    const m: AppendMessage = {
      type: 'append', group: this.id, from: this.self, to, term: toTerm(this.term),
      prevIndex: logIndex(prevIndex), prevTerm, entries, commit: logIndex(this.log.committed),
    };
    this.host.send(m);
    pr.sent(prevIndex + entries.length, entries.length);
    return entries.length > 0;
  }

  private startSnapshot(to: NodeId, pr: Progress): boolean {
    const meta = this.log.latestSnapshot();
    assert(meta !== null, 'log compacted without a snapshot');
    pr.becomeSnapshot(meta.index);
    this.sendSnapshotChunk(to, pr);
    return false;
  }

  private sendSnapshotChunk(to: NodeId, pr: Progress): void {
    const meta = this.log.latestSnapshot();
    if (meta === null) return;
    if (meta.index !== pr.snapshotIndex) pr.becomeSnapshot(meta.index);
    const chunk = this.log.reader.snapshotChunk(meta.index, pr.snapshotOffset, this.cfg.snapshotChunkBytes);
    if (chunk === null) return;
    const m: SnapshotMessage = {
      type: 'snapshot', group: this.id, from: this.self, to, term: toTerm(this.term), meta,
      offset: pr.snapshotOffset, data: chunk.data, done: chunk.done,
    };
    this.host.send(m);
  }

  private maybeCommit(): boolean {
    let index: number;
    if (this.cfg.unsafe?.commitWithoutQuorum === true) {
      index = this.log.lastIndex();
    } else {
      const matches = this.membership.voters.map((v) => this.progress.get(v)?.match ?? 0).sort((a, b) => b - a);
      index = matches[this.quorum() - 1] ?? 0;
      // Only an entry of this term commits by counting replicas (Raft paper, Figure 8).
      if (this.cfg.unsafe?.countOldTermEntries !== true && this.log.term(index) !== this.term) return false;
    }
    if (!this.log.commitTo(index)) return false;
    this.afterLeaderCommit();
    return true;
  }

  private afterLeaderCommit(): void {
    this.host.touched(this);
    if (this.log.committed >= this.termStartIndex) for (const id of this.reads.takeWaiting()) this.startRead(id);
    // A leader that removed itself steps down once the change is committed.
    if (!this.isVoter(this.self) && this.log.committed >= this.lastConfigIndex()) {
      this.bcastAppend(true);
      this.becomeFollower(this.term, null);
    }
  }

  private handleAppendResponse(m: AppendResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      const probeAt = m.hintTerm > 0 ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index : m.hintIndex;
      if (pr.state !== 'snapshot' && m.index > pr.match && m.hintIndex < pr.match) {
        // Its log ends below its match: it lost acknowledged entries. Without this the probe never
        // goes below match + 1 and the follower stays behind for as long as this leader leads.
        pr.regressTo(m.hintIndex);
        this.sendAppends(m.from);
        return;
      }
      if (pr.state === 'snapshot' || !pr.maybeDecrTo(m.index, probeAt)) return;
      if (pr.state === 'replicate') {
        pr.becomeProbe();
        pr.next = Math.max(Math.min(m.index, probeAt + 1), pr.match + 1);
      }
      this.sendAppends(m.from);
      return;
    }
    const moved = pr.maybeUpdate(m.index);
    if (moved) pr.progressTick = this.host.now();
    if (pr.state === 'probe' && moved) pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match >= pr.snapshotIndex) pr.becomeProbe();
    if (moved && this.maybeCommit()) this.bcastAppend(true);
    else this.sendAppends(m.from);
    if (moved && m.from === this.transferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleSnapshotResponse(m: SnapshotResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined || pr.state !== 'snapshot' || m.index !== pr.snapshotIndex) return;
    pr.recentActive = true;
    pr.progressTick = this.host.now();
    pr.snapshotOffset = m.nextOffset;
    this.sendSnapshotChunk(m.from, pr);
  }

  // ---- heartbeats (coalesced by the host) ----

  heartbeatItem(to: NodeId, ctx: number): HeartbeatItem | null {
    const pr = this.progress.get(to);
    if (pr === undefined) return null;
    // Never tell a follower to commit past what it is known to hold (pitfall 2).
    return { group: this.id, term: toTerm(this.term), commit: logIndex(Math.min(this.log.committed, pr.match)), ctx };
  }

  /** A follower's side of one heartbeat line; returns the answer line, or null. */
  stepHeartbeat(from: NodeId, item: HeartbeatItem): HeartbeatResponseItem | null {
    if (item.term < this.term) return { group: this.id, term: toTerm(this.term), ctx: 0 };
    assert(!(this.role === 'leader' && item.term === this.term), `two leaders in term ${this.term}`);
    if (item.term > this.term || this.role !== 'follower' || this.leader !== from) this.becomeFollower(item.term, from);
    this.leaderContactTick = this.host.now();
    this.resetElectionDeadline();
    const commit = Math.min(item.commit, this.log.lastIndex());
    if (this.log.commitTo(commit)) this.host.touched(this);
    return { group: this.id, term: toTerm(this.term), ctx: item.ctx };
  }

  stepHeartbeatResponse(from: NodeId, item: HeartbeatResponseItem): void {
    if (item.term > this.term) {
      this.becomeFollower(item.term, null);
      return;
    }
    if (this.role !== 'leader' || item.term < this.term) return;
    const pr = this.progress.get(from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (item.ctx > 0) this.ackRead(from, item.ctx);
    // Acks stopped for half an election timeout while behind: appends or chunks were lost.
    const now = this.host.now();
    const stalled = now - pr.progressTick >= Math.max(2, this.cfg.electionTimeoutTicks >> 1);
    if (stalled) pr.progressTick = now;
    if (pr.state === 'snapshot') {
      if (stalled) this.sendSnapshotChunk(from, pr);
      return;
    }
    if (pr.match >= this.log.lastIndex()) return;
    if (pr.state === 'probe' || stalled) pr.becomeProbe();
    this.sendAppends(from);
  }

  // ---- read index ----

  readIndex(requestId: number): ProposeResult {
    if (this.role !== 'leader') return this.notLeader();
    if (this.reads.full()) return { ok: false, reason: 'dropped', detail: 'too many pending reads' };
    if (this.log.committed < this.termStartIndex) this.reads.wait(requestId);
    else this.startRead(requestId);
    return { ok: true, index: logIndex(this.log.committed), term: toTerm(this.term) };
  }

  private startRead(requestId: number): void {
    const ctx = this.reads.start(requestId, this.log.committed, this.self);
    if ((this.isVoter(this.self) && this.quorum() === 1) || this.cfg.unsafe?.readWithoutQuorum === true) {
      this.ackRead(this.self, ctx);
      return;
    }
    for (const v of this.membership.voters) {
      if (v === this.self) continue;
      const item = this.heartbeatItem(v, ctx);
      if (item !== null) this.host.send({ type: 'heartbeat', from: this.self, to: v, items: [item] });
    }
  }

  private ackRead(from: NodeId, ctx: number): void {
    const ackAll = this.cfg.unsafe?.readWithoutQuorum === true;
    if (this.reads.ack(ctx, from, this.membership.voters, this.quorum(), ackAll)) this.host.touched(this);
  }

  // ---- inbound per-group messages ----

  step(m: GroupMessage): void {
    if (m.term > this.term) {
      if (m.type === 'vote') {
        if (!m.transfer && this.inLease()) return; // leader stickiness
        if (!m.pre) this.becomeFollower(m.term, null);
      } else if (m.type === 'vote-response' && m.pre && !m.reject) {
        // a granted pre-vote carries the future term; nothing to adopt
      } else {
        const fromLeader = m.type === 'append' || m.type === 'snapshot' || m.type === 'timeout-now';
        this.becomeFollower(m.term, fromLeader ? m.from : null);
      }
    } else if (m.term < this.term) {
      this.stepStale(m);
      return;
    }
    this.stepCurrent(m);
  }

  private stepStale(m: GroupMessage): void {
    if (m.type === 'append' || m.type === 'snapshot') {
      // Tell the stale leader about the newer term so it steps down.
      this.respondAppend(m.from, true, 0, 0, 0);
    } else if (m.type === 'vote' && m.pre) {
      this.host.send(this.voteResponse(m, true));
    }
  }

  private stepCurrent(m: GroupMessage): void {
    switch (m.type) {
      case 'vote':
        return this.handleVote(m);
      case 'vote-response':
        return this.handleVoteResponse(m);
      case 'append':
      case 'snapshot':
        this.followLeader(m.from);
        if (m.type === 'append') this.handleAppend(m);
        else this.handleSnapshot(m);
        return;
      case 'append-response':
        if (this.role === 'leader') this.handleAppendResponse(m);
        return;
      case 'snapshot-response':
        if (this.role === 'leader') this.handleSnapshotResponse(m);
        return;
      case 'timeout-now':
        if (this.role !== 'leader') this.campaign('transfer');
        return;
    }
  }

  private followLeader(from: NodeId): void {
    assert(this.role !== 'leader', `two leaders in term ${this.term}: ${this.self} and ${from}`);
    if (this.role !== 'follower' || this.leader !== from) this.becomeFollower(this.term, from);
    this.leaderContactTick = this.host.now();
    this.resetElectionDeadline();
  }

  private voteResponse(m: VoteMessage, reject: boolean): VoteResponseMessage {
    const t = m.pre && !reject ? m.term : toTerm(this.term);
    return { type: 'vote-response', group: this.id, from: this.self, to: m.from, term: t, pre: m.pre, reject };
  }

  private handleVote(m: VoteMessage): void {
    if (this.abstaining()) {
      // Its log may lack entries it once acknowledged: a vote from it could elect a leader without them.
      this.host.send(this.voteResponse(m, true));
      return;
    }
    const canVote = this.vote === m.from || (this.vote === null && this.leader === null) || (m.pre && m.term > this.term);
    const grant = canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm);
    if (grant && !m.pre) {
      this.vote = m.from;
      this.resetElectionDeadline();
      this.host.touched(this);
    }
    if (m.pre || this.cfg.unsafe?.ackBeforePersist === true) this.host.send(this.voteResponse(m, !grant));
    else this.host.sendAfterPersist(this.voteResponse(m, !grant));
  }

  private handleVoteResponse(m: VoteResponseMessage): void {
    const waiting = (m.pre && this.role === 'pre-candidate') || (!m.pre && this.role === 'candidate');
    if (!waiting) return;
    this.votes.set(m.from, !m.reject);
    this.tallyVotes();
  }

  private respondAppend(to: NodeId, reject: boolean, index: number, hintIndex: number, hintTerm: number): void {
    const m: AppendResponseMessage = {
      type: 'append-response', group: this.id, from: this.self, to, term: toTerm(this.term), reject,
      index: logIndex(index), hintIndex: logIndex(hintIndex), hintTerm: toTerm(hintTerm),
    };
    if (this.cfg.unsafe?.ackBeforePersist === true) this.host.send(m);
    else this.host.sendAfterPersist(m);
  }

  private handleAppend(m: AppendMessage): void {
    if (m.prevIndex < this.log.committed) {
      this.respondAppend(m.from, false, this.log.committed, 0, 0);
      return;
    }
    if (!this.log.matchTerm(m.prevIndex, m.prevTerm)) {
      const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
      this.respondAppend(m.from, true, m.prevIndex, hint.index, hint.term);
      return;
    }
    const lastNew = m.prevIndex + m.entries.length;
    // Truncate only at a real conflict: stale or duplicated appends leave the log alone (pitfall 3).
    const conflict = this.log.findConflict(m.entries);
    if (conflict !== 0) {
      const fresh = m.entries.slice(conflict - m.entries[0]!.index);
      if (conflict <= this.log.lastIndex()) this.truncateConfig(conflict);
      this.log.append(fresh);
      this.noteConfigEntries(fresh);
    }
    // Commit only what this message verified (pitfall 2).
    this.log.commitTo(Math.min(m.commit, lastNew));
    // Verified through the leader's commit: whatever the torn tail held that was committed is back.
    if (lastNew >= m.commit) this.tornTailUntil = null;
    this.respondAppend(m.from, false, lastNew, 0, 0);
    this.host.touched(this);
  }

  private handleSnapshot(m: SnapshotMessage): void {
    if (m.meta.index <= this.log.committed) {
      this.respondAppend(m.from, false, this.log.committed, 0, 0);
      return;
    }
    const a = this.assembly;
    if (m.offset === 0) {
      this.assembly = { index: m.meta.index, term: m.meta.term, nextOffset: 0, chunks: [] };
    } else if (a === null || a.index !== m.meta.index || a.term !== m.meta.term || a.nextOffset !== m.offset) {
      const next = a !== null && a.index === m.meta.index ? a.nextOffset : 0;
      this.host.send(this.snapshotResponse(m, next));
      return;
    }
    const asm = this.assembly!;
    asm.chunks.push(m.data);
    asm.nextOffset += m.data.length;
    if (!m.done) {
      this.host.send(this.snapshotResponse(m, asm.nextOffset));
      return;
    }
    this.assembly = null;
    this.installSnapshot(m, concat(asm.chunks, asm.nextOffset));
  }

  private installSnapshot(m: SnapshotMessage, data: Uint8Array): void {
    if (this.log.matchTerm(m.meta.index, m.meta.term)) {
      // We already hold the covered log: just learn the commit.
      this.log.commitTo(m.meta.index);
    } else {
      this.log.restore({ meta: m.meta, data });
      this.configLog = [{ index: m.meta.index, membership: normalize(m.meta.membership) }];
      this.setMembership(this.configLog[0]!.membership);
    }
    this.respondAppend(m.from, false, m.meta.index, 0, 0);
    this.host.touched(this);
  }

  private snapshotResponse(m: SnapshotMessage, nextOffset: number): SnapshotResponseMessage {
    return {
      type: 'snapshot-response', group: this.id, from: this.self, to: m.from, term: toTerm(this.term),
      index: m.meta.index, nextOffset,
    };
  }

  // ---- Ready ----

  softState(): SoftState {
    return { role: this.role, leader: this.leader, term: toTerm(this.term) };
  }

  hasReady(): boolean {
    const hs = this.persisted;
    return (
      this.log.hasUnsent() || this.log.hasNextCommitted() || this.reads.hasOutput() ||
      this.membershipDirty || hs.term !== this.term || hs.vote !== this.vote || hs.commit !== this.log.committed ||
      this.role !== this.lastSoft.role || this.leader !== this.lastSoft.leader || this.term !== this.lastSoft.term
    );
  }

  takeReady(): GroupReady {
    const snapshot = this.log.takeSnapshot();
    const { entries, truncateFrom } = this.log.takeEntries(snapshot !== null);
    const hs = this.persisted;
    const hsChanged = hs.term !== this.term || hs.vote !== this.vote || hs.commit !== this.log.committed;
    const hardState: HardState | null = hsChanged
      ? { term: toTerm(this.term), vote: this.vote, commit: logIndex(this.log.committed) } : null;
    if (hardState !== null) this.persisted = hardState;
    const committedEntries = this.log.takeCommitted(this.cfg.maxApplyBytesPerReady);
    if (this.role === 'leader') {
      for (const e of committedEntries) this.uncommittedBytes = Math.max(0, this.uncommittedBytes - e.data.length);
    }
    const soft = this.softState();
    const softChanged = soft.role !== this.lastSoft.role || soft.leader !== this.lastSoft.leader || soft.term !== this.lastSoft.term;
    this.lastSoft = soft;
    const gr: GroupReady = {
      group: this.id, snapshot, truncateFrom: truncateFrom === null ? null : logIndex(truncateFrom), entries,
      hardState, committedEntries, ...this.reads.takeOutput(),
      softState: softChanged ? soft : null, membership: this.membershipDirty ? this.membership : null,
    };
    this.membershipDirty = false;
    return gr;
  }

  advance(gr: GroupReady): void {
    this.log.stableTo(gr.entries, gr.snapshot?.meta.index ?? null);
    const lastApplied = gr.committedEntries.length > 0 ? gr.committedEntries[gr.committedEntries.length - 1]!.index : null;
    if (gr.snapshot !== null && this.log.applied < gr.snapshot.meta.index) this.log.appliedTo(Math.min(gr.snapshot.meta.index, this.log.applying));
    if (lastApplied !== null) this.log.appliedTo(lastApplied);
    if (this.role === 'leader') {
      // Our own entries count toward the quorum only once they are durable here.
      const self = this.progress.get(this.self)!;
      if (self.maybeUpdate(this.log.stableLastIndex()) && this.maybeCommit()) this.bcastAppend(true);
    }
    if (this.hasReady()) this.host.touched(this);
  }

  compact(meta: { index: LogIndex; term: Term; membership: Membership }): void {
    assert(this.log.term(meta.index) === meta.term || this.log.firstIndex() > meta.index, 'compaction point term mismatch');
    this.log.compacted(meta);
    while (this.configLog.length > 1 && this.configLog[1]!.index <= meta.index) this.configLog.shift();
  }
}

function normalize(m: Membership): Membership {
  return { voters: [...m.voters].sort(), learners: [...m.learners].sort() };
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
