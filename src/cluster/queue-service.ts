// Mesh routing of replicated queues on one node: the replicas hosted here, the consumers connected
// here (their sinks), the rpc handlers a queue's leader serves for other nodes, and the retry loop
// that takes a call to whichever node leads the queue now.
//
// A call from node X for a queue led by node L: X's MeshQueue -> route() -> rpc 'q.call' to L ->
// L's ReplicatedQueue proposes it -> committed on a majority and applied on L -> answer. Deliveries:
// L's queue resolves each holder's consumer (resolveFor): a sink here, or an rpc notify 'q.deliver'
// over Lane.delivery to the holder's node, which hands it to the sink of (queue, channel, tag).
// Consumers of a node that went away: a sweep on every leader downs the holders of nodes the
// transport has reported down for nodeDownGraceMs, and of incarnations other than the one a node
// announced in its 'q.hello' (it restarted). Their messages return redelivered.
//
// Non-replicated queues (exclusive, auto-delete, transient) live on their home node only. Other
// nodes reach them the same way: their MeshQueue's calls go to the home node, which runs them on
// the HostedQueue the broker gave it; deliveries and cancels come back as 'q.deliver' and
// 'q.cancelled', and the same sweep downs holders of gone nodes and incarnations.

import { OperatingError, OperatingErrorCode, isOperatingError } from '../lib/errors.js';
import type { GroupId, NodeId } from '../lib/ids.js';
import type { GroupStatus } from '../raft/index.js';
import { mergeTrace, stamp, Stage, type MessageTrace } from '../lib/trace.js';
import { traceNowMs } from './trace-clock.js';
import { serveListing, serveRebalance } from './queue-listing.js';
import { serveReadiness } from './node-readiness.js';
import type { Logger } from '../lib/log.js';
import type { DeliverySink } from '../broker/queue-backend.js';
import type { GroupHost } from './group-host.js';
import { defaultMeshLimits, type MeshLimits } from './mesh-limits.js';
import { plainNode, type RemoteConsumer, type ReplicatedQueue } from './replicated-queue.js';
import type { LogCommand } from './replicated-queue-codec.js';
import type { ClusterRpc } from './rpc.js';
import {
  decodeAnswer, decodeCall, decodeCancel, decodeDelivery, decodeHello, encodeAnswer, encodeCall, encodeCancel,
  encodeDelivery, encodeHello, meshMethods, type CallAnswer, type CallResult, type MeshCancel, type MeshDelivery, type QueueCall,
} from './queue-wire.js';

export interface QueueMeshOptions {
  readonly host: GroupHost;
  readonly rpc: ClusterRpc;
  /** This process's incarnation (the same string the node's replicated queues are given). */
  readonly incarnation: string;
  readonly logger: Logger;
  readonly limits?: Partial<MeshLimits>;
}

/**
 * A non-replicated queue on its home node, as the mesh serves it to channels of other nodes (the
 * broker's local queue implements it). Their owners carry their node; holders of a node that went
 * away or restarted are downed through holderNodes/downStale, as a replica's are.
 */
export interface HostedQueue {
  /** Runs one command of a channel on `caller.node` (never this node: its channels use the queue itself). */
  run(command: ForwardedCommand, caller: HostedCaller, trace?: MessageTrace): Promise<CallResult>;
  stats(): CallAnswer['stats'];
  /** Plain ids of the other nodes that hold consumers or unacked gets here. */
  holderNodes(): Set<string>;
  /** Downs the holders of `node`'s incarnations other than `keep` (null: all); answers the consumers it ended. */
  downStale(node: string, keep: string | null): Promise<Array<{ holderNode: string; channel: string; tag: string }>>;
}

/** The node a hosted queue's command came from, and where its consumers' deliveries go. */
export interface HostedCaller {
  readonly node: NodeId;
  readonly incarnation: string;
  consumer(channel: string, tag: string): RemoteConsumer;
}

/** A consumer connected to this node. */
export interface MeshSink {
  readonly sink: DeliverySink;
  cancelled(reason: 'timeout' | 'deleted' | 'limit'): void;
}

