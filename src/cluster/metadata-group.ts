// The metadata group: vhosts, users, permissions, exchanges, bindings, queues, policies and the node
// registry as one Raft group ('meta') over up to 5 voters, with the applied state kept on every member.
//
// Every change is a log entry (metadata-entries.ts); a member applies committed entries in order to
// its own copy and routes from it. Only the leader proposes: a change made on another node is
// forwarded to it over ClusterRpc ('meta.apply'), which answers {index, result}; the caller returns
// the result once it applied that index itself, so a client's declare-ok means "visible here" and,
// with sync() on not-found paths, visible everywhere at once. origin+seq let the leader pick the
// result of ITS entry at the index it landed. A 'start' entry is proposed each time a node starts
// hosting the group: applied, it creates the default user the first time ever, drops the starting
// node's non-durable and exclusive queues, and records the node in the registry. Passive declares
// read only. Every `snapshotEveryEntries` the state is saved as a snapshot so the log stays bounded.
// The leader also keeps the group's membership following the registry: registered nodes become
// learners, learners that caught up become voters while there are fewer than `votersMax`. And it
// deletes the non-replicated queues (exclusive, auto-delete, transient: held in memory on their
// home node only) of a node its transport has seen down for `goneNodeQueuesMs`: they died with it,
// as RabbitMQ deletes a down node's transient queues; every node then cancels their consumers.

import { randomBytes } from 'node:crypto';
import { OperatingError, OperatingErrorCode, isOperatingError } from '../lib/errors.js';
import { assert } from '../lib/assert.js';
import { groupId, type GroupId, type LogIndex, type NodeId } from '../lib/ids.js';
import { silentLogger, type Logger } from '../lib/log.js';
import {
  applyMetadata, createMetadataState, listQueues, listVhosts, lookupExchange, lookupQueue, modelError, ReplyCode,
  restoreMetadata, serializableCommand, snapshotMetadata, type MetadataCommand, type MetadataResult, type MetadataState,
} from '../model/index.js';
import { ConfChangeKind, type ConfChange } from '../raft/index.js';
import type { MetadataClient } from '../broker/metadata-client.js';
import type { AppliedEntry, GroupHost } from './group-host.js';
import {
  decodeEntry, decodeJson, encodeEntry, encodeJson, MetaMethod,
  type ApplyAnswer, type ClusterNode, type DefaultUser, type Entry, type JoinAnswer, type SnapshotData,
} from './metadata-entries.js';
import type { ClusterRpc } from './rpc.js';

export type { ClusterNode, DefaultUser } from './metadata-entries.js';

export const metadataGroupId: GroupId = groupId('meta');

export interface MetadataGroupOptions {
  groupHost: GroupHost;
  /** Bootstrap voters (the same list on every node that ever hosts the group); [self] on a single node. */
  members: readonly NodeId[];
  /** Created by the first 'start' entry of a new group only. */
  defaultUser: DefaultUser;
  logger?: Logger;
  /** Forwarding to the leader; without it only a node that leads can change metadata (one node). */
  rpc?: ClusterRpc;
  /** This node's registry record, written by its start entry. */
  self?: ClusterNode;
  /** Entries applied between snapshots. */
  snapshotEveryEntries?: number;
  /** How long start() waits for the group to elect a leader and apply the start entry. */
  startTimeoutMs?: number;
  /** How long a change waits for a leader, its answer and its local apply. */
  forwardTimeoutMs?: number;
  /** A first onApplied listener, there from the first entry replayed at start (e.g. dialing the registry). */
  onApplied?: (client: ReplicatedMetadataClient) => void;
  /** A node down this long (as the leader's transport sees it) has lost its non-replicated queues. */
  goneNodeQueuesMs?: number;
}

export const metadataGroupDefaults = {
  snapshotEveryEntries: 1000, startTimeoutMs: 10_000, forwardTimeoutMs: 10_000,
  /** Voters of the metadata group at most; more nodes stay learners (they still hold a full copy). */
  votersMax: 5,
  /** How often the leader compares membership with the registry. */
  membershipCheckMs: 200,
  /** Pause before asking again when no leader is known or it cannot be reached. */
  retryPauseMs: 50,
  /** A node down this long has lost its non-replicated queues (the mesh returns its consumers' messages after as long). */
  goneNodeQueuesMs: 5_000,
  /** One ask to one voter by a node that is not a member yet. */
  joinAttemptMs: 2_000,
  /** While start() waits, a log line this often. */
  startProgressLogMs: 5_000,
} as const;

