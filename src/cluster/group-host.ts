// The group host: one node's Raft groups (a MultiRaft) on its real write-ahead log and transport,
// driven by a wall-clock ticker and one Ready cycle per event-loop turn for all groups together.
//
// Cycle (setImmediate-scheduled when there is work, at most one in flight): ready() -> install
// snapshots, write truncations, entries and hard states of every group to the WAL -> send
// `messages` -> await wal.flush() (one write + one fdatasync) -> send `messagesAfterPersist` ->
// apply committed entries, settle proposals, report leader changes -> advance() -> again while
// hasReady() (up to cyclesPerTurnMax, then yield a turn). A failed write waits in the WAL, which
// retries it under the storage alarm; a flush that fails (fdatasync, level, retries exhausted) is fatal.
// A hard state that changes only the commit index is not synced on its own: it rides with the next
// synced write or close, so after a crash commit may restart lower (safe: the leader re-teaches it).
//
// Restart: reopen the WAL (GroupHost.start on the same dataDir) and createGroup the same groups:
// term, vote, log and commit come back from the WAL, and the apply callback is handed the committed
// entries again FROM THE LAST SNAPSHOT (from index 1 when the group never snapshotted): the host keeps
// no applied index of its own, so state machines rebuild from their snapshot plus the log.
// A group the WAL found damaged is discarded and rebuilt from its peers (group-repair.ts drives it;
// <dataDir>/repairs.json remembers a rebuild across restarts); after a torn tail, groups abstain
// from elections until a leader confirmed their log (bounded).

import { assert } from '../lib/assert.js';
import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { SeededRandom, type Random } from '../lib/random.js';
import { EntryType, MultiRaft, defaultRaftConfig, validateRaftConfig } from '../raft/index.js';
import type { ConfChange, GroupReady, HardState, GroupStatus, ProposeResult, HeartbeatItem, HeartbeatResponseItem, GroupMessage, Message, RaftConfig, Ready } from '../raft/index.js';
import { WriteAheadLog, type CompactionReport, type StorageLimits, type WalIo, type WalStats } from '../storage/index.js';
import { Lane, ProtoDecodeError, Transport, type TlsFiles } from '../transport/index.js';
import { defaultGroupHostLimits, hostRaftTiming, raftBatchBytesMax, validateGroupHostLimits, walCompactIntervalMs, type GroupHostLimits } from './limits.js';
import { raftHardState, raftReader, walHardState } from './log-adapter.js';
import { decodeRaftBatch, encodeMembershipBlob, encodeRaftBatch } from './raft-wire.js';
import { RepairMarks } from './repair-marks.js';
import { BucketHistogram, latencyBucketsSeconds } from '../lib/histogram.js';
import { stamp, Stage, type MessageTrace } from '../lib/trace.js';
import type { FsyncHistograms } from '../storage/index.js';
import { traceNowMs } from './trace-clock.js';

export interface AppliedEntry {
  readonly index: LogIndex;
  readonly term: Term;
  readonly data: Uint8Array;
}

/** Per-group callbacks, called in the apply phase of a cycle (after the flush). */
export interface GroupHandlers {
  /** Committed application entries in log order (a leader's empty no-op and config entries are skipped). */
  apply(entry: AppliedEntry): void;
  /** The group's known leader changed (null: none known now). */
  leaderChange?(leader: NodeId | null, term: Term): void;
  /** A snapshot from the leader replaced the log: rebuild the state machine from `data`. */
  installSnapshot?(index: LogIndex, term: Term, data: Uint8Array): void;
}

export interface GroupHostOptions {
  nodeId: NodeId;
  dataDir: string;
  /** Cluster port (port 0 picks one: read `host.port`). */
  listen: { host: string; port: number };
  secret: string;
  logger?: Logger;
  raft?: Partial<RaftConfig>;
  limits?: Partial<GroupHostLimits>;
  storageLimits?: Partial<StorageLimits>;
  /** Mutual TLS on the cluster port (plaintext, still secret-authenticated, without). */
  tls?: TlsFiles;
  /** The WAL's file calls (tests inject disk failures here); the real ones by default. */
  storageIo?: WalIo;
  /** Election jitter; a seeded one by default. */
  random?: Random;
}

export interface GroupHostStats {
  cycles: number;
  entriesPersisted: number;
  entriesApplied: number;
  batchesSent: number;
  decodeErrors: number;
}

interface Pending {
  term: Term;
  resolve: (r: { index: LogIndex; term: Term }) => void;
  reject: (e: Error) => void;
  /** A sampled message's trace: the host stamps persisted, committed and applied. */
  trace?: MessageTrace;
}

/** A traced proposal not applied yet. */
interface TracedProposal {
  readonly group: GroupId;
  readonly index: number;
  readonly trace: MessageTrace;
}

/** Traced proposals in flight at once; more are proposed untraced. */
const tracedProposalsMax = 1024;

interface HostedGroup {
  readonly id: GroupId;
  readonly handlers: GroupHandlers;
  readonly pending: Map<number, Pending>;
  leader: NodeId | null;
  /** At or above the last config entry of the log (conservative: the whole log after a restart). */
  configIndex: number;
}