export type ForwardedCommand = Exclude<LogCommand, { type: 'leaderStart' } | { type: 'tick' }>;

/**
 * An enqueue being routed: where its current attempt went (undefined between attempts) and how to
 * give up on that attempt. Enqueues are idempotent (they carry their caller's identity), so an
 * attempt still waiting on an old leader can be abandoned and sent again to the new one.
 */
interface EnqueueFlight {
  target: NodeId | undefined;
  abort: (e: OperatingError) => void;
  readonly done: Promise<void>;
}

/** Room left in a transport payload for the rpc envelope around a forwarded call. */
const forwardEnvelopeBytesMax = 4096;
const queueKey = (vhost: string, name: string): string => `${vhost}\u0000${name}`;
const sinkKey = (vhost: string, name: string, channel: string, tag: string): string => `${vhost}\u0000${name}\u0000${channel}\u0000${tag}`;

export class QueueMesh {
  readonly nodeId: NodeId;
  readonly incarnation: string;
  readonly limits: MeshLimits;
  private readonly replicas = new Map<string, ReplicatedQueue>();
  /** Non-replicated queues whose home is this node, served to other nodes. */
  private readonly hosted = new Map<string, HostedQueue>();
  /** Finds (creating on first use) a hosted queue not in `hosted`; undefined: none here. */
  private hostedMiss: (vhost: string, name: string) => HostedQueue | undefined = () => undefined;
  private readonly sinks = new Map<string, MeshSink>();
  /** Last leader a replica named for a queue this node does not host. */
  private readonly hints = new Map<string, NodeId>();
  /** Queues with calls being retried, and the calls made meanwhile, held in call order. */
  private readonly gates = new Map<string, { retrying: number; queue: Array<() => void> }>();
  /** Enqueues being routed, per queue, in call order. */
  private readonly flights = new Map<string, Set<EnqueueFlight>>();
  private readonly incarnations = new Map<string, string>();
  private readonly downSince = new Map<string, number>();
  private readonly sweeping = new Set<string>();
  /**
   * Consumers ended here because their node was gone, by node: if that same incarnation comes back
   * (it was cut off, not dead), they get basic.cancel instead of waiting for deliveries for good.
   */
  private readonly goneConsumers = new Map<string, Array<{ vhost: string; name: string; holderNode: string; channel: string; tag: string }>>();
  private readonly sweepTimer: ReturnType<typeof setInterval>;
  private closed = false;

  constructor(private readonly o: QueueMeshOptions) {
    this.nodeId = o.host.nodeId;
    this.incarnation = o.incarnation;
    this.limits = { ...defaultMeshLimits, ...o.limits };
    o.rpc.handle(meshMethods.call, (from, payload) => this.serve(from, payload));
    o.rpc.onNotify(meshMethods.deliver, (from, payload) => {
      const d = this.decoded(from, 'deliver', () => decodeDelivery(payload));
      if (d !== undefined) this.onDeliver(d);
    });
    o.rpc.onNotify(meshMethods.cancelled, (from, payload) => {
      const c = this.decoded(from, 'cancelled', () => decodeCancel(payload));
      if (c !== undefined) this.onCancelled(c);
    });
    o.rpc.onNotify(meshMethods.hello, (from, payload) => {
      const incarnation = this.decoded(from, 'hello', () => decodeHello(payload));
      if (incarnation !== undefined) this.onHello(from, incarnation);
    });
    const transport = o.host.transport;
    transport.onPeerState((peer, state) => {
      if (state === 'up') {
        this.downSince.delete(peer);
        o.rpc.notify(peer, meshMethods.hello, encodeHello(this.incarnation));
      } else if (!this.downSince.has(peer)) {
        this.downSince.set(peer, Date.now());
      }
    });
    for (const [peer, s] of transport.stats()) if (s.up) o.rpc.notify(peer, meshMethods.hello, encodeHello(this.incarnation));
    serveListing(this, o.rpc, transport);
    serveRebalance(this, o.rpc, transport);
    serveReadiness(this, o.rpc);
    this.sweepTimer = setInterval(() => this.sweep(), this.limits.sweepIntervalMs);
    this.sweepTimer.unref?.();
  }

