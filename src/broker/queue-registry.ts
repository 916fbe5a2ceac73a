// The node's live queues by vhost and name: creates a backend when metadata says a queue exists,
// drops it when metadata deletes it, and routes queue events (server-side cancels, x-expires) to
// channels and back to metadata. With a group host, durable, non-exclusive, non-auto-delete queues
// are ReplicatedQueues (a Raft group each); the rest, and every queue without a host, are LocalQueues.
// With a QueueMesh (a cluster), channels get MeshQueues that route to the queue's leader wherever it
// is, and the replicas this node hosts follow metadata: reconcile() creates the group on every node
// in a queue's replica set when its declare is applied, and retires it when the queue is deleted.
// A non-replicated queue is a LocalQueue on its home node only (served to the other nodes through
// the mesh as a HomeQueue); elsewhere channels get a MeshQueue that routes to the home node. Every
// node drops its backend of a queue once metadata no longer has it, whichever node deleted it, so
// its consumers there get basic.cancel.

import { randomBytes } from 'node:crypto';
import type { GroupHost } from '../cluster/group-host.js';
import { MeshQueue } from '../cluster/mesh-queue.js';
import { serveQueueMembership } from '../cluster/queue-membership.js';
import type { QueueMesh } from '../cluster/queue-service.js';
import { ReplicatedQueue } from '../cluster/replicated-queue.js';
import { groupId, type GroupId, type NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import type { Clock } from '../lib/random.js';
import { listQueues, listVhosts, lookupQueue, queueArgSettings, queueSettings, type QueueRecord, type QueueSettings } from '../model/index.js';
import { defaultQueueConfig, type QueueConfig } from '../queue/index.js';
import { HomeQueue } from './home-queue.js';
import { LocalQueue } from './local-queue.js';
import type { MetadataClient } from './metadata-client.js';
import type { DeadLetterSink, QueueBackend, QueueEvent } from './queue-backend.js';
import { wireFieldValues } from './field-values.js';

/**
 * This process's incarnation: consumers registered in replicated queues carry it, so the next start
 * of the node can return the messages they held (they are gone with the process).
 */
export const incarnation = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;

/** The Raft group of a replicated queue: no '/' or NUL from user names reaches the group id. */
export function queueGroupId(vhost: string, name: string): GroupId {
  return groupId(`q.${encodeURIComponent(vhost)}.${encodeURIComponent(name)}`);
}

/** Queues that are replicated when the node has a group host. */
export function isReplicated(record: QueueRecord): boolean {
  return record.durable && !record.autoDelete && record.exclusiveOwner === null;
}

/** A queue run on this node (QueueRegistry.running). */
export interface RunningQueue {
  readonly vhost: string;
  readonly name: string;
  readonly queue: LocalQueue | ReplicatedQueue;
  readonly leader: boolean;
}

/** What a channel exposes so queue events can reach it. */
export interface CancelTarget {
  serverCancel(consumerTag: string): void;
}

/**
 * What kind of backend a record calls for on a node: a record that no longer fits the backend built
 * for it (deleted and declared again, maybe elsewhere) gets a new one.
 */
function shapeOf(r: QueueRecord): string {
  if (isReplicated(r)) return 'replicated';
  const owner = r.exclusiveOwner === null ? '' : `${r.exclusiveOwner.nodeId}/${r.exclusiveOwner.connectionId}`;
  return `local ${r.homeNode} ${owner} ${String(r.durable)} ${String(r.autoDelete)}`;
}

export class QueueRegistry {
  private readonly queues = new Map<string, QueueBackend>();
  /** shapeOf the record each backend in `queues` was built for. */
  private readonly shapes = new Map<string, string>();
  /** Non-replicated queues homed here, as the mesh serves them to other nodes. */
  private readonly hosted = new Map<string, HomeQueue>();
  /** Channels by their owner id (node/connection/channel), for server-sent basic.cancel. */
  readonly channels = new Map<string, CancelTarget>();
  /** Queues with an exclusive consumer, and the channel holding it. */
  readonly exclusiveConsumer = new Map<QueueBackend, string>();
  /** With a mesh: the replicas of replicated queues hosted on this node, by queue key. */
  private readonly replicas = new Map<string, ReplicatedQueue>();
  private reconcileScheduled = false;
  /** Replicas started by a grow before metadata names this node (hostJoining), by queue key. */
  private readonly joining = new Set<string>();
  /** The policies as of the last refreshSettings (a signature of all of them). */
  private policies = '';
  /** Replicas of deleted queues waiting for their delete to be applied, with the function that drops them. */
  private readonly retiring = new Map<string, () => void>();
  private mesh: QueueMesh | null = null;

  constructor(
    private readonly metadata: MetadataClient,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly deadLetterSink: (vhost: string) => DeadLetterSink,
    /** The node's Raft groups; null (broker tests without a cluster): every queue is local. */
    private groupHost: GroupHost | null = null,
  ) {}

  /** Durable queues created from now on are replicated on this host (see the constructor). */
  attachGroupHost(host: GroupHost | null): void {
    this.groupHost = host;
  }

  /** The queue mesh once attached (the management API reads its replicas' Raft status). */
  get attachedMesh(): QueueMesh | null {
    return this.mesh;
  }

  /** Replicated queues are reached through the mesh from now on (call before any queue is used). */
  attachMesh(mesh: QueueMesh): void {
    this.mesh = mesh;
    // A call from another node for a queue homed here that no channel here has used since this node started.
    mesh.onHostedMiss((vhost, name) => {
      const record = lookupQueue(this.metadata.state, vhost, name);
      if (record === undefined || isReplicated(record) || record.homeNode !== mesh.nodeId) return undefined;
      this.ensure(record);
      return this.hosted.get(this.key(vhost, name));
    });
    // ctl grow/shrink: coordinated from any node, carried out by each queue's leader.
    const extras = this.metadata as MetadataClient & { nodes?: () => ReadonlyArray<{ readonly id: NodeId }> };
    serveQueueMembership({
      mesh, host: mesh.host, rpc: mesh.rpc, metadata: this.metadata, logger: this.logger, groupOf: queueGroupId,
      hostJoining: (vhost, name) => this.hostJoining(vhost, name),
      ...(typeof extras.nodes === 'function' ? { nodes: () => extras.nodes!().map((n) => n.id) } : {}),
    });
  }

  /**
   * ctl grow: hosts a queue's group here before metadata names this node, with the replica set
   * metadata has now as its bootstrap members (this node not among them, as the log has it until
   * the leader's AddLearner). Metadata names the node only once it is a voter, so every replica
   * that restarts meanwhile replays the log's membership changes from the right start. False when
   * metadata has no such replicated queue.
   */
  hostJoining(vhost: string, name: string): boolean {
    const mesh = this.mesh;
    const record = this.metadata.state.vhosts.get(vhost)?.queues.get(name)?.record;
    if (mesh === null || this.groupHost === null || record === undefined || !isReplicated(record)) return false;
    const key = this.key(vhost, name);
    if (this.replicas.has(key)) return true;
    this.joining.add(key);
    this.startReplica(record, mesh);
    return this.replicas.has(key);
  }

  /**
   * Starts every replicated queue metadata knows, so each replays its log as the node boots rather
   * than on first use (a passive declare right after a restart then sees the recovered messages).
   */
  recoverReplicated(): number {
    if (this.groupHost === null) return 0;
    if (this.mesh !== null) {
      this.reconcile();
      return this.replicas.size;
    }
    let started = 0;
    for (const vhost of listVhosts(this.metadata.state)) {
      for (const record of listQueues(this.metadata.state, vhost)) {
        if (!isReplicated(record) || this.get(vhost, record.name) !== undefined) continue;
        this.ensure(record);
        started++;
      }
    }
    return started;
  }

  private key(vhost: string, name: string): string {
    return `${vhost}\u0000${name}`;
  }

  get(vhost: string, name: string): QueueBackend | undefined {
    return this.queues.get(this.key(vhost, name));
  }

  /** How far this node applied metadata (the replicated client's applied index; 0 without one). */
  private metadataIndex(): number {
    const m = this.metadata as MetadataClient & { stats?: () => { appliedIndex: number } };
    return typeof m.stats === 'function' ? m.stats().appliedIndex : 0;
  }

  /** The replica of a replicated queue this node hosts, if any (listings and tests). */
  replica(vhost: string, name: string): ReplicatedQueue | undefined {
    return this.replicas.get(this.key(vhost, name));
  }

  /** The backend of a queue metadata knows, created on first use. */
  ensure(record: QueueRecord): QueueBackend {
    const key = this.key(record.vhost, record.name);
    const shape = shapeOf(record);
    const existing = this.queues.get(key);
    if (existing !== undefined && this.shapes.get(key) === shape) return existing;
    // A queue of that name deleted and declared again before this node's reconcile saw it.
    if (existing !== undefined) this.drop(key);
    const mesh = this.mesh;
    let queue: QueueBackend;
    if (mesh === null) queue = this.createOwn(record);
    else if (isReplicated(record)) queue = this.groupHost !== null ? this.meshQueue(record, mesh) : this.createOwn(record);
    else if (record.homeNode === mesh.nodeId) queue = this.home(record, mesh);
    else queue = new MeshQueue(mesh, record.vhost, record.name, () => this.homeOf(record.vhost, record.name));
    this.queues.set(key, queue);
    this.shapes.set(key, shape);
    queue.onEvent((event) => this.onEvent(record, queue, event));
    return queue;
  }

  /** A non-replicated queue homed here: its LocalQueue, served to the other nodes through the mesh. */
  private home(record: QueueRecord, mesh: QueueMesh): LocalQueue {
    const { config, dlx, dlrk } = this.configOf(record);
    const queue = this.localQueue(record, config, dlx, dlrk);
    const served = new HomeQueue(queue, () => void this.deleteIfUnused(record.vhost, queue));
    this.hosted.set(this.key(record.vhost, record.name), served);
    mesh.addHosted(record.vhost, record.name, served);
    return queue;
  }

  /** Where a non-replicated queue lives now, as metadata has it ([] once it is deleted). */
  private homeOf(vhost: string, name: string): readonly NodeId[] {
    const record = lookupQueue(this.metadata.state, vhost, name);
    return record === undefined || isReplicated(record) ? [] : [record.homeNode];
  }

  /** The queue's effective settings now: its x-args resolved against the policy that applies. */
  private configOf(record: QueueRecord): QueueSetup {
    return setupOf(queueSettings(this.metadata.state, record.vhost, record.name));
  }

  /**
   * After a metadata apply: when any policy changed, every queue run here is given its effective
   * settings again (a queue whose settings did not change gets nothing: the backend compares).
   * Local queues take them at once; of a replicated queue, the leader commits a config entry.
   */
  refreshSettings(): void {
    const signature = policySignature(this.metadata.state);
    if (signature === this.policies) return;
    this.policies = signature;
    const seen = new Set<QueueBackend>();
    for (const [key, q] of [...this.queues, ...this.replicas]) {
      if (seen.has(q) || !(q instanceof LocalQueue || q instanceof ReplicatedQueue)) continue;
      seen.add(q);
      const record = this.metadata.state.vhosts.get(this.vhostOf(key))?.queues.get(q.name)?.record;
      if (record === undefined) continue; // being deleted
      const { config, dlx, dlrk } = this.configOf(record);
      if (q instanceof LocalQueue) q.reconfigure(config, dlx, dlrk).catch(() => undefined);
      else q.reconfigure(config, dlx, dlrk, this.metadataIndex());
    }
  }

  private meshQueue(record: QueueRecord, mesh: QueueMesh): MeshQueue {
    const { vhost, name } = record;
    // The replica set as metadata has it now (placement may move it); none once the queue is deleted.
    const replicas = (): readonly NodeId[] => this.metadata.state.vhosts.get(vhost)?.queues.get(name)?.record.replicas ?? [];
    if (record.replicas.includes(mesh.nodeId) && !this.replicas.has(this.key(vhost, name))) this.startReplica(record, mesh);
    return new MeshQueue(mesh, vhost, name, replicas);
  }

  /**
   * Makes the replicas hosted here match metadata: a group for every replicated queue whose replica
   * set names this node, none for queues deleted (or moved away). Called after metadata applies.
   */
  reconcile(): void {
    this.refreshSettings();
    const mesh = this.mesh;
    if (mesh === null || this.groupHost === null) return;
    this.dropStale();
    const wanted = new Set<string>();
    for (const vhost of listVhosts(this.metadata.state)) {
      for (const record of listQueues(this.metadata.state, vhost)) {
        if (!isReplicated(record) || !record.replicas.includes(mesh.nodeId)) continue;
        const key = this.key(record.vhost, record.name);
        wanted.add(key);
        this.joining.delete(key);
        if (!this.replicas.has(key)) this.startReplica(record, mesh);
      }
    }
    for (const [key, q] of [...this.replicas]) {
      if (wanted.has(key)) continue;
      const exists = this.metadata.state.vhosts.get(this.vhostOf(key))?.queues.has(q.name) === true;
      if (exists && this.joining.has(key)) continue; // a grow under way: metadata names this node once it is a voter
      this.joining.delete(key);
      if (exists) this.release(key, q, mesh);
      else this.retire(key, q, mesh);
    }
  }

  /**
   * Drops the backends of queues metadata no longer has (deleted on any node: a delete, a closed
   * connection's exclusive queues, a dead node's transient ones) or has as another queue now.
   */
  private dropStale(): void {
    for (const [key, q] of [...this.queues]) {
      const record = lookupQueue(this.metadata.state, this.vhostOf(key), q.name);
      if (record === undefined || this.shapes.get(key) !== shapeOf(record)) this.drop(key);
    }
  }

  /**
   * The queue lives on without this node (ctl shrink: its leader removed this node from the group
   * before metadata dropped it): the replica stops and its group and log go, nothing is deleted.
   */
  private release(key: string, q: ReplicatedQueue, mesh: QueueMesh): void {
    this.replicas.delete(key);
    mesh.removeReplica(this.vhostOf(key), q.name, q);
    q.close();
    try {
      this.groupHost?.removeGroup(q.groupId);
    } catch {
      // the host is closing
    }
    this.logger.info('replica removed from this node', { vhost: this.vhostOf(key), queue: q.name });
  }

  /** Coalesces the reconciles of one apply phase (many entries) into one, after it. */
  reconcileSoon(): void {
    if (this.reconcileScheduled) return;
    this.reconcileScheduled = true;
    queueMicrotask(() => {
      this.reconcileScheduled = false;
      this.reconcile();
    });
  }

  private startReplica(record: QueueRecord, mesh: QueueMesh): void {
    const host = this.groupHost;
    if (host === null) return;
    // Declared again while the old queue's group is still retiring here: the old one goes now.
    this.retiring.get(this.key(record.vhost, record.name))?.();
    // Every replica starts from the declared arguments (the same everywhere, whenever it applied the
    // declare); the policy's settings come as a config entry its leader commits (reconfigure below).
    const { config, dlx, dlrk } = setupOf(queueArgSettings(record));
    let q: ReplicatedQueue;
    try {
      q = new ReplicatedQueue({
        name: record.name, config, clock: this.clock, deadLetterExchange: dlx, deadLetterRoutingKey: dlrk,
        onDeadLetter: this.deadLetterSink(record.vhost), fieldValues: wireFieldValues,
        groupId: queueGroupId(record.vhost, record.name), host, members: record.replicas, node: host.nodeId, incarnation,
        resolveConsumer: mesh.resolverFor(record.vhost, record.name),
      });
    } catch (e) {
      // A damaged log (Corrupted): the other replicas carry the queue; this node serves it through them.
      this.logger.error('replica not started', { vhost: record.vhost, queue: record.name, error: String(e) });
      return;
    }
    this.replicas.set(this.key(record.vhost, record.name), q);
    const wanted = this.configOf(record);
    q.reconfigure(wanted.config, wanted.dlx, wanted.dlrk, this.metadataIndex());
    mesh.addReplica(record.vhost, record.name, q);
    q.onEvent((event) => {
      if (event.type === 'queueDeleted' && event.reason === 'expired') this.expire(record);
    });
  }

  /** The queue left metadata: the leader commits its delete (cancelling its consumers), then every replica drops its group. */
  private retire(key: string, q: ReplicatedQueue, mesh: QueueMesh): void {
    const host = this.groupHost;
    this.replicas.delete(key);
    mesh.removeReplica(this.vhostOf(key), q.name, q);
    let dropped = false;
    const drop = (): void => {
      if (dropped) return;
      dropped = true;
      this.retiring.delete(key);
      clearTimeout(timer);
      off();
      q.close();
      try {
        host?.removeGroup(q.groupId);
      } catch {
        // removed already by the committed delete, or the host is closing
      }
    };
    const off = q.onEvent((event) => {
      if (event.type === 'queueDeleted') setImmediate(drop);
    });
    const timer = setTimeout(drop, mesh.limits.retireGraceMs);
    this.retiring.set(key, drop);
    if (q.leader) q.delete().then(drop, drop);
  }

  private vhostOf(key: string): string {
    return key.slice(0, key.indexOf('\u0000'));
  }

  private expire(record: QueueRecord): void {
    this.logger.info('queue expired', { vhost: record.vhost, queue: record.name });
    void this.metadata.apply({
      kind: 'deleteQueue', vhost: record.vhost, name: record.name, ifUnused: false, ifEmpty: false,
      consumerCount: 0, messageCount: 0, connection: null,
    }).then((r) => {
      if (r.ok) this.dropDeleted(r.deletedQueues);
    });
  }

  private createOwn(record: QueueRecord): QueueBackend {
    const { config, dlx, dlrk } = this.configOf(record);
    return this.create(record, config, dlx, dlrk);
  }

  private localQueue(record: QueueRecord, config: QueueConfig, dlx: string | null, dlrk: string | null): LocalQueue {
    return new LocalQueue({
      name: record.name, config, clock: this.clock, deadLetterExchange: dlx, deadLetterRoutingKey: dlrk,
      onDeadLetter: this.deadLetterSink(record.vhost), fieldValues: wireFieldValues,
    });
  }

  private create(record: QueueRecord, config: QueueConfig, dlx: string | null, dlrk: string | null): QueueBackend {
    const common = {
      name: record.name, config, clock: this.clock, deadLetterExchange: dlx, deadLetterRoutingKey: dlrk,
      onDeadLetter: this.deadLetterSink(record.vhost), fieldValues: wireFieldValues,
    };
    const host = this.groupHost;
    if (host === null || !isReplicated(record)) return this.localQueue(record, config, dlx, dlrk);
    const members = record.replicas.length > 0 ? record.replicas : [host.nodeId];
    if (!members.includes(host.nodeId)) {
      // Forwarding to a queue led elsewhere comes with mesh routing; until then it is served here.
      this.logger.warn('replicated queue has no replica on this node; serving it locally', { vhost: record.vhost, queue: record.name });
      return new LocalQueue(common);
    }
    const base = setupOf(queueArgSettings(record));
    const q = new ReplicatedQueue({
      ...common, config: base.config, deadLetterExchange: base.dlx, deadLetterRoutingKey: base.dlrk,
      groupId: queueGroupId(record.vhost, record.name), host, members, node: host.nodeId, incarnation,
    });
    q.reconfigure(config, dlx, dlrk, this.metadataIndex());
    return q;
  }

  private onEvent(record: QueueRecord, queue: QueueBackend, event: QueueEvent): void {
    if (event.type === 'consumerCancelled') {
      this.channels.get(event.channel)?.serverCancel(event.consumerTag);
      return;
    }
    if (event.reason !== 'expired') return;
    // The queue's machine is already deleted; for a replicated queue this drops its group and log.
    if (this.queues.get(this.key(record.vhost, record.name)) === queue) this.drop(this.key(record.vhost, record.name));
    this.expire(record);
  }

  /** Metadata deleted these queues: delete their backends (which cancel their consumers). */
  dropDeleted(records: readonly QueueRecord[]): number {
    let messages = 0;
    for (const r of records) messages += this.drop(this.key(r.vhost, r.name));
    if (this.mesh !== null) this.reconcileSoon();
    return messages;
  }

  /**
   * Every queue this node runs, for metrics: its local queues and the replicas of replicated queues
   * hosted here (`leader`: this node leads it now; a queue's counts are reported by its leader).
   */
  *running(): Generator<RunningQueue> {
    for (const [key, q] of this.queues) {
      if (q instanceof LocalQueue) yield { vhost: this.vhostOf(key), name: q.name, queue: q, leader: true };
      else if (q instanceof ReplicatedQueue && !this.replicas.has(key)) yield { vhost: this.vhostOf(key), name: q.name, queue: q, leader: q.leader };
    }
    for (const [key, q] of this.replicas) yield { vhost: this.vhostOf(key), name: q.name, queue: q, leader: q.leader };
  }

  /** Deletes a queue's backend here: its consumers here (and, at its home, everywhere) are cancelled. Answers its ready count. */
  private drop(key: string): number {
    const q = this.queues.get(key);
    if (q === undefined) return 0;
    const vhost = this.vhostOf(key);
    this.queues.delete(key);
    this.shapes.delete(key);
    this.exclusiveConsumer.delete(q);
    const served = this.hosted.get(key);
    if (served !== undefined) {
      this.hosted.delete(key);
      this.mesh?.removeHosted(vhost, q.name, served);
    }
    const messages = q.stats().messagesReady;
    void q.delete().catch((e: unknown) => this.logger.warn('queue delete failed', { vhost, queue: q.name, error: String(e) }));
    return messages;
  }

  /**
   * An auto-delete queue goes when its last consumer does (one just went, here or, for a queue
   * homed here, on another node). Its home node decides: it sees every consumer.
   */
  async deleteIfUnused(vhost: string, queue: QueueBackend): Promise<void> {
    const record = lookupQueue(this.metadata.state, vhost, queue.name);
    if (record === undefined || !record.autoDelete || queue.stats().consumers > 0) return;
    if (this.get(vhost, queue.name) !== queue) return;
    if (this.mesh !== null && record.homeNode !== this.mesh.nodeId) return;
    const r = await this.metadata.apply({
      kind: 'deleteQueue', vhost, name: queue.name, ifUnused: false, ifEmpty: false,
      consumerCount: 0, messageCount: queue.stats().messagesReady, connection: null,
    });
    if (r.ok) this.dropDeleted(r.deletedQueues);
  }

  /** Node shutdown: local queues die with the node; replicated ones stop here and keep their log. */
  closeAll(): void {
    for (const [key, served] of this.hosted) this.mesh?.removeHosted(this.vhostOf(key), served.queue.name, served);
    this.hosted.clear();
    for (const q of this.queues.values()) {
      if (q instanceof ReplicatedQueue) q.close();
      else if (!(q instanceof MeshQueue)) q.delete().catch(() => undefined);
    }
    for (const q of this.replicas.values()) q.close();
    this.replicas.clear();
    this.mesh?.close();
    this.queues.clear();
  }
}

interface QueueSetup {
  config: QueueConfig;
  dlx: string | null;
  dlrk: string | null;
}

function setupOf(s: QueueSettings | undefined): QueueSetup {
  const config = s === undefined ? defaultQueueConfig : {
    messageTtlMs: s.messageTtlMs, expiresMs: s.expiresMs, maxLength: s.maxLength, maxLengthBytes: s.maxLengthBytes,
    overflow: s.overflow, deadLetter: s.deadLetter, maxPriority: s.maxPriority,
    singleActiveConsumer: s.singleActiveConsumer, deliveryLimit: s.deliveryLimit, consumerTimeoutMs: s.consumerTimeoutMs,
  };
  return { config, dlx: s?.deadLetterExchange ?? null, dlrk: s?.deadLetterRoutingKey ?? null };
}

/** Every policy of every vhost as one string: compared after each apply, so unchanged policies cost one pass. */
function policySignature(state: MetadataClient['state']): string {
  const parts: unknown[] = [];
  for (const [vhost, v] of state.vhosts) {
    for (const p of v.policies.values()) parts.push([vhost, p.name, p.pattern, p.applyTo, p.priority, p.definition]);
  }
  return JSON.stringify(parts);
}