/** A group whose damaged log was discarded: rebuilt from its peers (src/cluster/group-repair.ts). */
export interface GroupToRepair {
  readonly id: GroupId;
  /** The bootstrap members it was hosted with. */
  readonly members: readonly NodeId[];
  /** Null while the group waits for its leader to re-add this node (not in Raft at all: silent). */
  readonly rebuiltAfter: LogIndex | null;
  readonly sinceMs: number;
}

type PeerBatch = { messages: GroupMessage[]; heartbeats: HeartbeatItem[]; heartbeatResponses: HeartbeatResponseItem[] };

export class GroupHost {
  private readonly groups = new Map<GroupId, HostedGroup>();
  /** Commit-only hard states not yet written (see persist). */
  private readonly deferredCommits = new Map<GroupId, HardState>();
  private readonly corrupted: Set<GroupId>;
  /** Groups being rebuilt from peers, and their bootstrap members (see GroupToRepair). */
  private readonly repairs = new Map<GroupId, { members: readonly NodeId[] }>();
  private readonly ticker: ReturnType<typeof setInterval>;
  private scheduled = false;
  private cycling: Promise<void> | undefined;
  private closed = false;
  private compacting = false;
  private compactedAtMs = -Infinity;
  /** A snapshot came while a compaction ran or too soon after one: run once more later. */
  private compactWanted = false;
  private compactTimer: ReturnType<typeof setTimeout> | undefined;
  /** Looks, once a while after a compaction, whether the log stayed idle (limits.idleCompactMs). */
  private idleCompactTimer: ReturnType<typeof setTimeout> | undefined;
  /** The log's bytesWritten after the last idle compaction: nothing more to do while it stays there. */
  private idleCompactedBytes = -1;
  private fatal: Error | undefined;
  private readonly storageAlarmListeners = new Set<(failure: OperatingError | null) => void>();
  private readonly leaderListeners = new Set<(group: GroupId, leader: NodeId | null) => void>();
  private readonly counters: GroupHostStats = { cycles: 0, entriesPersisted: 0, entriesApplied: 0, batchesSent: 0, decodeErrors: 0 };
  /** Each Ready cycle from ready() to advance(), fdatasync included (seconds). */
  readonly cycleSeconds = new BucketHistogram(latencyBucketsSeconds);
  private readonly traced: TracedProposal[] = [];

  private constructor(
    readonly nodeId: NodeId,
    private readonly raft: MultiRaft,
    private readonly wal: WriteAheadLog,
    /** The node's transport, shared with rpc and gossip (one stream per peer for every layer). */
    readonly transport: Transport,
    private readonly limits: GroupHostLimits,
    private readonly logger: Logger,
    private readonly marks: RepairMarks,
  ) {
    this.corrupted = new Set(wal.corruptedGroups());
    if (wal.recovery.tornTailBytes > 0) {
      logger.warn('torn tail cut at recovery: groups with other members abstain from elections until a leader confirms their log', { node: nodeId, bytes: wal.recovery.tornTailBytes });
    }
    if (this.corrupted.size > 0) {
      logger.error('damaged group logs found: each is discarded and rebuilt from its peers when hosted', { node: nodeId, groups: [...this.corrupted].join(',') });
    }
    transport.onMessage((from, lane, payload) => this.receive(from, lane, payload));
    this.ticker = setInterval(() => {
      this.raft.tick();
      this.schedule();
    }, limits.tickMs);
  }

  /** Opens (recovering) the WAL in dataDir/wal and starts the transport; no group is hosted yet. */
  static async start(o: GroupHostOptions): Promise<GroupHost> {
    const logger = (o.logger ?? silentLogger).child('group-host');
    const config = { ...defaultRaftConfig, ...hostRaftTiming, ...o.raft };
    const limits = { ...defaultGroupHostLimits, ...o.limits };
    const problems = [...validateRaftConfig(config), ...validateGroupHostLimits(limits)];
    if (problems.length > 0) throw new OperatingError(OperatingErrorCode.BadConfig, `group host: ${problems.join('; ')}`);
    // The host exists only once the WAL is open: the alarm reaches it through this relay.
    const relay: { to?: (failure: OperatingError | undefined) => void } = {};
    const wal = await WriteAheadLog.open(`${o.dataDir}/wal`, {
      logger, limits: o.storageLimits ?? {}, onWriteAlarm: (failure) => relay.to?.(failure), ...(o.storageIo === undefined ? {} : { io: o.storageIo }),
    });
    let transport: Transport;
    try {
      transport = await Transport.start({ nodeId: o.nodeId, listen: o.listen, secret: o.secret, logger, ...(o.tls !== undefined ? { tls: o.tls } : {}) });
    } catch (e) {
      await wal.close();
      throw e;
    }
    const random = o.random ?? new SeededRandom(Math.floor(Math.random() * 2 ** 32));
    let marks: RepairMarks;
    try {
      marks = new RepairMarks(o.dataDir);
    } catch (e) {
      await transport.close();
      await wal.close();
      throw new OperatingError(OperatingErrorCode.Corrupted, `group host: cannot read ${o.dataDir}/repairs.json: ${String(e)}`, { file: `${o.dataDir}/repairs.json` });
    }
    const host = new GroupHost(o.nodeId, new MultiRaft(o.nodeId, config, random), wal, transport, limits, logger, marks);
    relay.to = (failure) => host.storageAlarmChanged(failure ?? null);
    return host;
  }

