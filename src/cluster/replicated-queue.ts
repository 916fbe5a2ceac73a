// A durable queue as a Raft group on the node's GroupHost: every call is a log command, the pure
// queue machine (src/queue/) is driven from the committed log on every replica, and only the
// leader's node carries out effects (deliveries to consumers connected here, timers, dead letters).
//
// Promises resolve after the command is committed (fdatasync on a majority) and applied here, so an
// enqueue's 'ok' is a publisher confirm. Time comes from the leader's clock stamped in each entry.
// Bodies live in the enqueue entries; a BodyStore keeps up to a node-wide budget of them in memory by
// message id (= entry index) and reads the rest back from the WAL (see body-store.ts for the scheme).

import { assert } from '../lib/assert.js';
import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import { logIndex, type GroupId, type NodeId } from '../lib/ids.js';
import type { Clock } from '../lib/random.js';
import { answerCaller, apply, counters, createQueueState, restore, snapshot, deadLetter, type Command, type ConsumerKey, type DeadLetterReason, type EnqueueIdentity, type Effect, type FieldValues, type MsgId, type Owner, type QueueConfig, type QueueSnapshot, type QueueState, type QueueTotals, queueLimits, parseExpiration } from '../queue/index.js';
import type { ConsumeRequest, DeadLetterSink, DeliverySink, DownScope, EnqueueOutcome, GetResponse, QueueBackend, QueueEvent, QueueStats, StoredMessage } from '../broker/queue-backend.js';
import type { AppliedEntry, GroupHost } from './group-host.js';
import { decodeEnqueuedMessage, decodeLogEntry, decodeSnapshot, encodeEntry, encodeSnapshot, liveIdsOf, type ConfigCommand, type EntryCommand, type LogCommand } from './replicated-queue-codec.js';
import { BodyStore, sharedBodyBudget, type BodyBudget } from './body-store.js';
import { snapshotEveryEntriesMin, waitingCallsMax } from './replicated-queue-limits.js';
import { preferredCampaignIntervalMs, preferredCampaignsMax } from './mesh-limits.js';
import { realTimers, type QueueTimers } from './queue-timers.js';
import { stamp, Stage, type MessageTrace } from '../lib/trace.js';
import { traceNowMs } from './trace-clock.js';

/** Traced messages waiting for their first delivery, per queue; the oldest is forgotten past it. */
const tracedWaitingMax = 256;

export interface ReplicatedQueueOptions {
  readonly name: string;
  readonly groupId: GroupId;
  readonly host: GroupHost;
  /** Bootstrap voters (default: this node alone: a 1-replica group that still fsyncs). */
  readonly members?: readonly NodeId[];
  /** The broker's node name, as in Owner.node of the requests. */
  readonly node: string;
  /** Unique per process start: holders of earlier incarnations go down when this one leads. */
  readonly incarnation: string;
  readonly config: QueueConfig;
  readonly clock: Clock;
  readonly deadLetterExchange: string | null;
  readonly deadLetterRoutingKey: string | null;
  readonly onDeadLetter: DeadLetterSink;
  readonly fieldValues: FieldValues;
  readonly timers?: QueueTimers;
  readonly snapshotEveryEntries?: number;
  /** Memory budget for bodies (default: one shared by every queue on this host, bodyBudgetBytesDefault). */
  readonly bodyBudget?: BodyBudget;
  /**
   * Mesh routing: the consumer of a holder whose sink is not registered here (it consumes through
   * another node, or registered through another leader before a failover), by the holder's
   * incarnated node, channel and tag; undefined = nobody to deliver to on this node.
   */
  readonly resolveConsumer?: (holderNode: string, channel: string, tag: string) => RemoteConsumer | undefined;
}

/** Where a consumer registered elsewhere gets its deliveries and server-side cancels. */
export interface RemoteConsumer {
  readonly sink: DeliverySink;
  cancelled(reason: 'timeout' | 'deleted' | 'limit'): void;
}

interface LocalConsumer {
  readonly tag: string;
  readonly owner: Owner;
  readonly sink: DeliverySink;
  readonly cancelled?: (reason: 'timeout' | 'deleted' | 'limit') => void;
}

/** What applying one of our own proposals produced for its caller. */
interface Waiter {
  enqueue: EnqueueOutcome;
  get: GetResponse | null;
  count: number;
  readonly consumer?: LocalConsumer;
  /** A sampled enqueue's stage trace. */
  readonly trace?: MessageTrace;
}

const tagKey = (channel: string, tag: string): string => `${channel}\u0000${tag}`;