export interface MetadataGroupStats {
  appliedIndex: number;
  snapshotIndex: number;
  snapshots: number;
  /** Entries in the group's log now (last - first + 1). */
  logEntries: number;
  /** Changes this node sent to the leader, and the bytes of those requests and their answers. */
  forwarded: number;
  forwardedBytes: number;
}

interface AppliedWaiter { index: number; deadlineMs: number; resolve: () => void; reject: (e: Error) => void }

export class ReplicatedMetadataClient implements MetadataClient {
  private current: MetadataState = createMetadataState();
  private bootstrapped = false;
  private registry = new Map<NodeId, ClusterNode>();
  private appliedIndex = 0;
  private snapshotIndex = 0;
  private snapshots = 0;
  private snapshotting: Promise<void> | undefined;
  private closed = false;
  /** Unique per process: results of entries proposed here, by seq, until their proposer takes them. */
  private readonly origin = randomBytes(8).toString('hex');
  private seq = 0;
  private readonly waiting = new Set<number>();
  private readonly results = new Map<number, MetadataResult>();
  private readonly leaderWatchers = new Set<() => void>();
  private readonly appliedListeners = new Set<() => void>();
  private readonly appliedWaiters = new Set<AppliedWaiter>();
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private membershipTimer: ReturnType<typeof setInterval> | undefined;
  private confChain: Promise<void> = Promise.resolve();
  private confQueued = 0;
  private forwarded = 0;
  private forwardedBytes = 0;
  /** Since when this node's transport has seen each peer down. */
  private readonly downSince = new Map<NodeId, number>();
  /** Down nodes whose queues this leader is deleting, or deleted (until the node is seen up again). */
  private readonly dropped = new Set<NodeId>();

  private constructor(
    private readonly host: GroupHost,
    private readonly logger: Logger,
    private readonly snapshotEveryEntries: number,
    private readonly bootstrap: readonly NodeId[],
    private readonly rpc: ClusterRpc | undefined,
    private readonly forwardTimeoutMs: number,
    private readonly goneNodeQueuesMs: number,
  ) {
    host.transport.onPeerState((peer, state) => {
      if (state === 'up') {
        this.downSince.delete(peer);
        this.dropped.delete(peer);
      } else if (!this.downSince.has(peer)) {
        this.downSince.set(peer, Date.now());
      }
    });
  }

  /** Hosts (or resumes) the group, waits for a leader and commits this node's start entry. */
  static async start(o: MetadataGroupOptions): Promise<ReplicatedMetadataClient> {
    const every = o.snapshotEveryEntries ?? metadataGroupDefaults.snapshotEveryEntries;
    assert(Number.isInteger(every) && every >= 1, 'snapshotEveryEntries must be a positive integer');
    const client = new ReplicatedMetadataClient(
      o.groupHost, (o.logger ?? silentLogger).child('metadata'), every, [...o.members], o.rpc,
      o.forwardTimeoutMs ?? metadataGroupDefaults.forwardTimeoutMs, o.goneNodeQueuesMs ?? metadataGroupDefaults.goneNodeQueuesMs,
    );
    const first = o.onApplied;
    if (first !== undefined) client.onApplied(() => first(client));
    o.groupHost.createGroup(metadataGroupId, o.members, {
      apply: (e) => client.onApply(e),
      installSnapshot: (index, _term, data) => client.onInstallSnapshot(index, data),
      leaderChange: () => {
        for (const w of client.leaderWatchers) w();
      },
    });
    if (o.rpc !== undefined) client.serve(o.rpc);
    client.membershipTimer = setInterval(() => client.checkMembership(), metadataGroupDefaults.membershipCheckMs);
    if (o.members.length === 1 && o.members[0] === o.groupHost.nodeId) o.groupHost.campaign(metadataGroupId);
    const entry: Entry = { t: 'start', node: o.groupHost.nodeId, user: o.defaultUser, ...(o.self !== undefined ? { info: o.self } : {}) };
    // A node of a cluster waits for a quorum of voters to be up: say so while it waits.
    const waiting = setInterval(() => client.logger.info('waiting for the metadata group to elect a leader and commit this start', {
      leader: client.leader(), voters: client.membership().voters.join(','),
    }), metadataGroupDefaults.startProgressLogMs);
    try {
      const timeoutMs = o.startTimeoutMs ?? metadataGroupDefaults.startTimeoutMs;
      // Not a member (a --seeds node beyond the voters): no leader talks to it until it is added.
      if (o.rpc !== undefined && o.self !== undefined && !client.isMember()) await client.joinThrough(o.rpc, o.self, timeoutMs);
      const { i } = await client.onLeader<{ i: number }>(MetaMethod.start, entry, () => client.proposeAsLeader(entry), timeoutMs);
      await client.waitApplied(i, timeoutMs);
    } catch (e) {
      client.stopTimers();
      throw e;
    } finally {
      clearInterval(waiting);
    }
    client.logger.debug('metadata group started', { index: client.appliedIndex, snapshotIndex: client.snapshotIndex, leader: client.leader() });
    return client;
  }

