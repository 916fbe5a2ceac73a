// The QueueBackend a channel gets for a replicated queue on any node, and for a non-replicated
// queue homed on another node: every call is routed to the queue's leader (this node's replica
// when it leads, else the leader's node over rpc), or to its home node, by the node's QueueMesh;
// the consumer's sink is registered here, so deliveries find it whichever node leads, before and
// after a failover, without the client consuming again.

import { randomBytes } from 'node:crypto';
import type {
  ConsumeRequest, DeliverySink, DownScope, EnqueueOutcome, GetResponse, MsgId, Owner, QueueBackend, QueueEvent, QueueStats, StoredMessage,
} from '../broker/queue-backend.js';
import type { NodeId } from '../lib/ids.js';
import type { MessageTrace } from '../lib/trace.js';
import { parseExpiration, queueLimits } from '../queue/index.js';
import type { CallResult } from './queue-wire.js';
import type { ForwardedCommand, QueueMesh } from './queue-service.js';

/** Commands that only release what a channel holds (or touch): done at once on a deleted queue. */
const releasing = new Set<ForwardedCommand['type']>(['cancel', 'credit', 'settle', 'return', 'discard', 'down', 'touch']);

export class MeshQueue implements QueueBackend {
  private readonly listeners = new Set<(event: QueueEvent) => void>();
  /** Counters from the last answer, for nodes that host no replica of the queue. */
  private lastStats: QueueStats = { messagesReady: 0, messagesUnacked: 0, bytesReady: 0, bytesUnacked: 0, consumers: 0 };
  /** Consumer tags registered through this backend, by channel (to drop their sinks on down). */
  private readonly tags = new Map<string, Set<string>>();
  /**
   * Acks of this turn by channel, sent as one settle command per channel (one log entry, one
   * forwarded call) at the end of the turn or before any other call of this queue, so calls
   * still reach the leader in call order.
   */
  private acks = new Map<string, { ids: MsgId[]; waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> }>();
  private acksScheduled = false;
  /**
   * Identity of this backend's enqueues (see src/queue/dedup.ts): a retry on a new leader reuses
   * it, so an enqueue the old leader committed before dying is not stored twice.
   */
  private readonly origin = randomBytes(9).toString('base64url');
  private enqueueSeq = 0;
  /** Seqs of enqueues not answered yet, ascending (insertion order): the first is the floor. */
  private readonly enqueuesInFlight = new Set<number>();

  constructor(
    private readonly mesh: QueueMesh,
    readonly vhost: string,
    readonly name: string,
    /** The queue's replica set as metadata has it now (first = preferred leader). */
    private readonly replicas: () => readonly NodeId[],
  ) {}

  enqueue(message: StoredMessage, trace?: MessageTrace): Promise<EnqueueOutcome> {
    const p = message.properties;
    const priority = typeof p.priority === 'number' ? Math.max(0, Math.min(255, Math.floor(p.priority))) : 0;
    const seq = ++this.enqueueSeq;
    this.enqueuesInFlight.add(seq);
    const floor = this.enqueuesInFlight.values().next().value ?? seq;
    const dedup = { origin: this.origin, seq, floor };
    const done = (): void => void this.enqueuesInFlight.delete(seq);
    return this.run({ type: 'enqueue', priority, ttlMs: parseExpiration(p.expiration), message, dedup }, trace).then(
      (r) => {
        done();
        return r.kind === 'enqueue' ? r.outcome : 'ok';
      },
      (e: unknown) => {
        done();
        throw e;
      },
    );
  }

  consume(request: ConsumeRequest, sink: DeliverySink): Promise<void> {
    const channel = request.owner.channel;
    const tag = request.consumerTag;
    this.mesh.registerSink(this.vhost, this.name, channel, tag, {
      sink,
      cancelled: (reason) => {
        this.forget(channel, tag);
        this.emit({ type: 'consumerCancelled', channel, consumerTag: tag, reason });
      },
    });
    let set = this.tags.get(channel);
    if (set === undefined) this.tags.set(channel, (set = new Set()));
    set.add(tag);
    const register: ForwardedCommand = {
      type: 'register', owner: request.owner, tag, creditMode: request.creditMode, prefetch: request.prefetch,
      priority: request.priority, noAck: request.noAck,
    };
    return this.run(register).then(() => undefined, (e: unknown) => {
      this.forget(channel, tag);
      throw e;
    });
  }

  cancel(channel: string, consumerTag: string): Promise<void> {
    this.forget(channel, consumerTag);
    return this.run({ type: 'cancel', channel, tag: consumerTag }).then(() => undefined);
  }

  credit(channel: string, consumerTag: string, credit: number, mode: 'add' | 'set'): Promise<void> {
    return this.run({ type: 'credit', channel, tag: consumerTag, credit, mode }).then(() => undefined);
  }