  /**
   * The write failure the WAL is retrying (disk full, permission denied, I/O error), or null.
   * While it is raised every group's writes wait (flush does not complete), so proposals wait
   * too, and past pendingProposalsPerGroupMax they are refused with DiskFull.
   */
  storageAlarm(): OperatingError | null {
    return this.wal.writeAlarm() ?? null;
  }

  /** Calls `listener` whenever the storage alarm is raised (the failure) or cleared (null). */
  /** Called after a group's handlers heard of a new leader (null: none known), for every group. */
  onLeaderChange(listener: (group: GroupId, leader: NodeId | null) => void): () => void {
    this.leaderListeners.add(listener);
    return () => this.leaderListeners.delete(listener);
  }

  onStorageAlarm(listener: (failure: OperatingError | null) => void): () => void {
    this.storageAlarmListeners.add(listener);
    return () => this.storageAlarmListeners.delete(listener);
  }

  private storageAlarmChanged(failure: OperatingError | null): void {
    if (failure !== null) this.logger.error('storage alarm raised: writes of all groups wait', { node: this.nodeId, code: failure.code, error: failure.message });
    else this.logger.info('storage alarm cleared', { node: this.nodeId });
    for (const l of [...this.storageAlarmListeners]) l(failure);
  }

  get port(): number {
    return this.transport.port;
  }

  /** Keeps a stream to a peer node (host:port). */
  addPeer(peer: NodeId, address: string): void {
    this.transport.connect(peer, address);
  }

  /**
   * Hosts a group whose bootstrap voters are `members` (the same list on every member). A group
   * the WAL already holds resumes from it. A damaged group (or one whose rebuild a restart
   * interrupted) is hosted in repair: see repairDamagedGroup; with no other member it throws
   * OperatingError Corrupted.
   */
  createGroup(id: GroupId, members: readonly NodeId[], handlers: GroupHandlers): void {
    this.checkOpen();
    assert(!this.groups.has(id), `group ${id} is already hosted`);
    if (this.corrupted.has(id) && members.every((m) => m === this.nodeId)) {
      // No other replica was ever named to rebuild it from (a one-node group): refused as before.
      throw new OperatingError(OperatingErrorCode.Corrupted, `group ${id}: its log is damaged and it has no other replica; not hosted`, { group: id });
    }
    if (this.corrupted.has(id) || this.marks.get(id) !== undefined) {
      this.repairDamagedGroup(id, members, handlers);
      return;
    }
    // A torn tail cut at recovery may have held entries of this group it had acknowledged.
    const torn = this.wal.recovery.tornTailBytes > 0 && this.wal.hasGroup(id) && members.some((m) => m !== this.nodeId);
    // A node joining later as a learner starts from the same bootstrap members, without itself.
    if (!this.wal.hasGroup(id)) this.wal.createGroup(id);
    const snap = this.wal.snapshotMeta(id);
    if (snap !== undefined) {
      // Restart: the state machine starts from the snapshot; the log after it is applied again.
      handlers.installSnapshot?.(snap.index, snap.term, this.wal.readSnapshot(id)!);
    }
    this.raft.addGroup(id, {
      membership: { voters: [...members], learners: [] },
      hardState: this.recoveredHardState(id),
      reader: raftReader(this.wal, id),
      ...(torn ? { tornTailAbstainTicks: tornTailAbstainTimeouts * this.raft.config.electionTimeoutTicks } : {}),
    });
    this.groups.set(id, { id, handlers, pending: new Map(), leader: null, configIndex: this.wal.lastIndex(id) });
    // A group whose only voter is this node (every queue of a one-node cluster) needs no election
    // timeout: nobody else can lead it, and waiting 1-2 s would hold its clients after a restart.
    const voters = this.raft.status(id)?.membership.voters ?? [];
    if (voters.length === 1 && voters[0] === this.nodeId) this.raft.campaign(id);
    this.schedule();
  }