/** Carried in a snapshot beside the queue state: the dead-letter exchange and routing key. */
interface SnapshotTarget {
  readonly deadLetterTarget: readonly [string | null, string | null];
  readonly settingsAsOf: number;
}

/** What a config entry changes; single-active-consumer is fixed at declaration (queue/apply.ts). */
function settingsKey(c: QueueConfig, deadLetterExchange: string | null, deadLetterRoutingKey: string | null): string {
  return JSON.stringify([
    c.messageTtlMs, c.expiresMs, c.maxLength, c.maxLengthBytes, c.overflow, c.maxPriority, c.deliveryLimit, c.consumerTimeoutMs,
    deadLetterExchange, deadLetterRoutingKey,
  ]);
}

/** A holder's node without its incarnation ('n1#abc' -> 'n1'). */
export function plainNode(incarnated: string): string {
  const at = incarnated.lastIndexOf('#');
  return at < 0 ? incarnated : incarnated.slice(0, at);
}

export class ReplicatedQueue implements QueueBackend {
  readonly name: string;
  private state: QueueState;
  private readonly bodies: BodyStore;
  /** Replicated: consumer key by channel + tag (checked against state.holders before use). */
  private keyByTag = new Map<string, ConsumerKey>();
  /** Consumers connected to this node, with their sinks. */
  private readonly consumers = new Map<ConsumerKey, LocalConsumer>();
  private readonly waiters = new Map<number, Waiter>();
  /** Sampled messages applied here and not delivered yet, by id: their trace goes with the delivery. */
  private readonly traced = new Map<MsgId, MessageTrace>();
  private readonly waiting: Array<() => void> = [];
  private readonly listeners = new Set<(event: QueueEvent) => void>();
  private readonly timers: QueueTimers;
  private readonly proposer = (Math.random() * 2 ** 32) >>> 0;
  private seq = 0;
  private leading = false;
  /** Our leaderStart is in the log: new commands may follow it. */
  private started = false;
  /** Our leaderStart of this term is applied here: earlier lives' holders are down, counts are the queue's. */
  private startApplied = false;
  private closed = false;
  private timer: unknown = undefined;
  private sinceSnapshot = 0;
  /** bodies.removed at the last snapshot: messages gone since count toward the next one (their entries are kept until then). */
  private removedAtSnapshot = 0;
  private snapshotting = false;
  /** The dead-letter target as of the applied log (options at first, then config entries). */
  private deadLetterExchange: string | null;
  private deadLetterRoutingKey: string | null;
  /** The settings metadata wants (reconfigure); the leader commits them when they differ from the log's. */
  private wanted: ConfigCommand | null = null;
  /** Key of the config entry this leader proposed and has not seen applied yet (one entry per change). */
  private configProposed: string | null = null;
  /** The metadata index of the settings the applied log is at (0: as declared). */
  private settingsAsOf = 0;

  constructor(private readonly options: ReplicatedQueueOptions) {
    this.name = options.name;
    this.deadLetterExchange = options.deadLetterExchange;
    this.deadLetterRoutingKey = options.deadLetterRoutingKey;
    this.timers = options.timers ?? realTimers;
    this.state = createQueueState({ ...options.config, deadLetter: options.deadLetterExchange !== null }, 0);
    this.bodies = new BodyStore(options.bodyBudget ?? sharedBodyBudget(options.host), (id) => {
      const data = options.host.readEntry(options.groupId, logIndex(id));
      return data === undefined ? undefined : decodeEnqueuedMessage(data);
    });
    const members = options.members ?? [options.host.nodeId];
    options.host.createGroup(options.groupId, members, {
      apply: (e) => this.applyEntry(e),
      leaderChange: (leader) => this.leaderChange(leader),
      installSnapshot: (_i, _t, data) => this.install(data),
    });
    // Only the preferred leader (first member) campaigns at once, and only for a new group: the
    // others wait for its heartbeats (or their election timeout if it is gone).
    const fresh = (options.host.status(options.groupId)?.term ?? 0) === 0;
    if (members[0] === options.host.nodeId && (members.length === 1 || fresh)) this.campaignUntilLed(preferredCampaignsMax);
  }

  /**
   * The other replicas create the group when they apply the same declare, maybe a moment after
   * this one: a vote request that reaches a node without the group is lost, so the preferred
   * leader asks again (a few times, while no leader is known) rather than wait for a timeout.
   */
  private campaignUntilLed(left: number): void {
    if (this.closed || left <= 0 || this.options.host.leader(this.options.groupId) !== null) return;
    this.options.host.campaign(this.options.groupId);
    this.timers.set(() => this.campaignUntilLed(left - 1), preferredCampaignIntervalMs);
  }