  /**
   * Asks a member of a running cluster (`via`) to add this node: the leader records `self` in the
   * registry and adds it as a learner. Answers the group's bootstrap members (to host it with) and
   * the registry. Used before start() by a node started with --join.
   */
  static async requestJoin(rpc: ClusterRpc, via: NodeId, self: ClusterNode, timeoutMs = 15_000): Promise<JoinAnswer> {
    const deadline = Date.now() + timeoutMs;
    // The stream to `via` may still be coming up: Unreachable is retried until the deadline.
    for (;;) {
      try {
        return decodeJson<JoinAnswer>(await rpc.call(via, MetaMethod.join, encodeJson(self), Math.max(1, deadline - Date.now())));
      } catch (e) {
        if (!isOperatingError(e, OperatingErrorCode.Unreachable) || Date.now() >= deadline) throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, metadataGroupDefaults.retryPauseMs));
    }
  }

  private isMember(): boolean {
    const m = this.membership();
    return m.voters.includes(this.host.nodeId) || m.learners.includes(this.host.nodeId);
  }

  /** Asks the bootstrap voters in turn to add this node, until one answers or time is up. */
  private async joinThrough(rpc: ClusterRpc, self: ClusterNode, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const voters = this.bootstrap.filter((v) => v !== this.host.nodeId);
    if (voters.length === 0) return;
    for (let i = 0; Date.now() < deadline; i++) {
      const via = voters[i % voters.length]!;
      try {
        await ReplicatedMetadataClient.requestJoin(rpc, via, self, Math.min(metadataGroupDefaults.joinAttemptMs, Math.max(1, deadline - Date.now())));
        return;
      } catch (e) {
        if (!isOperatingError(e) || Date.now() >= deadline) throw e;
        this.logger.debug('join attempt failed', { via, error: e.message });
      }
    }
  }

  /** The applied state (replaced wholesale when a snapshot is installed: read it each time). */
  get state(): MetadataState {
    return this.current;
  }

  /** The node registry, sorted by id. */
  nodes(): readonly ClusterNode[] {
    return [...this.registry.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Called synchronously after each applied entry or installed snapshot; returns an unsubscribe. */
  onApplied(listener: () => void): () => void {
    this.appliedListeners.add(listener);
    return () => this.appliedListeners.delete(listener);
  }

  /** The group's leader as this node knows it. */
  leader(): NodeId | null {
    return this.host.leader(metadataGroupId);
  }

  /** Voters and learners of the group as of this node's log. */
  membership(): { voters: readonly NodeId[]; learners: readonly NodeId[] } {
    return this.host.status(metadataGroupId)?.membership ?? { voters: [], learners: [] };
  }

  async apply(command: MetadataCommand): Promise<MetadataResult> {
    if (isReadOnly(command)) {
      const r = applyMetadata(this.current, command);
      if (r.ok || r.replyCode !== ReplyCode.NotFound) return r;
      await this.sync(); // declared on another node a moment ago?
      return applyMetadata(this.current, command);
    }
    if (this.closed) return unavailable('the node is shutting down');
    const sc = serializableCommand(command);
    try {
      const a = await this.onLeader<ApplyAnswer>(MetaMethod.apply, { c: sc }, () => this.applyAsLeader(sc), this.forwardTimeoutMs);
      await this.waitApplied(a.i, this.forwardTimeoutMs);
      if (a.r.ok && accessChanges.has(command.kind)) await this.appliedEverywhere(a.i);
      return this.localized(a.r);
    } catch (e) {
      if (!isOperatingError(e)) throw e;
      this.logger.warn('metadata change not committed', { kind: command.kind, error: e.message });
      return unavailable('the metadata change was not committed; retry');
    }
  }

  /**
   * Read barrier: returns once this node applied everything the leader had committed when asked,
   * so whatever a client anywhere saw confirmed is visible here. Gives up quietly (the caller then
   * answers from what it has) when no leader answers within the forward timeout.
   */
  async sync(): Promise<void> {
    if (this.closed) return;
    try {
      const a = await this.onLeader<{ i: number }>(MetaMethod.commit, {}, () => Promise.resolve(this.commitAsLeader()), this.forwardTimeoutMs);
      await this.waitApplied(a.i, this.forwardTimeoutMs);
    } catch (e) {
      if (!isOperatingError(e)) throw e;
      this.logger.debug('metadata sync gave up', { error: e.message });
    }
  }

  /** Records a node and makes it a learner (ctl add-node); done by the leader wherever asked. */
  addNode(info: ClusterNode): Promise<JoinAnswer> {
    return this.onLeader<JoinAnswer>(MetaMethod.join, info, () => this.joinAsLeader(info), this.forwardTimeoutMs);
  }

  /** Drops a node from the registry and the group (ctl forget-node); refusals are BadConfig. */
  async forgetNode(node: NodeId): Promise<void> {
    const p = { node, via: this.host.nodeId };
    await this.onLeader<object>(MetaMethod.forget, p, () => this.forgetAsLeader(p.node, p.via), this.forwardTimeoutMs);
    await this.sync(); // the caller sees its effect here
  }

  stats(): MetadataGroupStats {
    const s = this.host.status(metadataGroupId);
    return {
      appliedIndex: this.appliedIndex,
      snapshotIndex: this.snapshotIndex,
      snapshots: this.snapshots,
      logEntries: s === null ? 0 : s.lastIndex - s.firstIndex + 1,
      forwarded: this.forwarded,
      forwardedBytes: this.forwardedBytes,
    };
  }

  /** Stops proposing and waits for a snapshot in flight (the group host is closed by its owner). */
  async close(): Promise<void> {
    if (!this.closed && this.leader() === this.host.nodeId) await this.handOver();
    this.closed = true;
    this.stopTimers();
    const err = new OperatingError(OperatingErrorCode.Closed, 'metadata group closed');
    for (const w of this.appliedWaiters) w.reject(err);
    this.appliedWaiters.clear();
    await this.snapshotting;
  }

  /** A leader that stops hands the group to a caught-up voter, sparing the others an election timeout. */
  private async handOver(): Promise<void> {
    const to = this.bestOtherVoter();
    if (to === null) return;
    try {
      this.host.transferLeadership(metadataGroupId, to);
    } catch (e) {
      if (!isOperatingError(e)) throw e;
      return;
    }
    for (let i = 0; i < 20 && this.leader() === this.host.nodeId; i++) await this.leaderOrPause(metadataGroupDefaults.retryPauseMs);
    this.logger.info('metadata leadership handed over', { to, leader: this.leader() });
  }

  // ---- the leader's side ----

  private serve(rpc: ClusterRpc): void {
    rpc.handle(MetaMethod.apply, async (_from, p) => {
      this.requireLeader();
      return encodeJson(await this.applyAsLeader(decodeJson<{ c: MetadataCommand }>(p).c));
    });
    rpc.handle(MetaMethod.start, async (_from, p) => {
      this.requireLeader();
      const entry = decodeJson<Entry>(p);
      if (entry.t !== 'start') throw new OperatingError(OperatingErrorCode.BadConfig, 'meta.start: not a start entry');
      return encodeJson(await this.proposeAsLeader(entry));
    });
    rpc.handle(MetaMethod.commit, () => {
      this.requireLeader();
      return encodeJson(this.commitAsLeader());
    });
    rpc.handle(MetaMethod.applied, async (_from, p) => {
      await this.waitApplied(decodeJson<{ i: number }>(p).i, this.forwardTimeoutMs);
      return encodeJson({});
    });
    rpc.handle(MetaMethod.join, async (_from, p) => encodeJson(await this.addNode(decodeJson<ClusterNode>(p))));
    rpc.handle(MetaMethod.forget, async (_from, p) => {
      const { node, via } = decodeJson<{ node: NodeId; via: NodeId }>(p);
      return encodeJson(await this.onLeader<object>(MetaMethod.forget, { node, via }, () => this.forgetAsLeader(node, via), this.forwardTimeoutMs));
    });
  }

  /** Proposes a (serializable) command here; its result as applied at its index. */
  private async applyAsLeader(c: MetadataCommand): Promise<ApplyAnswer> {
    if (this.closed) throw new OperatingError(OperatingErrorCode.Closed, 'the node is shutting down');
    const seq = ++this.seq;
    this.waiting.add(seq);
    try {
      const { index } = await this.host.propose(metadataGroupId, encodeEntry({ t: 'cmd', o: this.origin, s: seq, c }));
      // propose resolves only after the entry was applied here, so its result is waiting.
      const result = this.results.get(seq);
      assert(result !== undefined, `metadata entry ${seq} resolved without being applied`);
      return { i: index, r: result };
    } finally {
      this.waiting.delete(seq);
      this.results.delete(seq);
    }
  }

  private async proposeAsLeader(entry: Entry): Promise<{ i: number }> {
    const { index } = await this.host.propose(metadataGroupId, encodeEntry(entry));
    return { i: index };
  }

  private commitAsLeader(): { i: number } {
    return { i: this.host.status(metadataGroupId)?.commit ?? 0 };
  }

  private async joinAsLeader(info: ClusterNode): Promise<JoinAnswer> {
    // Only a node that speaks for itself says which plugins it loads (ctl add-node registers an address).
    const differs = info.version === '' ? null : exchangePluginDifference(this.registry.get(this.host.nodeId)?.exchangePlugins ?? [], info.exchangePlugins ?? []);
    if (differs !== null) throw new OperatingError(OperatingErrorCode.BadConfig, `node ${info.id} is refused: ${differs} (every node must load the same exchange-type plugins)`, { node: info.id });
    const known = this.registry.get(info.id);
    const fresh = info.amqpAddress !== '' || known === undefined;
    if (fresh && !sameNode(known, info)) await this.proposeAsLeader({ t: 'join', info });
    const m = this.membership();
    if (!m.voters.includes(info.id) && !m.learners.includes(info.id)) await this.changeMembership({ kind: ConfChangeKind.AddLearner, node: info.id });
    this.logger.info('node joined the registry', { member: info.id, clusterAddress: info.clusterAddress });
    return { bootstrap: [...this.bootstrap], nodes: [...this.nodes()] };
  }

  private async forgetAsLeader(node: NodeId, via: NodeId): Promise<object> {
    const m = this.membership();
    const member = m.voters.includes(node) || m.learners.includes(node);
    if (!this.registry.has(node) && !member) return {};
    const refuse = (why: string): never => {
      throw new OperatingError(OperatingErrorCode.BadConfig, `cannot forget ${node}: ${why}`, { node });
    };
    if (node === via) refuse('it is the node this request came through; ask another node');
    if (m.voters.includes(node) && m.voters.length === 1) refuse('it is the last voter of the metadata group');
    if (node === this.host.nodeId) {
      // A leader does not remove itself: hand the group to the most caught-up other voter first.
      const to = this.bestOtherVoter();
      if (to === null) refuse('no other voter has the whole log yet; retry in a moment');
      this.host.transferLeadership(metadataGroupId, to!);
      throw new OperatingError(OperatingErrorCode.NotLeader, `handing the metadata group to ${to!} before forgetting ${node}`, { leader: to! });
    }
    if (this.registry.has(node)) await this.proposeAsLeader({ t: 'forget', node });
    if (member) await this.changeMembership({ kind: ConfChangeKind.Remove, node });
    this.logger.info('node forgotten', { member: node });
    return {};
  }

  private bestOtherVoter(): NodeId | null {
    const s = this.host.status(metadataGroupId);
    if (s === null) return null;
    let best: { node: NodeId; match: number } | null = null;
    for (const r of s.replicas) {
      if (r.node === this.host.nodeId || !s.membership.voters.includes(r.node)) continue;
      if (r.match >= s.lastIndex && (best === null || r.match > best.match)) best = r;
    }
    return best?.node ?? null;
  }

  /**
   * Membership changes run one after another (Raft allows one at a time); a change that is already
   * in effect when its turn comes (the join and the leader's own check both adding a node) is skipped.
   */
  private changeMembership(change: ConfChange): Promise<void> {
    this.confQueued++;
    const run = this.confChain.then(async () => {
      const m = this.membership();
      const isVoter = m.voters.includes(change.node);
      const isMember = isVoter || m.learners.includes(change.node);
      const done = change.kind === ConfChangeKind.AddLearner ? isMember : change.kind === ConfChangeKind.Promote ? isVoter : !isMember;
      if (done) return;
      await this.host.proposeConfChange(metadataGroupId, change);
      this.logger.info('metadata membership changed', { change: changeName(change.kind), member: change.node });
    }).finally(() => {
      this.confQueued--;
    });
    this.confChain = run.catch(() => undefined);
    return run;
  }

  /** On the leader: registered nodes become learners; caught-up learners voters while below votersMax. */
  private checkMembership(): void {
    const s = this.host.status(metadataGroupId);
    if (s === null || s.role !== 'leader' || this.closed) return;
    this.dropQueuesOfGoneNodes();
    if (this.confQueued > 0) return;
    const { voters, learners } = s.membership;
    let change: ConfChange | null = null;
    for (const l of learners) {
      const caughtUp = (s.replicas.find((r) => r.node === l)?.match ?? 0) >= s.commit;
      if (this.registry.has(l) && voters.length < metadataGroupDefaults.votersMax && caughtUp) change = { kind: ConfChangeKind.Promote, node: l };
    }
    for (const n of this.registry.keys()) {
      if (change === null && !voters.includes(n) && !learners.includes(n)) change = { kind: ConfChangeKind.AddLearner, node: n };
    }
    if (change === null) return;
    this.changeMembership(change).catch((e: unknown) => {
      if (!isOperatingError(e)) throw e;
      this.logger.debug('metadata membership change deferred', { member: change.node, error: e.message });
    });
  }

  /** On the leader: a registered node down for goneNodeQueuesMs loses its non-replicated queues (one entry). */
  private dropQueuesOfGoneNodes(): void {
    const now = Date.now();
    for (const node of this.registry.keys()) {
      if (node === this.host.nodeId || this.host.transport.isUp(node)) continue;
      // Never seen up by this node (it just started, or just became leader): down from now on.
      const since = this.downSince.get(node) ?? now;
      if (!this.downSince.has(node)) this.downSince.set(node, now);
      if (now - since < this.goneNodeQueuesMs || this.dropped.has(node)) continue;
      // Once per down period (a node that is down declares nothing): no scan of every queue each check.
      this.dropped.add(node);
      if (!this.homesLocalQueues(node)) continue;
      this.applyAsLeader({ kind: 'deleteNodeQueues', nodeId: node })
        .then((a) => {
          const deleted = a.r.ok ? a.r.deletedQueues.length : 0;
          this.logger.info('non-replicated queues of a down node deleted', { member: node, downMs: now - since, queues: deleted });
        })
        .catch((e: unknown) => {
          if (!isOperatingError(e)) throw e;
          this.dropped.delete(node); // the next check tries again
          this.logger.debug('delete of a down node\'s queues deferred', { member: node, error: e.message });
        });
    }
  }

  private homesLocalQueues(node: NodeId): boolean {
    for (const vhost of listVhosts(this.current)) {
      for (const q of listQueues(this.current, vhost)) if (q.kind === 'local' && q.homeNode === node) return true;
    }
    return false;
  }

  private requireLeader(): void {
    if (this.closed) throw new OperatingError(OperatingErrorCode.Closed, 'the node is shutting down');
    const leader = this.leader();
    if (leader === this.host.nodeId) return;
    throw new OperatingError(OperatingErrorCode.NotLeader, `not the metadata leader${leader !== null ? `; try ${leader}` : ''}`, { leader: leader ?? '' });
  }

  // ---- the caller's side ----

  /**
   * Runs `local` if this node leads the group, else calls `method` on the leader; on NotLeader or
   * Unreachable waits for a (new) leader and tries again until `timeoutMs` is spent.
   */
  private async onLeader<T>(method: string, payload: unknown, local: () => Promise<T>, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (let remaining = timeoutMs; remaining > 0; remaining = deadline - Date.now()) {
      const leader = this.leader();
      try {
        if (leader === this.host.nodeId) return await local();
        if (leader !== null && this.rpc !== undefined) return await this.forward<T>(leader, method, payload, remaining);
      } catch (e) {
        if (!this.retriable(e)) throw e;
        last = e;
      }
      await this.leaderOrPause(Math.min(remaining, metadataGroupDefaults.retryPauseMs));
    }
    if (last instanceof OperatingError) throw last;
    throw new OperatingError(OperatingErrorCode.NotLeader, `metadata group: no leader within ${timeoutMs} ms`, { leader: '' });
  }

  /**
   * Worth asking the (next) leader again within the deadline: it refused, could not be reached, was
   * backed up or handing over (Overloaded), or was stopping.
   */
  private retriable(e: unknown): boolean {
    if (isOperatingError(e, OperatingErrorCode.NotLeader) || isOperatingError(e, OperatingErrorCode.Unreachable)) return true;
    if (isOperatingError(e, OperatingErrorCode.Overloaded)) return true;
    return isOperatingError(e, OperatingErrorCode.Closed) && !this.closed;
  }

  private async forward<T>(leader: NodeId, method: string, payload: unknown, timeoutMs: number): Promise<T> {
    const request = encodeJson(payload);
    const answer = await this.rpc!.call(leader, method, request, timeoutMs);
    this.forwarded++;
    this.forwardedBytes += request.length + answer.length;
    return decodeJson<T>(answer);
  }

  private leaderOrPause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.leaderWatchers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.leaderWatchers.add(done);
    });
  }

  /** The leader's records for a result: this node's own (same contents, its applied copy). */
  private localized(r: MetadataResult): MetadataResult {
    if (!r.ok) return r;
    const queue = r.queue === undefined ? undefined : lookupQueue(this.current, r.queue.vhost, r.queue.name) ?? r.queue;
    const exchange = r.exchange === undefined ? undefined : lookupExchange(this.current, r.exchange.vhost, r.exchange.name) ?? r.exchange;
    return { ...r, ...(queue !== undefined ? { queue } : {}), ...(exchange !== undefined ? { exchange } : {}) };
  }

  private appliedAt(): number {
    return Math.max(this.appliedIndex, this.host.status(metadataGroupId)?.applied ?? 0);
  }

  /**
   * A change to who may do what is in force on every member that is up when apply returns: each is
   * asked to answer once it applied `index`. Without this, a channel on a node a heartbeat behind
   * could use a revoked permission after the revoke was confirmed. A member that does not answer
   * in time is logged and not waited for (it applies the change when it catches up, as always).
   */
  private async appliedEverywhere(index: number): Promise<void> {
    const { voters, learners } = this.membership();
    const others = [...voters, ...learners].filter((n) => n !== this.host.nodeId && this.host.transport.isUp(n));
    if (this.rpc === undefined || others.length === 0) return;
    const rpc = this.rpc;
    await Promise.all(others.map((n) => rpc.call(n, MetaMethod.applied, encodeJson({ i: index }), this.forwardTimeoutMs).catch((e: unknown) => {
      this.logger.warn('an access change is not yet applied on a member; it will be when the member catches up', { member: n, index, error: e instanceof Error ? e.message : String(e) });
    })));
  }

  /** Resolves once this node applied `index` (leader no-ops and config entries count via the host). */
  private waitApplied(index: number, timeoutMs: number): Promise<void> {
    if (this.appliedAt() >= index) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.appliedWaiters.add({ index, deadlineMs: Date.now() + timeoutMs, resolve, reject });
      // Entries the host applies without telling us (no-ops, config) are seen by this poll.
      this.pollTimer ??= setInterval(() => this.checkApplied(), 10);
    });
  }

  private checkApplied(): void {
    const at = this.appliedAt();
    const now = Date.now();
    for (const w of this.appliedWaiters) {
      if (at >= w.index) w.resolve();
      else if (now >= w.deadlineMs) w.reject(new OperatingError(OperatingErrorCode.Timeout, `metadata entry ${w.index} not applied here in time (at ${at})`));
      else continue;
      this.appliedWaiters.delete(w);
    }
    if (this.appliedWaiters.size === 0 && this.pollTimer !== undefined) {
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
    }
  }

  private stopTimers(): void {
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    if (this.membershipTimer !== undefined) clearInterval(this.membershipTimer);
    this.pollTimer = undefined;
    this.membershipTimer = undefined;
  }

  // ---- the state machine (called by the group host in its apply phase) ----

  private onApply(e: AppliedEntry): void {
    assert(e.index > this.appliedIndex, `metadata entry ${e.index} applied after ${this.appliedIndex}`);
    const entry = decodeEntry(e.data);
    if (entry.t === 'cmd') {
      const result = applyMetadata(this.current, entry.c);
      if (entry.o === this.origin && this.waiting.has(entry.s)) this.results.set(entry.s, result);
    } else if (entry.t === 'start') {
      this.applyStart(entry.node, entry.user);
      if (entry.info !== undefined) this.registry.set(entry.info.id, entry.info);
    } else if (entry.t === 'join') {
      this.registry.set(entry.info.id, entry.info);
    } else {
      this.registry.delete(entry.node);
      this.dropTransientQueuesOf(entry.node);
    }
    this.appliedIndex = e.index;
    if (this.appliedIndex - this.snapshotIndex >= this.snapshotEveryEntries) this.snapshotSoon();
    this.afterApply();
  }

  private afterApply(): void {
    for (const l of this.appliedListeners) l();
    if (this.appliedWaiters.size > 0) this.checkApplied();
  }

  private applyStart(node: NodeId, user: DefaultUser): void {
    if (!this.bootstrapped) {
      this.bootstrapped = true;
      applyMetadata(this.current, { kind: 'addUser', name: user.name, passwordHash: user.passwordHash, tags: user.tags });
      for (const vhost of listVhosts(this.current)) {
        applyMetadata(this.current, { kind: 'setPermissions', user: user.name, vhost, configure: '.*', write: '.*', read: '.*' });
      }
    }
    this.dropTransientQueuesOf(node);
  }

  /** A node that starts again or is forgotten has lost its non-durable and exclusive queues. */
  private dropTransientQueuesOf(node: NodeId): void {
    for (const vhost of listVhosts(this.current)) {
      for (const q of listQueues(this.current, vhost)) {
        if (q.homeNode !== node || (q.durable && q.exclusiveOwner === null)) continue;
        applyMetadata(this.current, {
          kind: 'deleteQueue', vhost: q.vhost, name: q.name, ifUnused: false, ifEmpty: false,
          consumerCount: 0, messageCount: 0, connection: null,
        });
      }
    }
  }

  private onInstallSnapshot(index: LogIndex, data: Uint8Array): void {
    const snap = decodeJson<SnapshotData>(data);
    assert(snap.v === 1, `metadata snapshot version ${String(snap.v)} is not known`);
    this.current = restoreMetadata(snap.model);
    this.bootstrapped = snap.bootstrapped;
    this.registry = new Map((snap.nodes ?? []).map((n) => [n.id, n]));
    this.appliedIndex = index;
    this.snapshotIndex = index;
    this.afterApply();
  }

  /** After this apply phase (the host's applied index catches up at advance), save a snapshot. */
  private snapshotSoon(): void {
    if (this.snapshotting !== undefined || this.closed) return;
    this.snapshotting = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.saveSnapshot())
      .finally(() => {
        this.snapshotting = undefined;
      });
  }

  private async saveSnapshot(): Promise<void> {
    const status = this.host.status(metadataGroupId);
    const index = this.appliedIndex as LogIndex;
    if (this.closed || status === null || status.applied < index) return; // next apply tries again
    const data: SnapshotData = { v: 1, bootstrapped: this.bootstrapped, model: snapshotMetadata(this.current), nodes: [...this.registry.values()] };
    try {
      await this.host.saveSnapshot(metadataGroupId, index, encodeJson(data));
      this.snapshotIndex = index;
      this.snapshots++;
    } catch (e) {
      // Overloaded (a membership change or the log's end at restart is above index) or Closed: later.
      if (!(e instanceof OperatingError)) throw e;
      this.logger.debug('metadata snapshot deferred', { index, error: e.message });
    }
  }
}