  /**
   * A damaged log is discarded, keeping only term and vote (so neither goes back), and the group
   * stays out of Raft (no message answered, no vote, no ack) until its leader removed this node
   * and re-added it as a learner (rejoinRepairedGroup). Until then proposals fail with NotLeader.
   */
  private repairDamagedGroup(id: GroupId, members: readonly NodeId[], handlers: GroupHandlers): void {
    let mark = this.marks.get(id);
    if (this.corrupted.has(id)) {
      const hs = this.wal.hardState(id);
      const damage = this.wal.corruption(id);
      // The mark is durable before the log goes: a crash in between finds the damage again.
      if (mark === undefined) this.marks.set(id, (mark = { sinceMs: Date.now(), rebuiltAfter: null }));
      this.wal.removeGroup(id);
      this.wal.createGroup(id);
      if (hs.term > 0) this.wal.setHardState(id, { term: hs.term as Term, vote: hs.vote, commit: 0 as LogIndex });
      this.corrupted.delete(id);
      this.wal.flush().catch((e: unknown) => this.fail(e));
      this.logger.warn('group repair started: damaged log discarded, rebuilding from peers', { node: this.nodeId, group: id, term: hs.term, damage: damage ?? '' });
    } else {
      if (!this.wal.hasGroup(id)) this.wal.createGroup(id);
      this.logger.warn('group repair resumed after a restart', { node: this.nodeId, group: id, rebuiltAfter: mark?.rebuiltAfter ?? -1 });
    }
    this.groups.set(id, { id, handlers, pending: new Map(), leader: null, configIndex: 0 });
    this.repairs.set(id, { members: [...members] });
    if (mark?.rebuiltAfter !== null && mark?.rebuiltAfter !== undefined) this.hostRebuilt(id, mark.rebuiltAfter as LogIndex);
  }

  /** Groups being rebuilt from peers (for the repair driver). */
  groupsToRepair(): GroupToRepair[] {
    const out: GroupToRepair[] = [];
    for (const [id, r] of this.repairs) {
      const mark = this.marks.get(id);
      if (mark === undefined) continue;
      out.push({ id, members: r.members, rebuiltAfter: mark.rebuiltAfter as LogIndex | null, sinceMs: mark.sinceMs });
    }
    return out;
  }

  /**
   * The leader re-added this node as a learner at `addedAt`: the group joins Raft with its empty log,
   * learns the log or a snapshot, and stays out of elections until a config entry after `addedAt`
   * makes it a voter again (then the repair ends, logged with its duration).
   */
  rejoinRepairedGroup(id: GroupId, addedAt: LogIndex): void {
    this.checkOpen();
    const mark = this.marks.get(id);
    if (mark === undefined || mark.rebuiltAfter !== null || !this.repairs.has(id)) return;
    this.marks.set(id, { ...mark, rebuiltAfter: addedAt });
    this.hostRebuilt(id, addedAt);
  }

  private hostRebuilt(id: GroupId, addedAt: LogIndex): void {
    const members = this.repairs.get(id)!.members;
    this.raft.addGroup(id, {
      membership: { voters: [...members], learners: [] },
      hardState: this.recoveredHardState(id),
      reader: raftReader(this.wal, id),
      rebuiltAfter: addedAt,
    });
    this.schedule();
  }

  /** After a flush: a rebuilt group whose log has its promotion durably is whole again. */
  private finishRepairs(): void {
    for (const id of this.repairs.keys()) {
      const s = this.raft.status(id);
      if (s === null || s.abstaining || !s.membership.voters.includes(this.nodeId) || this.wal.lastIndex(id) < s.lastIndex) continue;
      const mark = this.marks.get(id);
      this.repairs.delete(id);
      this.marks.delete(id);
      this.logger.info('group repair finished: voter again', {
        node: this.nodeId, group: id, durationMs: mark === undefined ? -1 : Date.now() - mark.sinceMs, lastIndex: s.lastIndex, commit: s.commit,
      });
    }
  }

  /**
   * The group's durable hard state, its commit capped at the durable log's end: a torn tail can
   * take entries the commit (synced in `level` with a term or vote) already covered. Restarting
   * lower is safe: the leader teaches commit again, and a torn group abstains until it did.
   */
  private recoveredHardState(id: GroupId): HardState {
    const hs = raftHardState(this.wal, id);
    const last = this.wal.lastIndex(id);
    if (hs.commit <= last) return hs;
    this.logger.warn('commit index above the recovered log: restarts at its end', { node: this.nodeId, group: id, commit: hs.commit, lastIndex: last });
    return { ...hs, commit: last };
  }

  /** Starts an election for the group now (bootstrapping faster than a timeout). */
  campaign(id: GroupId): void {
    this.raft.campaign(id);
    this.schedule();
  }

  /**
   * Proposes an entry; resolves once it is committed and applied here. Rejects with
   * OperatingError NotLeader (details.leader: the known leader or '') if this node does not lead
   * the group or the entry was lost to a new leader, Overloaded if the group is backed up.
   */
  propose(id: GroupId, data: Uint8Array, trace?: MessageTrace): Promise<{ index: LogIndex; term: Term }> {
    assert(data.length > 0, 'an empty proposal would look like a leader no-op');
    return this.submit(id, () => this.raft.propose(id, data), trace);
  }