  get leader(): boolean {
    return this.leading;
  }

  /** True once this node leads and its leaderStart is proposed: calls go straight into the log. */
  get ready(): boolean {
    return this.started && !this.closed;
  }

  /**
   * True while this replica leads and has applied its own leaderStart: its counters are the
   * queue's as clients see them. Before that (just restarted or just elected) the replayed state
   * may still count messages checked out to consumers of an earlier life, returned by leaderStart.
   */
  get current(): boolean {
    return this.leading && this.startApplied && !this.closed;
  }

  get groupId(): GroupId {
    return this.options.groupId;
  }

  /** The first of the bootstrap members: where placement wanted the leader. */
  get preferredLeader(): NodeId {
    return this.options.members?.[0] ?? this.options.host.nodeId;
  }

  /**
   * `dedup`: the caller's identity of this enqueue (mesh calls, which are retried across leader
   * changes); a repeat of one already applied stores nothing and answers 'ok' again.
   */
  enqueue(message: StoredMessage, trace?: MessageTrace, dedup?: EnqueueIdentity): Promise<EnqueueOutcome> {
    const p = message.properties;
    const priority = typeof p.priority === 'number' ? Math.max(0, Math.min(255, Math.floor(p.priority))) : 0;
    const ttlMs = parseExpiration(p.expiration);
    const command: LogCommand = dedup === undefined ? { type: 'enqueue', priority, ttlMs, message } : { type: 'enqueue', priority, ttlMs, message, dedup };
    return this.call(command, (w) => w.enqueue, undefined, trace);
  }

  /**
   * `sink` null: the consumer is on another node (mesh routing), reached through resolveConsumer.
   * `incarnation`: the consumer's node's (its own node's by default).
   */
  consume(request: ConsumeRequest, sink: DeliverySink | null, incarnation = this.options.incarnation): Promise<void> {
    const consumer = sink === null ? undefined : { tag: request.consumerTag, owner: request.owner, sink };
    return this.call({
      type: 'register', owner: this.incarnated(request.owner, incarnation), tag: request.consumerTag, creditMode: request.creditMode,
      prefetch: request.prefetch, priority: request.priority, noAck: request.noAck,
    }, () => undefined, consumer);
  }

  cancel(channel: string, consumerTag: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    const key = this.keyByTag.get(tagKey(channel, consumerTag));
    if (key !== undefined && this.consumers.get(key)?.tag === consumerTag) this.consumers.delete(key);
    return this.call({ type: 'cancel', channel, tag: consumerTag }, () => undefined);
  }

  credit(channel: string, consumerTag: string, credit: number, mode: 'add' | 'set'): Promise<void> {
    return this.call({ type: 'credit', channel, tag: consumerTag, credit, mode }, () => undefined);
  }

  settle(channel: string, msgIds: readonly MsgId[]): Promise<void> {
    return this.inChunks(msgIds, (msgIds) => ({ type: 'settle', channel, msgIds }));
  }

  requeue(channel: string, msgIds: readonly MsgId[]): Promise<void> {
    return this.inChunks(msgIds, (msgIds) => ({ type: 'return', channel, msgIds }));
  }

  discard(channel: string, msgIds: readonly MsgId[]): Promise<void> {
    return this.inChunks(msgIds, (msgIds) => ({ type: 'discard', channel, msgIds }));
  }

  get(owner: Owner, noAck: boolean, incarnation = this.options.incarnation): Promise<GetResponse | null> {
    return this.call({ type: 'get', owner: this.incarnated(owner, incarnation), noAck }, (w) => w.get);
  }

  purge(): Promise<number> {
    return this.call({ type: 'purge' }, (w) => w.count);
  }

  /** Deletes the queue for good: the delete is committed, then the group and its log go. */
  async delete(): Promise<number> {
    const count = await this.call({ type: 'delete' }, (w) => w.count);
    // Closed meanwhile: its owner dropped the group already (and may host a new one of that id).
    if (this.closed) return count;
    this.close();
    try {
      this.options.host.removeGroup(this.options.groupId);
    } catch {
      // The host is closing: the group goes with it; its log is deleted with the queue's metadata.
    }
    return count;
  }

  down(scope: DownScope, id: string, incarnation = this.options.incarnation): Promise<void> {
    // After close (node shutdown) the consumers are gone with the node; the next incarnation returns their messages.
    if (this.closed) return Promise.resolve();
    for (const [key, c] of [...this.consumers]) {
      const o = c.owner;
      if ((scope === 'channel' ? o.channel : scope === 'connection' ? o.connection : o.node) === id) this.consumers.delete(key);
    }
    return this.call({ type: 'down', scope, id: scope === 'node' ? this.incarnatedNode(id, incarnation) : id }, () => undefined);
  }