  /** A notification a peer encoded wrong (a bug on one side) is logged and dropped, never thrown into the transport. */
  private decoded<T>(from: NodeId, what: string, decode: () => T): T | undefined {
    try {
      return decode();
    } catch (e) {
      this.o.logger.warn('dropped a malformed mesh notification', { from, what, error: e instanceof Error ? e.message : String(e) });
      return undefined;
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweepTimer);
  }

  // ---- replicas and sinks of this node ----

  addReplica(vhost: string, name: string, queue: ReplicatedQueue): void {
    this.replicas.set(queueKey(vhost, name), queue);
  }

  removeReplica(vhost: string, name: string, queue: ReplicatedQueue): void {
    if (this.replicas.get(queueKey(vhost, name)) === queue) this.replicas.delete(queueKey(vhost, name));
  }

  replica(vhost: string, name: string): ReplicatedQueue | undefined {
    return this.replicas.get(queueKey(vhost, name));
  }

  /** The node's group host and rpc, for changes of queues' replica sets (queue-membership.ts). */
  get host(): GroupHost {
    return this.o.host;
  }

  get rpc(): ClusterRpc {
    return this.o.rpc;
  }

  groupStatus(group: GroupId): GroupStatus | null {
    return this.o.host.status(group);
  }

  transferLeadership(group: GroupId, to: NodeId): void {
    this.o.host.transferLeadership(group, to);
  }

  /** Every replica hosted here, for list-queues. */
  replicaList(): Array<{ vhost: string; name: string; queue: ReplicatedQueue }> {
    return [...this.replicas].map(([k, queue]) => {
      const at = k.indexOf('\u0000');
      return { vhost: k.slice(0, at), name: k.slice(at + 1), queue };
    });
  }

  addHosted(vhost: string, name: string, queue: HostedQueue): void {
    this.hosted.set(queueKey(vhost, name), queue);
  }

  removeHosted(vhost: string, name: string, queue: HostedQueue): void {
    const key = queueKey(vhost, name);
    if (this.hosted.get(key) === queue) this.hosted.delete(key);
  }

  /** How a call for a queue homed here that is not hosted yet (the node restarted) finds it. */
  onHostedMiss(find: (vhost: string, name: string) => HostedQueue | undefined): void {
    this.hostedMiss = find;
  }

  registerSink(vhost: string, name: string, channel: string, tag: string, sink: MeshSink): void {
    this.sinks.set(sinkKey(vhost, name, channel, tag), sink);
  }

  unregisterSink(vhost: string, name: string, channel: string, tag: string): void {
    this.sinks.delete(sinkKey(vhost, name, channel, tag));
  }

  /** For a ReplicatedQueue's resolveConsumer: where the holder (node#incarnation, channel, tag) consumes. */
  resolverFor(vhost: string, name: string): (holderNode: string, channel: string, tag: string) => RemoteConsumer | undefined {
    return (holderNode, channel, tag) => {
      const node = plainNode(holderNode);
      const incarnation = holderNode.slice(node.length + 1);
      if (node === this.nodeId) return incarnation === this.incarnation ? this.sinks.get(sinkKey(vhost, name, channel, tag)) : undefined;
      return this.remoteConsumer(vhost, name, node as NodeId, incarnation, channel, tag);
    };
  }

  /** A consumer on another node: deliveries and its server-side cancel go there as notifications. */
  private remoteConsumer(vhost: string, name: string, peer: NodeId, incarnation: string, channel: string, tag: string): RemoteConsumer {
    return {
      sink: (d) => {
        this.o.rpc.notify(peer, meshMethods.deliver, encodeDelivery({
          vhost, queue: name, incarnation, channel, consumerTag: d.consumerTag, msgId: d.msgId,
          redelivered: d.redelivered, deliveryCount: d.deliveryCount, message: d.message, trace: d.trace,
        }));
      },
      cancelled: (reason) => {
        this.o.rpc.notify(peer, meshMethods.cancelled, encodeCancel({ vhost, queue: name, incarnation, channel, consumerTag: tag, reason }));
      },
    };
  }