  /**
   * Proposes a membership change (one at a time; Promote once the learner caught up); resolves
   * when the config entry is committed here. The new member's node must createGroup(id, <the same
   * bootstrap members>) to receive the log. Errors as propose, plus BadConfig for an invalid change.
   */
  proposeConfChange(id: GroupId, change: ConfChange): Promise<{ index: LogIndex; term: Term }> {
    const g = this.groups.get(id);
    return this.submit(id, () => {
      const r = this.raft.proposeConfChange(id, change);
      if (r.ok && g !== undefined) g.configIndex = Math.max(g.configIndex, r.index);
      return r;
    });
  }

  /** Hands leadership to voter `to` once it has the whole log; throws NotLeader here otherwise. */
  transferLeadership(id: GroupId, to: NodeId): void {
    this.checkOpen();
    const r = this.raft.transferLeadership(id, to);
    this.schedule();
    if (!r.ok) throw refusal(id, r);
  }

  private submit(id: GroupId, f: () => ProposeResult, trace?: MessageTrace): Promise<{ index: LogIndex; term: Term }> {
    if (this.fatal !== undefined) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new OperatingError(OperatingErrorCode.Closed, 'group host closed'));
    const g = this.groups.get(id);
    if (g === undefined) return Promise.reject(notLeader(id, undefined));
    if (g.pending.size >= this.limits.pendingProposalsPerGroupMax) {
      const disk = this.wal.writeAlarm();
      if (disk !== undefined) {
        return Promise.reject(new OperatingError(OperatingErrorCode.DiskFull, `group ${id}: too many proposals wait for the disk: ${disk.message}`, { group: id }));
      }
      return Promise.reject(new OperatingError(OperatingErrorCode.Overloaded, `group ${id}: too many proposals pending`, { group: id }));
    }
    const r = f();
    if (!r.ok) return Promise.reject(refusal(id, r));
    const older = g.pending.get(r.index);
    // A proposal of an earlier term at this index was truncated away by our own new term's log.
    if (older !== undefined) older.reject(notLeader(id, this.nodeId));
    this.schedule();
    if (trace !== undefined && this.traced.length < tracedProposalsMax) {
      this.traced.push({ group: id, index: r.index, trace });
      return new Promise((resolve, reject) => g.pending.set(r.index, { term: r.term, resolve, reject, trace }));
    }
    return new Promise((resolve, reject) => g.pending.set(r.index, { term: r.term, resolve, reject }));
  }

  /**
   * Records the application's snapshot `data` of its state as of `index` (<= applied here), then
   * lets the log before it go: followers that fall behind get the snapshot, and a restart applies
   * from it. Refused (Overloaded, retry later) while a config entry above `index` may be in the
   * log (after a restart: while `index` is below the log's end at restart). Entries at or below
   * `index` named in `keep` stay readable with readEntry (a queue's live bodies) until the next
   * snapshot; a snapshot sent to a follower carries them, so its readEntry finds them too.
   */
  async saveSnapshot(id: GroupId, index: LogIndex, data: Uint8Array, keep: Iterable<number> = []): Promise<void> {
    this.checkOpen();
    const s = this.raft.status(id);
    assert(s !== null, `group ${id} is not hosted`);
    assert(index <= s.applied, `group ${id}: snapshot at ${index} above applied ${s.applied}`);
    const t = this.raft.entryTerm(id, index);
    assert(t !== undefined, `group ${id}: no entry ${index} to snapshot at`);
    if (this.groups.get(id)!.configIndex > index) {
      throw new OperatingError(OperatingErrorCode.Overloaded, `group ${id}: membership change in flight; snapshot later`, { group: id });
    }
    const meta = { index, term: t, membership: s.membership };
    await this.wal.saveSnapshot(id, { index, term: t, membership: encodeMembershipBlob(s.membership) }, data);
    if (!this.groups.has(id) || this.closed) return;
    this.raft.compact(id, meta);
    this.wal.setLive(id, (index + 1) as LogIndex, keep as Iterable<LogIndex>);
    this.compactSoon();
  }

  /**
   * The data of a retained entry of the group (in the Raft range, or kept below the last snapshot),
   * read synchronously (from the WAL's cache or one pread); undefined if the log no longer has it.
   */
  readEntry(id: GroupId, index: LogIndex): Uint8Array | undefined {
    if (!this.wal.hasGroup(id)) return undefined;
    return this.wal.entry(id, index)?.data;
  }

  /** Compacts the WAL now (rewrites sparse segments, deletes dead ones): for operators and tests. */
  compactLog(): Promise<CompactionReport> {
    this.checkOpen();
    return this.wal.compact();
  }

  /** Lets go of segments no group needs any more (one compaction at a time; a failure of the log stops the host). */
  private compactSoon(idle = false): void {
    if (this.closed || this.fatal !== undefined) return;
    if (this.compacting) {
      this.compactWanted = true;
      return;
    }
    const nowMs = performance.now();
    const waitMs = this.compactedAtMs + walCompactIntervalMs - nowMs;
    if (waitMs > 0) {
      // The log this snapshot freed must not wait for the next snapshot (an idle queue has none).
      this.compactTimer ??= setTimeout(() => {
        this.compactTimer = undefined;
        this.compactSoon(idle);
      }, waitMs);
      return;
    }
    this.compactWanted = false;
    this.compacting = true;
    this.compactedAtMs = nowMs;
    let done: Promise<unknown>;
    try {
      done = this.wal.compact({ idle });
    } catch {
      this.compacting = false; // the WAL failed: the next flush stops the host
      return;
    }
    done.then(
      () => {
        this.compacting = false;
        if (idle) this.idleCompactedBytes = this.wal.stats().bytesWritten;
        if (this.compactWanted) this.compactSoon();
        else this.compactWhenIdle();
      },
      (e: unknown) => {
        this.compacting = false;
        if (this.closed) return;
        // A failed checkpoint (disk full) leaves the log as it was: try again next time.
        if (this.wal.failure() === undefined) this.logger.warn('log compaction failed; tried again later', { node: this.nodeId, error: String(e) });
        else this.fail(e);
      },
    );
  }

  /**
   * Compacts once more as idle once the log has not grown for limits.idleCompactMs after a
   * compaction (looking again as often while it grows: a timer, no work, on a busy node), and
   * stops looking once an idle compaction found the log as it is now.
   */
  private compactWhenIdle(): void {
    clearTimeout(this.idleCompactTimer);
    const written = this.wal.stats().bytesWritten;
    if (written === this.idleCompactedBytes) return;
    this.idleCompactTimer = setTimeout(() => {
      this.idleCompactTimer = undefined;
      if (this.closed || this.fatal !== undefined || this.compacting) return;
      if (this.wal.stats().bytesWritten === written) this.compactSoon(true);
      else this.compactWhenIdle();
    }, this.limits.idleCompactMs);
    this.idleCompactTimer.unref?.();
  }

  /** Stops hosting the group and drops its log (pending proposals fail with Closed). */
  removeGroup(id: GroupId): void {
    this.checkOpen();
    const g = this.groups.get(id);
    if (g === undefined) return;
    this.groups.delete(id);
    this.raft.removeGroup(id);
    this.deferredCommits.delete(id);
    if (this.repairs.delete(id)) this.marks.delete(id);
    if (this.wal.hasGroup(id)) this.wal.removeGroup(id);
    this.failPending(g, new OperatingError(OperatingErrorCode.Closed, `group ${id} removed from this node`, { group: id }));
    this.schedule();
  }

  leader(id: GroupId): NodeId | null {
    return this.raft.status(id)?.leader ?? null;
  }

  status(id: GroupId): GroupStatus | null {
    return this.raft.status(id);
  }

  /** How many hosted groups this node leads now (the load gossip and ctl show). */
  leaderCount(): number {
    let n = 0;
    for (const id of this.groups.keys()) if (this.raft.status(id)?.leader === this.nodeId) n++;
    return n;
  }

  stats(): GroupHostStats & { wal: WalStats } {
    return { ...this.counters, wal: this.wal.stats() };
  }

  /** Per fdatasync of the node's log: latency, entries and bytes (live histograms, for metrics). */
  fsyncHistograms(): FsyncHistograms {
    return this.wal.fsyncHistograms();
  }

  /** Raft groups hosted here (metadata and queues). */
  groupCount(): number {
    return this.groups.size;
  }

  /** Stops ticking, finishes the cycle in flight, fails pending proposals, closes transport and WAL. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    clearTimeout(this.compactTimer);
    clearTimeout(this.idleCompactTimer);
    // A cycle waiting for the disk (storage alarm) ends now: close does not wait for free space.
    this.wal.stopRetrying();
    await this.cycling;
    if (this.fatal === undefined) this.writeDeferredCommits(); // wal.close() flushes them
    const err = new OperatingError(OperatingErrorCode.Closed, 'group host closed');
    for (const g of this.groups.values()) this.failPending(g, err);
    await this.transport.close();
    await this.wal.close();
  }

  // ---- the Ready cycle ----

  private schedule(): void {
    if (this.scheduled || this.cycling !== undefined || this.closed || this.fatal !== undefined) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.closed || this.cycling !== undefined) return;
      this.cycling = this.runCycles().finally(() => {
        this.cycling = undefined;
        if (this.raft.hasReady()) this.schedule();
      });
    });
  }

  private async runCycles(): Promise<void> {
    try {
      for (let n = 0; n < this.limits.cyclesPerTurnMax && this.fatal === undefined && !this.closed && this.raft.hasReady(); n++) {
        await this.cycle(this.raft.ready());
      }
    } catch (e) {
      this.fail(e);
    }
  }

  private async cycle(r: Ready): Promise<void> {
    this.counters.cycles++;
    const startedMs = performance.now();
    // What each state machine restores from: the snapshot without the kept entries that rode with it.
    const installed = new Map<GroupId, Uint8Array>();
    for (const gr of r.groups) {
      if (gr.snapshot !== null && this.wal.hasGroup(gr.group)) installed.set(gr.group, await this.installSnapshot(gr));
    }
    let durable = false;
    for (const gr of r.groups) durable = this.persist(gr) || durable;
    // Deferred commit indexes ride along for free when this cycle syncs anyway.
    if (durable) this.writeDeferredCommits();
    this.send(r.messages);
    await this.wal.flush();
    if (this.traced.length > 0) this.stampTraces(true);
    this.send(r.messagesAfterPersist);
    for (const gr of r.groups) this.applyGroup(gr, installed.get(gr.group));
    if (this.repairs.size > 0) this.finishRepairs();
    this.raft.advance(r);
    if (this.traced.length > 0) this.stampTraces();
    this.cycleSeconds.record((performance.now() - startedMs) / 1000);
  }

  /**
   * Traced proposals whose entry is committed, or (right after a flush: `flushed`) durable here,
   * get those stamps (each once); ones no longer pending (lost to a new leader, a snapshot) are
   * dropped, compacting in place.
   */
  private stampTraces(flushed = false): void {
    const nowMs = traceNowMs();
    let kept = 0;
    for (const t of this.traced) {
      if (this.groups.get(t.group)?.pending.get(t.index)?.trace !== t.trace) continue;
      const at = t.trace.at;
      if (flushed && Number.isNaN(at[Stage.persisted]!) && this.wal.hasGroup(t.group) && this.wal.lastIndex(t.group) >= t.index) stamp(t.trace, Stage.persisted, nowMs);
      if (Number.isNaN(at[Stage.committed]!) && this.raft.commitIndex(t.group) >= t.index) stamp(t.trace, Stage.committed, nowMs);
      this.traced[kept++] = t;
    }
    this.traced.length = kept;
  }

  private untrace(group: GroupId, index: number): void {
    const at = this.traced.findIndex((t) => t.group === group && t.index === index);
    if (at >= 0) this.traced.splice(at, 1);
  }

  private async installSnapshot(gr: GroupReady): Promise<Uint8Array> {
    const s = gr.snapshot!;
    return await this.wal.installSnapshot(gr.group, { index: s.meta.index, term: s.meta.term, membership: encodeMembershipBlob(s.meta.membership) }, s.data);
  }

  /** Buffers one group's writes; true when they need this cycle's fdatasync. */
  private persist(gr: GroupReady): boolean {
    if (!this.wal.hasGroup(gr.group)) return false; // removed while the Ready was built
    let durable = true;
    if (gr.entries.length > 0) {
      assert(gr.truncateFrom === null || gr.truncateFrom === gr.entries[0]!.index, 'truncation starts the new entries');
      this.wal.append(gr.group, gr.entries);
      const g = this.groups.get(gr.group);
      for (const e of gr.entries) if (e.type === EntryType.ConfChange && g !== undefined) g.configIndex = Math.max(g.configIndex, e.index);
      this.counters.entriesPersisted += gr.entries.length;
    } else if (gr.truncateFrom !== null) {
      this.wal.truncateSuffix(gr.group, gr.truncateFrom);
    } else {
      durable = gr.snapshot !== null;
    }
    const hs = gr.hardState;
    if (hs === null) return durable;
    const old = this.wal.hardState(gr.group);
    if (!durable && hs.term === old.term && (hs.vote ?? '') === old.vote) {
      // Commit only: nothing waits for it to be durable (a restart learns commit from the
      // leader), so it costs no fdatasync of its own: written with the next synced write or at close.
      this.deferredCommits.set(gr.group, hs);
      return false;
    }
    this.deferredCommits.delete(gr.group);
    this.wal.setHardState(gr.group, walHardState(hs));
    return true;
  }

  private writeDeferredCommits(): void {
    for (const [id, hs] of this.deferredCommits) if (this.wal.hasGroup(id)) this.wal.setHardState(id, walHardState(hs));
    this.deferredCommits.clear();
  }

  private applyGroup(gr: GroupReady, snapshotData: Uint8Array | undefined): void {
    const g = this.groups.get(gr.group);
    if (g === undefined) return;
    if (gr.snapshot !== null) {
      const at = gr.snapshot.meta.index;
      g.handlers.installSnapshot?.(at, gr.snapshot.meta.term, snapshotData ?? gr.snapshot.data);
      // Proposals the snapshot covers were decided elsewhere; this node cannot tell which won.
      for (const [i, p] of g.pending) {
        if (i > at) continue;
        g.pending.delete(i);
        p.reject(notLeader(g.id, this.raft.status(g.id)?.leader ?? undefined));
      }
    }
    for (const e of gr.committedEntries) {
      const p = g.pending.get(e.index);
      if (p?.trace !== undefined) {
        const nowMs = traceNowMs();
        stamp(p.trace, Stage.committed, nowMs);
        // Stamped before the state machine runs: its deliveries are the next stage.
        stamp(p.trace, Stage.applied, nowMs);
        this.untrace(g.id, e.index);
      }
      if (e.type === EntryType.Normal && e.data.length > 0) {
        g.handlers.apply({ index: e.index, term: e.term, data: e.data });
        this.counters.entriesApplied++;
      }
      if (p === undefined) continue;
      g.pending.delete(e.index);
      if (p.term === e.term) p.resolve({ index: e.index, term: e.term });
      else p.reject(notLeader(g.id, this.raft.status(g.id)?.leader ?? undefined));
    }
    if (gr.softState !== null && gr.softState.leader !== g.leader) {
      g.leader = gr.softState.leader;
      g.handlers.leaderChange?.(g.leader, gr.softState.term);
      for (const l of this.leaderListeners) l(g.id, g.leader);
    }
  }

  // ---- transport ----

  /**
   * RaftBatches per peer for these messages (heartbeat items of one kind merged), each cut at
   * raftBatchBytesMax of entry and snapshot data: many groups' 1 MiB appends to one peer in one
   * cycle would otherwise exceed what the transport takes as one payload.
   */
  private send(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    const byPeer = new Map<NodeId, PeerBatch & { bytes: number }>();
    const flush = (peer: NodeId, b: PeerBatch): void => {
      const payload = encodeRaftBatch(b);
      if (payload.length > this.transport.limits.payloadBytesMax) {
        // One message alone above the link's payload limit (a huge entry): it can never cross.
        this.logger.error('raft message above the transport payload limit dropped', { node: this.nodeId, peer, bytes: payload.length });
        return;
      }
      // false: the peer is down or backed up; Raft retransmits, so the batch is simply dropped.
      if (this.transport.send(peer, Lane.raft, payload)) this.counters.batchesSent++;
    };
    for (const m of messages) {
      let b = byPeer.get(m.to);
      if (b === undefined) byPeer.set(m.to, (b = { messages: [], heartbeats: [], heartbeatResponses: [], bytes: 0 }));
      if (m.type === 'heartbeat') b.heartbeats.push(...m.items);
      else if (m.type === 'heartbeat-response') b.heartbeatResponses.push(...m.items);
      else {
        const size = messageDataBytes(m);
        if (b.messages.length > 0 && b.bytes + size > raftBatchBytesMax) {
          flush(m.to, { messages: b.messages, heartbeats: [], heartbeatResponses: [] });
          b.messages = [];
          b.bytes = 0;
        }
        b.messages.push(m);
        b.bytes += size;
      }
    }
    for (const [peer, b] of byPeer) flush(peer, b);
  }

  private receive(from: NodeId, lane: Lane, payload: Uint8Array): void {
    if (lane !== Lane.raft || this.closed || this.fatal !== undefined) return;
    let messages: Message[];
    try {
      messages = decodeRaftBatch(payload, from, this.nodeId);
    } catch (e) {
      if (!(e instanceof ProtoDecodeError)) throw e;
      this.counters.decodeErrors++;
      this.logger.warn('dropped a malformed raft batch', { node: this.nodeId, from, error: e.message });
      return;
    }
    for (const m of messages) this.raft.step(m);
    if (this.traced.length > 0) this.stampTraces();
    this.schedule();
  }

  // ---- failure ----

  /**
   * A failed write or fsync stops the host: nothing is retried, pending proposals fail. A handler
   * that throws stops it too (its state machine no longer matches the log).
   */
  private fail(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.fatal = err;
    clearInterval(this.ticker);
    this.logger.error('group host stopped', { node: this.nodeId, error: err.message });
    for (const g of this.groups.values()) this.failPending(g, err);
  }

  private failPending(g: HostedGroup, err: Error): void {
    for (const p of g.pending.values()) p.reject(err);
    g.pending.clear();
    if (this.traced.length > 0) this.stampTraces(); // drops the group's traces: none pending now
  }

  private checkOpen(): void {
    if (this.fatal !== undefined) throw this.fatal;
    if (this.closed) throw new OperatingError(OperatingErrorCode.Closed, 'group host closed');
  }
}