  /**
   * Leader only: returns the messages of `node`'s consumers of every incarnation but `keep` (null:
   * all of them: the node is gone), one committed down per incarnation found.
   */
  downStale(node: string, keep: string | null): Promise<Array<{ holderNode: string; channel: string; tag: string }>> {
    const prefix = `${node}#`;
    const stale = new Set<string>();
    const ended: Array<{ holderNode: string; channel: string; tag: string }> = [];
    for (const h of this.state.holders.values()) {
      if (!h.owner.node.startsWith(prefix) || h.owner.node === `${prefix}${keep ?? ''}`) continue;
      stale.add(h.owner.node);
      if (h.status !== 'get' && h.status !== 'cancelled') ended.push({ holderNode: h.owner.node, channel: h.owner.channel, tag: h.tag });
    }
    if (stale.size === 0) return Promise.resolve([]);
    for (const [key] of [...this.consumers]) if (stale.has(this.holderNode(key) ?? '')) this.consumers.delete(key);
    return Promise.all([...stale].sort().map((id) => this.call({ type: 'down', scope: 'node', id }, () => undefined))).then(() => ended);
  }

  /** The plain node ids (without incarnation) of every holder, for the mesh's liveness checks. */
  holderNodes(): Set<string> {
    const out = new Set<string>();
    for (const h of this.state.holders.values()) out.add(plainNode(h.owner.node));
    return out;
  }

  private holderNode(key: ConsumerKey): string | undefined {
    return this.state.holders.get(key)?.owner.node;
  }

  touch(): void {
    this.call({ type: 'touch' }, () => undefined).catch(() => undefined);
  }

  /**
   * The queue's effective settings as metadata has them now (a policy changed). Every replica is
   * told; only the leader acts: it commits one config entry when they differ from the log's, so
   * every replica switches at the same index. Single-active-consumer stays as declared. `asOf`:
   * the metadata index the settings were computed at; older than the log's settings: ignored.
   */
  reconfigure(config: QueueConfig, deadLetterExchange: string | null, deadLetterRoutingKey: string | null, asOf: number): void {
    this.wanted = { type: 'config', config: { ...config, deadLetter: deadLetterExchange !== null }, deadLetterExchange, deadLetterRoutingKey, asOf };
    this.maybeProposeConfig();
  }

  /** The settings the applied log is at (for tests and listings). */
  get settings(): { readonly config: QueueConfig; readonly deadLetterExchange: string | null; readonly deadLetterRoutingKey: string | null } {
    return { config: this.state.config, deadLetterExchange: this.deadLetterExchange, deadLetterRoutingKey: this.deadLetterRoutingKey };
  }

  private maybeProposeConfig(): void {
    const wanted = this.wanted;
    // A leader whose metadata is behind the log's settings would revert a newer policy: it waits.
    if (wanted === null || !this.started || this.closed || this.state.deleted || wanted.asOf < this.settingsAsOf) return;
    const key = settingsKey(wanted.config, wanted.deadLetterExchange, wanted.deadLetterRoutingKey);
    if (key === this.configProposed || key === settingsKey(this.state.config, this.deadLetterExchange, this.deadLetterRoutingKey)) return;
    this.configProposed = key;
    const settled = (): boolean => {
      if (this.configProposed !== key) return false;
      this.configProposed = null;
      return true;
    };
    // Applied: settings may have changed again meanwhile. Refused (leadership lost, host closing):
    // the next leader change, config entry or reconfigure tries again, not a loop here.
    this.call(wanted, () => undefined).then(() => settled() && this.maybeProposeConfig(), () => void settled());
  }

  /** Stops this node's edge of the queue (timers, waiting calls) without deleting anything. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.setTimer(null);
    // Waiting calls see `closed` and reject; proposals in flight settle with the host.
    for (const run of this.waiting.splice(0)) run();
    this.consumers.clear();
  }

  stats(): QueueStats {
    const c = counters(this.state);
    return { messagesReady: c.ready, messagesUnacked: c.unacked, bytesReady: c.readyBytes, bytesUnacked: c.unackedBytes, consumers: c.consumers };
  }

  /** What went through the queue since this replica started or restored a snapshot (every replica counts the same). */
  totals(): Readonly<QueueTotals> {
    return this.state.totals;
  }