  settle(channel: string, msgIds: readonly MsgId[]): Promise<void> {
    let batch = this.acks.get(channel);
    if (batch === undefined) this.acks.set(channel, (batch = { ids: [], waiters: [] }));
    for (const id of msgIds) batch.ids.push(id);
    const b = batch;
    const done = new Promise<void>((resolve, reject) => b.waiters.push({ resolve, reject }));
    if (!this.acksScheduled) {
      this.acksScheduled = true;
      setImmediate(() => this.flushAcks());
    }
    return done;
  }

  private flushAcks(): void {
    this.acksScheduled = false;
    if (this.acks.size === 0) return;
    const batches = this.acks;
    this.acks = new Map();
    for (const [channel, b] of batches) {
      this.chunked(b.ids, (ids) => ({ type: 'settle', channel, msgIds: ids })).then(
        () => { for (const w of b.waiters) w.resolve(); },
        (e: unknown) => { for (const w of b.waiters) w.reject(e); },
      );
    }
  }

  requeue(channel: string, msgIds: readonly MsgId[]): Promise<void> {
    return this.chunked(msgIds, (ids) => ({ type: 'return', channel, msgIds: ids }));
  }

  discard(channel: string, msgIds: readonly MsgId[]): Promise<void> {
    return this.chunked(msgIds, (ids) => ({ type: 'discard', channel, msgIds: ids }));
  }

  get(owner: Owner, noAck: boolean): Promise<GetResponse | null> {
    return this.run({ type: 'get', owner, noAck }).then((r) => (r.kind === 'get' ? r.response : null));
  }

  purge(): Promise<number> {
    return this.run({ type: 'purge' }).then((r) => (r.kind === 'count' ? r.count : 0));
  }

  /**
   * Counters for declare-ok and delete-ok: the local replica's when it leads and has applied its
   * leaderStart, else those the leader answers to a touch (routed there; it follows leaderStart in
   * the log). A follower's or a just-restarted replica's own counts may lag, e.g. still counting
   * messages checked out to consumers of a node's earlier life.
   */
  refresh(): Promise<QueueStats> {
    const touched = this.run({ type: 'touch' });
    const replica = this.mesh.replica(this.vhost, this.name);
    if (replica === undefined || !replica.current) return touched.then(() => this.lastStats);
    touched.catch(() => undefined);
    return Promise.resolve(replica.stats());
  }

  /**
   * Metadata deleted the queue: every node's registry drops this backend, and this node's
   * consumers of it get basic.cancel now, wherever the queue lived (its leader or home also
   * cancels them when it commits the delete: the first of the two wins, the second finds no
   * sink). Replicas retire on their own. Here: the count of messages it had.
   */
  delete(): Promise<number> {
    for (const [channel, set] of [...this.tags]) {
      for (const tag of [...set]) {
        this.forget(channel, tag);
        this.emit({ type: 'consumerCancelled', channel, consumerTag: tag, reason: 'deleted' });
      }
    }
    return Promise.resolve(this.stats().messagesReady);
  }

  down(scope: DownScope, id: string): Promise<void> {
    for (const [channel, set] of [...this.tags]) {
      const node = channel.slice(0, channel.indexOf('/'));
      if (scope === 'channel' ? channel === id : scope === 'node' ? node === id : channel.startsWith(`${node}/${id}/`)) {
        for (const tag of [...set]) this.forget(channel, tag);
      }
    }
    return this.run({ type: 'down', scope, id }).then(() => undefined);
  }

  touch(): void {
    this.run({ type: 'touch' }).catch(() => undefined);
  }

  stats(): QueueStats {
    return this.mesh.replica(this.vhost, this.name)?.stats() ?? this.lastStats;
  }

  onEvent(listener: (event: QueueEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** The local replica's own events (x-expires ran out, deleted): the registry acts on them. */
  emit(event: QueueEvent): void {
    for (const l of [...this.listeners]) l(event);
  }

  private forget(channel: string, tag: string): void {
    this.mesh.unregisterSink(this.vhost, this.name, channel, tag);
    const set = this.tags.get(channel);
    set?.delete(tag);
    if (set?.size === 0) this.tags.delete(channel);
  }

  private run(command: ForwardedCommand, trace?: MessageTrace): Promise<CallResult> {
    // A deleted queue holds no consumers and no messages: what only releases them has nothing to do.
    if (releasing.has(command.type) && this.replicas().length === 0) return Promise.resolve({ kind: 'void' });
    if (this.acks.size > 0 && command.type !== 'settle') this.flushAcks();
    return this.mesh.route(this.vhost, this.name, this.replicas, command, trace).then((a) => {
      this.lastStats = a.stats;
      return a.result;
    });
  }

  private chunked(ids: readonly MsgId[], make: (ids: readonly MsgId[]) => ForwardedCommand): Promise<void> {
    const max = queueLimits.idsPerCommandMax;
    if (ids.length <= max) return this.run(make(ids)).then(() => undefined);
    const parts: Array<Promise<unknown>> = [];
    for (let i = 0; i < ids.length; i += max) parts.push(this.run(make(ids.slice(i, i + max))));
    return Promise.all(parts).then(() => undefined);
  }
}