/**
 * After a torn tail a group abstains from elections until a leader verified its log, at most this
 * many election timeouts (then a cluster whose nodes all restarted torn elects someone anyway).
 */
const tornTailAbstainTimeouts = 3;

/** Payload bytes of one group message (entries or a snapshot chunk), plus a little per entry. */
function messageDataBytes(m: GroupMessage): number {
  if (m.type === 'append') {
    let n = 64;
    for (const e of m.entries) n += e.data.length + 32;
    return n;
  }
  return m.type === 'snapshot' ? m.data.length + 64 : 64;
}

function refusal(id: GroupId, r: Extract<ProposeResult, { ok: false }>): OperatingError {
  const detail = r.detail !== undefined ? `: ${r.detail}` : '';
  switch (r.reason) {
    case 'not_leader': return notLeader(id, r.leaderHint);
    case 'invalid': return new OperatingError(OperatingErrorCode.BadConfig, `group ${id}: refused${detail}`, { group: id });
    default: return new OperatingError(OperatingErrorCode.Overloaded, `group ${id}: ${r.reason.replace('_', ' ')}${detail}; retry later`, { group: id });
  }
}

function notLeader(id: GroupId, hint: NodeId | undefined): OperatingError {
  return new OperatingError(OperatingErrorCode.NotLeader, `not the leader of group ${id}${hint ? `; try ${hint}` : ''}`, {
    group: id, leader: hint ?? '',
  });
}