  /** Live bodies (ready + unacked), in memory or in the log. For metrics and tests. */
  get bodiesHeld(): number {
    return this.bodies.size;
  }

  /** Bodies read back from the log so far (evicted from memory before they were needed). */
  get bodiesReadBack(): number {
    return this.bodies.loads;
  }

  onEvent(listener: (event: QueueEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  // ---- proposing ----

  private incarnatedNode(node: string, incarnation = this.options.incarnation): string {
    return `${node}#${incarnation}`;
  }

  private incarnated(owner: Owner, incarnation: string): Owner {
    return { node: this.incarnatedNode(owner.node, incarnation), connection: owner.connection, channel: owner.channel };
  }

  private inChunks(ids: readonly MsgId[], make: (chunk: readonly MsgId[]) => LogCommand): Promise<void> {
    const max = queueLimits.idsPerCommandMax;
    if (ids.length <= max) return this.call(make(ids), () => undefined);
    const parts: Array<Promise<void>> = [];
    for (let i = 0; i < ids.length; i += max) parts.push(this.call(make(ids.slice(i, i + max)), () => undefined));
    return Promise.all(parts).then(() => undefined);
  }

  /**
   * Proposes at once when our leaderStart is in the log (calls pipeline: the host batches a turn's
   * proposals into one fdatasync), else waits for leadership in call order.
   */
  private call<T>(command: EntryCommand, result: (w: Waiter) => T, consumer?: LocalConsumer, trace?: MessageTrace): Promise<T> {
    if (this.closed) return Promise.reject(new OperatingError(OperatingErrorCode.Closed, `queue '${this.name}' closed on this node`));
    return new Promise<T>((resolve, reject) => {
      const run = (): void => {
        if (this.closed) return reject(new OperatingError(OperatingErrorCode.Closed, `queue '${this.name}' closed on this node`));
        if (!this.started) return reject(this.notLeader(this.options.host.leader(this.options.groupId)));
        const seq = (this.seq = (this.seq + 1) >>> 0);
        const waiter: Waiter = consumer !== undefined ? { enqueue: 'ok', get: null, count: 0, consumer }
          : trace !== undefined ? { enqueue: 'ok', get: null, count: 0, trace } : { enqueue: 'ok', get: null, count: 0 };
        this.waiters.set(seq, waiter);
        let data: Uint8Array;
        try {
          data = encodeEntry(command, { timeMs: this.options.clock.nowMs(), proposer: this.proposer, seq });
        } catch (e) {
          // Properties the codec cannot encode: this call fails, never the host's cycle it may run in.
          this.waiters.delete(seq);
          return reject(e instanceof Error ? e : new Error(String(e)));
        }
        if (trace !== undefined) stamp(trace, Stage.proposed, traceNowMs());
        this.options.host.propose(this.options.groupId, data, trace).then(
          () => {
            this.waiters.delete(seq);
            resolve(result(waiter));
          },
          (e: unknown) => {
            this.waiters.delete(seq);
            reject(e instanceof Error ? e : new Error(String(e)));
          },
        );
      };
      if (this.started) return run();
      const leader = this.options.host.leader(this.options.groupId);
      if (leader !== null && leader !== this.options.host.nodeId) return reject(this.notLeader(leader));
      if (this.waiting.length >= waitingCallsMax) {
        return reject(new OperatingError(OperatingErrorCode.Overloaded, `queue '${this.name}': no leader yet and too many calls waiting`));
      }
      this.waiting.push(run);
    });
  }

  private notLeader(leader: NodeId | null): OperatingError {
    return new OperatingError(OperatingErrorCode.NotLeader, `queue '${this.name}' is led by ${leader ?? 'no node yet'}`, { leader: leader ?? '' });
  }

  private leaderChange(leader: NodeId | null): void {
    const leading = leader === this.options.host.nodeId;
    if (!leading && leader !== null) {
      // Another node leads: calls waiting for a leader fail NotLeader (the mesh retries them there).
      for (const run of this.waiting.splice(0)) run();
    }
    if (leading === this.leading) return;
    this.leading = leading;
    this.started = false;
    this.startApplied = false;
    this.configProposed = null;
    if (!leading || this.closed) return this.setTimer(null);
    // First in our term's log: earlier incarnations' holders go down, so nothing of ours mixes with them.
    const start: LogCommand = { type: 'leaderStart', node: this.options.node, incarnation: this.options.incarnation };
    const data = encodeEntry(start, { timeMs: this.options.clock.nowMs(), proposer: this.proposer, seq: 0 });
    this.options.host.propose(this.options.groupId, data).catch(() => undefined);
    this.started = true;
    // Before any waiting call: settings changed while another node led apply to what follows.
    this.maybeProposeConfig();
    this.setTimer(this.state.timerAtMs);
    for (const run of this.waiting.splice(0)) run();
  }

  // ---- applying ----

  private applyEntry(entry: AppliedEntry): void {
    // A snapshot saved just before a crash may be newer than the log start the host replays from.
    if (entry.index <= this.state.lastIndex) return;
    const { header, command } = decodeLogEntry(entry.data);
    const waiter = header.proposer === this.proposer ? this.waiters.get(header.seq) : undefined;
    const index = entry.index as number;
    if (command.type === 'leaderStart') {
      this.applyLeaderStart(command.node, command.incarnation, index, header.timeMs);
    } else {
      const c = this.toQueueCommand(command, index, waiter);
      if (c === null) {
        // A cancel or credit for a consumer that is gone: the index still advances.
        this.run({ type: 'touch' }, index, header.timeMs, undefined);
      } else {
        this.run(c, index, header.timeMs, waiter);
        if (c.type === 'down') this.forgetEndedTags();
        // An older leader's entry may have set other settings than metadata wants now.
        if (c.type === 'config' && this.leading) queueMicrotask(() => this.maybeProposeConfig());
      }
    }
    this.maybeSnapshot(index);
  }

  private toQueueCommand(command: Exclude<EntryCommand, { type: 'leaderStart' }>, index: number, waiter: Waiter | undefined): Command | null {
    switch (command.type) {
      case 'config':
        this.deadLetterExchange = command.deadLetterExchange;
        this.deadLetterRoutingKey = command.deadLetterRoutingKey;
        this.settingsAsOf = Math.max(this.settingsAsOf, command.asOf);
        return { type: 'config', config: command.config };
      case 'enqueue':
        this.bodies.set(index, command.message);
        if (waiter?.trace !== undefined) this.traceUntilDelivered(index, waiter.trace);
        if (command.dedup !== undefined) {
          return { type: 'enqueue', sizeBytes: command.message.body.length, priority: command.priority, ttlMs: command.ttlMs, dedup: command.dedup };
        }
        return { type: 'enqueue', sizeBytes: command.message.body.length, priority: command.priority, ttlMs: command.ttlMs };
      case 'register':
        this.keyByTag.set(tagKey(command.owner.channel, command.tag), index);
        if (waiter?.consumer !== undefined) this.consumers.set(index, waiter.consumer);
        return command;
      case 'cancel':
      case 'credit': {
        const key = this.keyByTag.get(tagKey(command.channel, command.tag));
        if (key === undefined || !this.state.holders.has(key)) return null;
        if (command.type === 'cancel') {
          this.keyByTag.delete(tagKey(command.channel, command.tag));
          // Also when the cancel was called before its register was applied: no delivery after it.
          this.consumers.delete(key);
          return { type: 'cancel', consumerKey: key };
        }
        return { type: 'credit', consumerKey: key, credit: command.credit, mode: command.mode };
      }
      default:
        return command;
    }
  }

  /**
   * Downs every holder of this node's earlier incarnations, then a touch; all but the last get
   * fractional indexes between the previous entry and this one (apply needs increasing indexes).
   */
  private applyLeaderStart(node: string, incarnation: string, index: number, timeMs: number): void {
    const prefix = `${node}#`;
    const mine = `${prefix}${incarnation}`;
    if (this.leading && node === this.options.node && incarnation === this.options.incarnation) this.startApplied = true;
    const old = new Set<string>();
    for (const h of this.state.holders.values()) if (h.owner.node.startsWith(prefix) && h.owner.node !== mine) old.add(h.owner.node);
    const downs = [...old].sort();
    const returns = this.inFlightAfterDowns(old);
    const steps = downs.length + returns.length;
    downs.forEach((id, k) => this.run({ type: 'down', scope: 'node', id }, index - 1 + (k + 1) / (steps + 1), timeMs, undefined));
    returns.forEach((c, k) => this.run(c, index - 1 + (downs.length + k + 1) / (steps + 1), timeMs, undefined));
    this.run({ type: 'touch' }, index, timeMs, undefined);
    if (downs.length > 0) this.forgetEndedTags();
  }

  /**
   * A new leader cannot know which deliveries of the previous one reached their consumers (a
   * notification to another node may have died with it), so every message still checked out to a
   * live holder goes back to the queue and is delivered again, redelivered=true: at least once.
   */
  private inFlightAfterDowns(downed: ReadonlySet<string>): Command[] {
    const out: Command[] = [];
    const holders = [...this.state.holders.values()].filter((h) => !downed.has(h.owner.node) && h.checkedOut.size > 0);
    holders.sort((a, b) => a.key - b.key);
    const max = queueLimits.idsPerCommandMax;
    for (const h of holders) {
      const ids = [...h.checkedOut.keys()];
      for (let i = 0; i < ids.length; i += max) out.push({ type: 'return', channel: h.owner.channel, msgIds: ids.slice(i, i + max) });
    }
    return out;
  }

  /** Tags of consumers a down ended (rare, so a scan): keeps keyByTag bounded by live holders. */
  private forgetEndedTags(): void {
    for (const [tag, key] of this.keyByTag) if (!this.state.holders.has(key)) this.keyByTag.delete(tag);
  }

  private run(command: Command, index: number, timeMs: number, waiter: Waiter | undefined): void {
    const effects = apply(this.state, command, { index, timeMs });
    for (const effect of effects) this.carryOut(effect, waiter, timeMs);
  }

  private carryOut(effect: Effect, waiter: Waiter | undefined, timeMs: number): void {
    answerCaller(effect, waiter, (id) => this.bodies.get(id));
    switch (effect.type) {
      case 'deliver': return this.deliver(effect.consumerKey, effect.msgId, effect.redelivered, effect.deliveryCount);
      case 'enqueueResult':
        // A duplicate (a retry of an enqueue applied before) stored nothing under this entry's index.
        if (effect.outcome === 'rejected' || effect.duplicate === true) this.bodies.delete(effect.msgId);
        return;
      case 'deadLetter': return this.deadLetter(effect.msgIds, effect.reason, timeMs);
      case 'dropped':
        for (const id of effect.msgIds) this.bodies.delete(id);
        return;
      case 'consumerCancelled': return this.serverCancel(effect.consumerKey, effect.reason, effect.owner, effect.tag);
      case 'timer': return this.leading ? this.setTimer(effect.atMs) : undefined;
      case 'queueExpired': return this.gone('expired');
      case 'deleted': return this.gone('deleted');
      default: return; // getResult, getEmpty, purged: the caller's answer only
    }
  }

  /** Leader only: to sinks registered here, else to the consumer's node (resolveConsumer). */
  private deliver(key: ConsumerKey, msgId: MsgId, redelivered: boolean, deliveryCount: number): void {
    if (!this.leading) return;
    const consumer = this.consumers.get(key) ?? this.resolve(key);
    if (consumer === undefined) return;
    const message = this.bodies.get(msgId);
    assert(message !== undefined, 'a message handed out has its body');
    const trace = this.traced.size === 0 ? undefined : this.traced.get(msgId);
    if (trace !== undefined) this.traced.delete(msgId);
    consumer.sink({ consumerTag: consumer.tag, msgId, message, redelivered, deliveryCount, trace });
  }

  /** Keeps a sampled message's trace for its first delivery (bounded: the oldest goes). */
  private traceUntilDelivered(id: MsgId, trace: MessageTrace): void {
    if (this.traced.size >= tracedWaitingMax) this.traced.delete(this.traced.keys().next().value!);
    this.traced.set(id, trace);
  }

  /** Every replica releases the bodies; the leader republishes them (at least once across failover). */
  private deadLetter(msgIds: readonly MsgId[], reason: DeadLetterReason, timeMs: number): void {
    const exchange = this.deadLetterExchange;
    for (const id of msgIds) {
      const message = this.bodies.get(id);
      assert(message !== undefined, 'a dead-lettered message has its body');
      this.bodies.delete(id);
      if (exchange === null || !this.leading) continue;
      const { expiration, headers: oldHeaders, ...rest } = message.properties;
      const death = { queue: this.name, reason, exchange: message.exchange, routingKey: message.routingKey, expiration, timeMs };
      const out = deadLetter(oldHeaders, death, { routingKey: this.deadLetterRoutingKey }, this.options.fieldValues);
      // Republished as RabbitMQ does: from the dead-letter exchange with the keys it is routed by.
      const republished: StoredMessage = { exchange, routingKey: out.routingKeys[0] ?? message.routingKey, properties: { ...rest, headers: out.headers }, body: message.body };
      this.options.onDeadLetter({ queue: this.name, reason, exchange, routingKeys: out.routingKeys, message: republished });
    }
  }

  /** A consumer registered elsewhere (or through a previous leader), cached until it ends. */
  private resolve(key: ConsumerKey): LocalConsumer | undefined {
    const h = this.state.holders.get(key);
    if (h === undefined) return undefined;
    const consumer = this.resolveHolder(h.owner, h.tag);
    if (consumer !== undefined) this.consumers.set(key, consumer);
    return consumer;
  }

  /** The consumer of a holder's owner (incarnated node) and tag, through the mesh. */
  private resolveHolder(holder: Owner, tag: string): LocalConsumer | undefined {
    const remote = this.options.resolveConsumer?.(holder.node, holder.channel, tag);
    if (remote === undefined) return undefined;
    const owner = { node: plainNode(holder.node), connection: holder.connection, channel: holder.channel };
    return { tag, owner, sink: remote.sink, cancelled: (reason) => remote.cancelled(reason) };
  }

  /**
   * The queue ended a consumer (deleted, timed out, over the limit). The holder may be gone from
   * the state already (a delete clears them all first), so a consumer elsewhere is found by the
   * owner and tag the effect names.
   */
  private serverCancel(key: ConsumerKey, reason: 'timeout' | 'deleted' | 'limit', holder: Owner, tag: string): void {
    const consumer = this.consumers.get(key) ?? (this.leading ? this.resolveHolder(holder, tag) : undefined);
    if (consumer === undefined) return;
    this.consumers.delete(key);
    if (consumer.cancelled !== undefined) return consumer.cancelled(reason);
    this.emit({ type: 'consumerCancelled', channel: consumer.owner.channel, consumerTag: consumer.tag, reason });
  }

  private gone(reason: 'expired' | 'deleted'): void {
    this.bodies.clear();
    this.setTimer(null);
    if (this.leading || reason === 'deleted') this.emit({ type: 'queueDeleted', reason });
  }

  private setTimer(atMs: number | null): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    if (atMs === null || this.closed || !this.leading) return;
    const delayMs = Math.min(Math.max(0, atMs - this.options.clock.nowMs()), queueLimits.durationMsMax);
    this.timer = this.timers.set(() => {
      this.timer = undefined;
      // The firing is a command: its time is the leader's, replicated with it.
      this.call({ type: 'tick' }, () => undefined).catch(() => undefined);
    }, delayMs);
  }

  private emit(event: QueueEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }

  // ---- snapshots ----

  private maybeSnapshot(index: number): void {
    this.sinceSnapshot++;
    const live = this.state.ready + this.state.unacked;
    // A draining deep queue adds few entries (a settle per batch) but frees many kept ones: count both.
    const progress = this.sinceSnapshot + (this.bodies.removed - this.removedAtSnapshot);
    const every = Math.max(this.options.snapshotEveryEntries ?? snapshotEveryEntriesMin, 2 * live);
    if (progress < every || this.snapshotting || this.closed) return;
    this.sinceSnapshot = 0;
    this.removedAtSnapshot = this.bodies.removed;
    this.snapshotting = true;
    // Bodies stay in the log (kept entries); the snapshot carries only those in no log.
    // The dead-letter target goes along: a replica restored from it dead-letters where the log said.
    const withTarget: QueueSnapshot & SnapshotTarget = {
      ...snapshot(this.state), deadLetterTarget: [this.deadLetterExchange, this.deadLetterRoutingKey], settingsAsOf: this.settingsAsOf,
    };
    const data = encodeSnapshot(withTarget, this.bodies.pinned());
    const keep = this.bodies.keep();
    // After this cycle's advance(): the host takes snapshots only at or below its applied index.
    queueMicrotask(() => {
      this.options.host.saveSnapshot(this.options.groupId, logIndex(index), data, keep)
        .catch(() => undefined) // refused while a config change is in flight, or closing: next time
        .finally(() => { this.snapshotting = false; });
    });
  }

  private install(data: Uint8Array): void {
    const { state, bodies } = decodeSnapshot(data);
    // Snapshots from before config entries existed carry none: the target stays as it was.
    const carried = state as QueueSnapshot & Partial<SnapshotTarget>;
    if (carried.deadLetterTarget !== undefined) [this.deadLetterExchange, this.deadLetterRoutingKey] = carried.deadLetterTarget;
    this.settingsAsOf = carried.settingsAsOf ?? 0;
    this.state = restore(state);
    this.bodies.restore(liveIdsOf(state), bodies);
    this.removedAtSnapshot = this.bodies.removed;
    this.keyByTag = new Map();
    for (const h of this.state.holders.values()) {
      if (h.status !== 'get' && h.status !== 'cancelled') this.keyByTag.set(tagKey(h.owner.channel, h.tag), h.key);
    }
    for (const key of [...this.consumers.keys()]) if (!this.state.holders.has(key)) this.consumers.delete(key);
    this.sinceSnapshot = 0;
  }
}