  // ---- routing ----

  /**
   * Runs `command` on the queue's leader, wherever it is: here when this node leads, else over rpc
   * (with no leader known yet it backs off and looks again). NotLeader,
   * Unreachable and Timeout are retried on the leader named or found next until routeTimeoutMs.
   * The first attempt is made synchronously, so calls leave in call order; calls that fail together
   * (the leader moved) are retried together in that order, and calls made while any call of the
   * queue is being retried wait behind them. A call the old leader had already committed before it
   * died is carried out again by the retry (at least once), except an enqueue: it carries its
   * caller's identity, so the queue stores it once however often it is retried.
   */
  async route(vhost: string, name: string, replicas: () => readonly NodeId[], command: ForwardedCommand, trace?: MessageTrace): Promise<CallAnswer> {
    const key = queueKey(vhost, name);
    // While earlier calls of this queue are being retried, later ones wait behind them (call order).
    const gate = this.gates.get(key);
    if (gate !== undefined) await new Promise<void>((resolve) => gate.queue.push(resolve));
    const deadline = Date.now() + this.limits.routeTimeoutMs;
    let delayMs = this.limits.retryDelayMsMin;
    // Per call: a hint this call has not tried yet is followed at once (calls failing together
    // then retry together, in their order; a shared "seen" flag made every other one wait).
    let tried: string | undefined;
    let retrying = false;
    const flight = command.type === 'enqueue' ? this.takeOff(key) : undefined;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.attempt(key, vhost, name, replicas, command, attempt, flight, trace);
        } catch (e) {
          if (!isOperatingError(e) || !retryable(e) || this.closed) throw e;
          if (Date.now() + delayMs > deadline) {
            throw new OperatingError(OperatingErrorCode.Unreachable, `queue '${name}' in vhost '${vhost}': no leader reachable within ${this.limits.routeTimeoutMs} ms (${e.message})`);
          }
          if (!retrying) {
            retrying = true;
            const g = this.gates.get(key) ?? { retrying: 0, queue: [] };
            g.retrying++;
            this.gates.set(key, g);
          }
          const hint = e.code === OperatingErrorCode.NotLeader ? e.details['leader'] : undefined;
          if (typeof hint === 'string' && hint !== '' && hint !== tried) {
            tried = hint;
            this.hints.set(key, hint as NodeId);
            continue; // a fresh hint: go there at once
          }
          if (this.hints.get(key) === tried) this.hints.delete(key);
          await this.backoff(key, flight, delayMs);
          delayMs = Math.min(delayMs * 2, this.limits.retryDelayMsMax);
        }
      }
    } finally {
      if (retrying) this.releaseGate(key);
      if (flight !== undefined) this.land(key, flight);
    }
  }

  private takeOff(key: string): EnqueueFlight & { land: () => void } {
    let land = (): void => undefined;
    const done = new Promise<void>((resolve) => { land = resolve; });
    const flight = { target: undefined, abort: () => undefined, done, land };
    const set = this.flights.get(key) ?? new Set<EnqueueFlight>();
    set.add(flight);
    this.flights.set(key, set);
    return flight;
  }

  private land(key: string, flight: EnqueueFlight & { land?: () => void }): void {
    const set = this.flights.get(key);
    set?.delete(flight);
    if (set?.size === 0) this.flights.delete(key);
    flight.land?.();
  }

  /**
   * Publish order across a leader change: enqueues of this queue called earlier that are not on
   * their way to `target` (their attempt still waits on another node, the old leader cut off, or
   * they back off between attempts) are sent to `target` now (an attempt abandoned, a wait cut
   * short), in call order, and this one waits for them; without this, this later call would be
   * committed by the new leader first.
   */
  private overtaken(key: string, flight: EnqueueFlight, target: NodeId): Array<Promise<void>> {
    const earlier: Array<Promise<void>> = [];
    for (const f of this.flights.get(key) ?? []) {
      if (f === flight) break;
      if (f.target === target) continue;
      f.abort(new OperatingError(OperatingErrorCode.NotLeader, `queue call moved to ${target}`, { leader: target }));
      earlier.push(f.done);
    }
    return earlier;
  }

  /** Waits before the next attempt; an enqueue's wait ends early when a later one found the leader (overtaken). */
  private backoff(key: string, flight: EnqueueFlight | undefined, delayMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        if (flight !== undefined) flight.abort = () => undefined;
        resolve();
      }, delayMs);
      if (flight === undefined) return;
      flight.abort = (e) => {
        clearTimeout(timer);
        flight.abort = () => undefined;
        const leader = e.details['leader'];
        if (typeof leader === 'string' && leader !== '') this.hints.set(key, leader as NodeId);
        resolve();
      };
    });
  }

  /** Runs one attempt of an enqueue as `flight`: abandoned if a later enqueue finds a new leader first. */
  private flown(flight: EnqueueFlight | undefined, target: NodeId, send: () => Promise<CallAnswer>): Promise<CallAnswer> {
    if (flight === undefined) return send();
    flight.target = target;
    const sent = send();
    sent.catch(() => undefined);
    const abandoned = new Promise<never>((_, reject) => { flight.abort = reject; });
    return Promise.race([sent, abandoned]).finally(() => {
      flight.target = undefined;
      flight.abort = () => undefined;
    });
  }

  /** The last retrying call of a queue is done: the calls held behind it go, in their order. */
  private releaseGate(key: string): void {
    const g = this.gates.get(key);
    if (g === undefined) return;
    g.retrying--;
    if (g.retrying > 0) return;
    this.gates.delete(key);
    for (const go of g.queue) go();
  }

  private attempt(
    key: string, vhost: string, name: string, replicas: () => readonly NodeId[], command: ForwardedCommand, attempt: number,
    flight?: EnqueueFlight, trace?: MessageTrace,
  ): Promise<CallAnswer> {
    const local = this.replicas.get(key);
    const leader = local !== undefined ? this.o.host.leader(local.groupId) : null;
    if (local !== undefined && leader === this.nodeId) {
      const earlier = flight === undefined ? [] : this.overtaken(key, flight, this.nodeId);
      if (earlier.length > 0) return Promise.all(earlier).then(() => this.attempt(key, vhost, name, replicas, command, attempt, flight, trace));
      return this.flown(flight, this.nodeId, () => this.runLocal(local, command, this.incarnation, trace).then((result) => ({ result, stats: local.stats() })));
    }
    if (local !== undefined && leader === null) {
      // No leader known yet (an election, or no majority): back off and look again, within the route's bound.
      return Promise.reject(new OperatingError(OperatingErrorCode.NotLeader, `queue '${name}': no leader known yet`, { leader: '' }));
    }
    const all = replicas();
    if (all.length === 0) {
      // Metadata no longer has the queue: no leader will ever take this call.
      return Promise.reject(new OperatingError(OperatingErrorCode.Closed, `queue '${name}' in vhost '${vhost}' was deleted`));
    }
    const members = all.filter((n) => n !== this.nodeId);
    const target = leader ?? this.hints.get(key) ?? members[attempt % Math.max(1, members.length)];
    if (target === undefined || target === this.nodeId) {
      return Promise.reject(new OperatingError(OperatingErrorCode.NotLeader, `queue '${name}': no replica known`, { leader: '' }));
    }
    if (trace !== undefined) stamp(trace, Stage.forwarded, traceNowMs());
    const payload = encodeCall({ vhost, queue: name, incarnation: this.incarnation, command, trace });
    const max = this.o.host.transport.limits.payloadBytesMax - forwardEnvelopeBytesMax;
    if (payload.length > max) {
      // Not retryable: no leader change makes it fit. (Deliveries of such bodies to other nodes would be dropped too.)
      return Promise.reject(new OperatingError(OperatingErrorCode.Overloaded, `queue '${name}': a ${payload.length}-byte call is above the ${max}-byte limit between nodes`));
    }
    const earlier = flight === undefined ? [] : this.overtaken(key, flight, target);
    if (earlier.length > 0) return Promise.all(earlier).then(() => this.attempt(key, vhost, name, replicas, command, attempt, flight, trace));
    return this.flown(flight, target, () => {
      const answered = this.o.rpc.call(target, meshMethods.call, payload, this.limits.callTimeoutMs).then(decodeAnswer);
      if (trace === undefined) return answered;
      return answered.then((a) => {
        // The leader's stamps (proposed ... applied) come back on the answer.
        if (a.trace !== undefined) mergeTrace(trace, a.trace);
        return a;
      });
    });
  }

  /** Leader (or home) side of 'q.call'. */
  private async serve(from: NodeId, payload: Uint8Array): Promise<Uint8Array> {
    const call: QueueCall = decodeCall(payload);
    this.sawIncarnation(from, call.incarnation);
    const key = queueKey(call.vhost, call.queue);
    const local = this.replicas.get(key);
    const hosted = local === undefined ? this.hosted.get(key) ?? this.hostedMiss(call.vhost, call.queue) : undefined;
    if (hosted !== undefined) return this.serveHosted(from, call, hosted);
    if (local === undefined || this.o.host.leader(local.groupId) !== this.nodeId) {
      const leader = local === undefined ? '' : this.o.host.leader(local.groupId) ?? '';
      throw new OperatingError(OperatingErrorCode.NotLeader, `queue '${call.queue}' is not led by ${this.nodeId}`, { leader });
    }
    if (call.command.type === 'leaderStart' || call.command.type === 'tick') {
      throw new OperatingError(OperatingErrorCode.BadConfig, `queue command ${call.command.type} is not forwarded`);
    }
    const result = await this.runLocal(local, call.command, call.incarnation, call.trace);
    return encodeAnswer({ result, stats: local.stats(), trace: call.trace });
  }

  /** Home side of 'q.call' for a non-replicated queue. */
  private async serveHosted(from: NodeId, call: QueueCall, q: HostedQueue): Promise<Uint8Array> {
    const c = call.command;
    if (c.type === 'leaderStart' || c.type === 'tick') throw new OperatingError(OperatingErrorCode.BadConfig, `queue command ${c.type} is not forwarded`);
    const caller: HostedCaller = {
      node: from, incarnation: call.incarnation,
      consumer: (channel, tag) => this.remoteConsumer(call.vhost, call.queue, from, call.incarnation, channel, tag),
    };
    const result = await q.run(c, caller, call.trace);
    return encodeAnswer({ result, stats: q.stats(), trace: call.trace });
  }

  /** One command on a replica here; consumers are always reached through resolveConsumer. */
  private async runLocal(q: ReplicatedQueue, c: ForwardedCommand, incarnation: string, trace?: MessageTrace): Promise<CallResult> {
    switch (c.type) {
      // The caller's identity goes with it: a retry of an enqueue applied before is not stored again.
      case 'enqueue': return { kind: 'enqueue', outcome: await q.enqueue(c.message, trace, c.dedup) };
      case 'register':
        await q.consume({ owner: c.owner, consumerTag: c.tag, noAck: c.noAck, creditMode: c.creditMode, prefetch: c.prefetch, priority: c.priority }, null, incarnation);
        return { kind: 'void' };
      case 'cancel': await q.cancel(c.channel, c.tag); return { kind: 'void' };
      case 'credit': await q.credit(c.channel, c.tag, c.credit, c.mode); return { kind: 'void' };
      case 'settle': await q.settle(c.channel, c.msgIds); return { kind: 'void' };
      case 'return': await q.requeue(c.channel, c.msgIds); return { kind: 'void' };
      case 'discard': await q.discard(c.channel, c.msgIds); return { kind: 'void' };
      case 'down': await q.down(c.scope, c.id, incarnation); return { kind: 'void' };
      case 'get': return { kind: 'get', response: await q.get(c.owner, c.noAck, incarnation) };
      case 'purge': return { kind: 'count', count: await q.purge() };
      case 'delete': return { kind: 'count', count: await q.delete() };
      case 'touch': q.touch(); return { kind: 'void' };
    }
  }

  // ---- consumer side ----

  private onDeliver(d: MeshDelivery): void {
    // For an earlier life of this node, or a consumer gone already: its holder is downed, the message returns.
    if (d.incarnation !== this.incarnation) return;
    const s = this.sinks.get(sinkKey(d.vhost, d.queue, d.channel, d.consumerTag));
    s?.sink({ consumerTag: d.consumerTag, msgId: d.msgId, message: d.message, redelivered: d.redelivered, deliveryCount: d.deliveryCount, trace: d.trace });
  }

  private onCancelled(c: MeshCancel): void {
    if (c.incarnation !== this.incarnation) return;
    const key = sinkKey(c.vhost, c.queue, c.channel, c.consumerTag);
    const s = this.sinks.get(key);
    this.sinks.delete(key);
    s?.cancelled(c.reason);
  }

  // ---- consumers of nodes that went away ----

  private onHello(node: NodeId, incarnation: string): void {
    this.sawIncarnation(node, incarnation);
    const gone = this.goneConsumers.get(node);
    if (gone === undefined) return;
    this.goneConsumers.delete(node);
    for (const g of gone) {
      if (g.holderNode !== `${node}#${incarnation}`) continue; // a new life: its consumers are gone with the old one
      this.o.rpc.notify(node, meshMethods.cancelled, encodeCancel({
        vhost: g.vhost, queue: g.name, incarnation, channel: g.channel, consumerTag: g.tag, reason: 'timeout',
      }));
    }
  }

  private rememberGone(node: string, vhost: string, name: string, ended: ReadonlyArray<{ holderNode: string; channel: string; tag: string }>): void {
    if (ended.length === 0) return;
    const list = this.goneConsumers.get(node) ?? [];
    for (const e of ended) if (list.length < this.limits.goneConsumersPerNodeMax) list.push({ vhost, name, ...e });
    this.goneConsumers.set(node, list);
  }

  private sawIncarnation(node: NodeId, incarnation: string): void {
    if (this.incarnations.get(node) === incarnation) return;
    this.incarnations.set(node, incarnation);
    this.sweep();
  }

  /** On every queue led or hosted here: down holders of gone nodes and of incarnations a node left behind. */
  private sweep(): void {
    if (this.closed) return;
    const now = Date.now();
    const transport = this.o.host.transport;
    const queues: Array<[string, Pick<HostedQueue, 'holderNodes' | 'downStale'>]> = [...this.hosted];
    for (const [key, q] of this.replicas) if (q.ready) queues.push([key, q]);
    for (const [key, q] of queues) {
      for (const node of q.holderNodes()) {
        if (node === this.nodeId) continue; // leaderStart downs this node's earlier incarnations
        let keep: string | null | undefined;
        if (!transport.isUp(node as NodeId)) {
          const since = this.downSince.get(node) ?? now;
          if (!this.downSince.has(node)) this.downSince.set(node, now);
          if (now - since >= this.limits.nodeDownGraceMs) keep = null;
        }
        if (keep === undefined) keep = this.incarnations.get(node);
        if (keep === undefined) continue; // up, and its incarnation not known yet: its hello comes
        const job = `${key}\u0000${node}`;
        if (this.sweeping.has(job)) continue;
        this.sweeping.add(job);
        const gone = keep === null;
        const at = key.indexOf('\u0000');
        q.downStale(node, keep)
          .then((ended) => {
            if (gone) this.rememberGone(node, key.slice(0, at), key.slice(at + 1), ended);
          })
          .catch((e: unknown) => this.o.logger.debug('down of a gone node deferred', { node, error: String(e) }))
          .finally(() => this.sweeping.delete(job));
      }
    }
  }
}

/**
 * Worth another try on the leader found next: not the leader, unreachable, no answer, or a group
 * refusing for now (a leadership transfer in progress, a backed-up group: details.group is set).
 */
function retryable(e: OperatingError): boolean {
  const c = e.code;
  if (c === OperatingErrorCode.NotLeader || c === OperatingErrorCode.Unreachable || c === OperatingErrorCode.Timeout) return true;
  return c === OperatingErrorCode.Overloaded && e.details['group'] !== undefined;
}