/** Commands that change who may do what: apply returns once every live member applied them. */
const accessChanges = new Set<MetadataCommand['kind']>([
  'addUser', 'deleteUser', 'setPermissions', 'clearPermissions', 'setTopicPermissions', 'clearTopicPermissions',
  'deleteVhost', 'setVhostLimits', 'setUserLimits',
]);

function isReadOnly(c: MetadataCommand): boolean {
  return (c.kind === 'declareQueue' || c.kind === 'declareExchange') && c.passive;
}

function unavailable(why: string): MetadataResult {
  return modelError(ReplyCode.InternalError, why);
}

/** Which exchange-type plugin differs between the cluster's (ours) and a joining node's; null when none. */
export function exchangePluginDifference(ours: readonly string[], theirs: readonly string[], we = 'the cluster', they = 'the joining node'): string | null {
  const name = (p: string): string => p.slice(0, p.lastIndexOf('@') > 0 ? p.lastIndexOf('@') : p.length);
  for (const p of ours) {
    if (theirs.includes(p)) continue;
    const other = theirs.find((t) => name(t) === name(p));
    return other === undefined ? `plugin '${p}' is loaded in ${we} but not on ${they}`
      : `plugin '${name(p)}' differs: ${we} loads ${p}, ${they} ${other}`;
  }
  const extra = theirs.find((t) => !ours.includes(t));
  return extra === undefined ? null : `plugin '${extra}' is loaded on ${they} but not in ${we}`;
}

function sameNode(a: ClusterNode | undefined, b: ClusterNode): boolean {
  return a !== undefined && a.clusterAddress === b.clusterAddress && a.amqpAddress === b.amqpAddress && a.version === b.version;
}

function changeName(kind: ConfChange['kind']): string {
  return kind === ConfChangeKind.AddLearner ? 'add-learner' : kind === ConfChangeKind.Promote ? 'promote' : 'remove';
}
