// The inter-node transport: a gRPC server and one dialer per peer, streams authenticated with the
// cluster secret, and per-peer queues flushed once per event-loop turn as frames of many items.
//
// Direction: a node sends to a peer on the stream that peer dialed (server -> client) when it has
// one, because only the dialing client can enlarge its HTTP/2 receive window (grpc-js servers keep
// 64 KiB: building-block-costs.md sections 2-3, about 2.2-2.6x throughput). When only one side
// dialed, both directions share that one stream.

import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { assert } from '../lib/assert.js';
import type { NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import type { Lane } from './frame.js';
import { decodeFrame, encodeFrame } from './frame.js';
import { defaultTransportLimits, type TransportLimits } from './limits.js';
import { PeerQueue, type PeerStats } from './peer-queue.js';
import { ProtoDecodeError } from './proto-wire.js';
import { answerIdentify, askIdentity, identifyPath } from './identify.js';
import { acceptInbound, dialPeer, type ClientStream, type ServerStream } from './streams.js';

export interface TlsFiles {
  /** PEM files: this node's certificate and key, and the CA that signs every node's certificate. */
  certFile: string;
  keyFile: string;
  caFile: string;
}

export interface TransportOptions {
  nodeId: NodeId;
  /** Port 0 picks a free port; read it back from `port`. */
  listen: { host: string; port: number };
  secret: string;
  /** Mutual TLS for the cluster port; plaintext (still authenticated) when absent. */
  tls?: TlsFiles;
  logger: Logger;
  limits?: Partial<TransportLimits>;
}

export type PeerState = 'up' | 'down';
export type MessageHandler = (from: NodeId, lane: Lane, payload: Uint8Array) => void;
export type PeerStateHandler = (peer: NodeId, state: PeerState) => void;

/** Internal per-peer record; exported for streams.ts only. */
export interface Peer {
  id: NodeId;
  address: string | undefined;
  /** connect() was called and disconnect() was not: keep dialing. */
  wanted: boolean;
  client: grpc.Client | undefined;
  dialing: ClientStream | undefined;
  outbound: ClientStream | undefined;
  inbound: ServerStream | undefined;
  /** The stream whose 'drain' we wait for before writing more. */
  blockedOn: ClientStream | ServerStream | undefined;
  queue: PeerQueue;
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  up: boolean;
}

export const linkPath = '/espresso.cluster.v1.Cluster/Link';
/** Ids of peers outside the cluster that come and go per call (ctl, a joining node's first call). */
export const transientPeerPrefix = 'ctl-';
const identity = (b: Buffer): Buffer => b;
export const clusterService: grpc.ServiceDefinition = {
  link: {
    path: linkPath, requestStream: true, responseStream: true, originalName: 'Link',
    requestSerialize: identity, requestDeserialize: identity,
    responseSerialize: identity, responseDeserialize: identity,
  },
  identify: {
    path: identifyPath, requestStream: false, responseStream: false, originalName: 'Identify',
    requestSerialize: identity, requestDeserialize: identity,
    responseSerialize: identity, responseDeserialize: identity,
  },
};
const ClusterClient = grpc.makeGenericClientConstructor(clusterService, 'Cluster');

export class Transport {
  readonly nodeId: NodeId;
  readonly limits: TransportLimits;
  readonly logger: Logger;
  readonly secret: string;
  private readonly peerMap = new Map<NodeId, Peer>();
  private readonly messageHandlers: MessageHandler[] = [];
  private readonly stateHandlers: PeerStateHandler[] = [];
  private readonly streamLostHandlers: Array<(peer: NodeId) => void> = [];
  private readonly dirty = new Set<Peer>();
  private flushScheduled = false;
  private closed = false;
  inboundStreams = 0;

  private constructor(
    options: TransportOptions,
    private readonly server: grpc.Server,
    readonly port: number,
    private readonly clientCredentials: grpc.ChannelCredentials,
  ) {
    this.nodeId = options.nodeId;
    this.secret = options.secret;
    this.logger = options.logger;
    this.limits = { ...defaultTransportLimits, ...options.limits };
  }

  /** Binds the cluster port and starts accepting authenticated peers. */
  static async start(options: TransportOptions): Promise<Transport> {
    assert(options.secret.length > 0, 'a cluster secret is required');
    assert(!options.nodeId.includes('\0'), 'node ids cannot contain NUL');
    const limits = { ...defaultTransportLimits, ...options.limits };
    relayGrpcLog(options.logger);
    const server = new grpc.Server(channelOptions(limits));
    const { serverCredentials, clientCredentials } = credentials(options.tls);
    const holder: { t: Transport | undefined } = { t: undefined };
    server.addService(clusterService, {
      link: (call: ServerStream) => {
        if (holder.t === undefined) call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'starting' });
        else acceptInbound(holder.t, call);
      },
      identify: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        if (holder.t === undefined) callback({ code: grpc.status.UNAVAILABLE, details: 'starting' });
        else answerIdentify(holder.t, call, callback);
      },
    });
    const address = `${options.listen.host}:${options.listen.port}`;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, serverCredentials, (err, p) => (err ? reject(err) : resolve(p)));
    });
    const t = new Transport(options, server, port, clientCredentials);
    holder.t = t;
    t.logger.debug('transport listening', { node: options.nodeId, address: `${options.listen.host}:${port}`, tls: options.tls !== undefined });
    return t;
  }

  /** Keeps a stream open to `peerId` at `address` (host:port), redialing with backoff. */
  connect(peerId: NodeId, address: string): void {
    assert(!this.closed, 'transport closed');
    assert(peerId !== this.nodeId, 'a node does not connect to itself');
    const peer = this.peer(peerId);
    if (peer.wanted && peer.address === address) return;
    if (peer.address !== address && peer.client !== undefined) {
      peer.client.close();
      peer.client = undefined;
    }
    peer.address = address;
    peer.wanted = true;
    peer.attempt = 0;
    if (peer.timer !== undefined) clearTimeout(peer.timer);
    peer.timer = undefined;
    if (peer.dialing === undefined && peer.outbound === undefined) dialPeer(this, peer);
  }

  /**
   * The id of the node at `address`, asked with this transport's id and secret (ctl, --join):
   * PermissionDenied for a wrong secret, Unreachable when nothing answers within `timeoutMs`.
   */
  async identify(address: string, timeoutMs: number): Promise<NodeId> {
    const client = this.newClient(address);
    try {
      return await askIdentity(client, address, this.nodeId, this.secret, timeoutMs);
    } finally {
      client.close();
    }
  }

  /** Stops dialing `peerId` and closes our streams with it (the peer may dial us again). */
  disconnect(peerId: NodeId): void {
    const peer = this.peerMap.get(peerId);
    if (peer === undefined) return;
    peer.wanted = false;
    if (peer.timer !== undefined) clearTimeout(peer.timer);
    peer.timer = undefined;
    peer.dialing?.cancel();
    peer.outbound?.cancel();
    peer.inbound?.end();
    peer.client?.close();
    peer.client = undefined;
  }

  /**
   * Queues one item for `peerId`, written at the end of this event-loop turn together with every
   * other item queued for that peer. Returns false (the item is dropped and counted) when the
   * peer has no authenticated stream or its queue is at `peerQueueBytesMax`/`peerQueueItemsMax`.
   * The payload is not copied: do not change it after sending.
   */
  send(peerId: NodeId, lane: Lane, payload: Uint8Array): boolean {
    assert(payload.length <= this.limits.payloadBytesMax, 'payload above payloadBytesMax: chunk it');
    const peer = this.peerMap.get(peerId);
    if (peer === undefined || !peer.up || this.closed) {
      if (peer !== undefined) peer.queue.stats.itemsDropped++;
      return false;
    }
    if (!peer.queue.push(lane, payload)) return false;
    this.markDirty(peer);
    return true;
  }

  onMessage(handler: MessageHandler): void {
    this.messageHandlers.push(handler);
  }

  onPeerState(handler: PeerStateHandler): void {
    this.stateHandlers.push(handler);
  }

  /**
   * `handler(peer)` runs when an authenticated stream with `peer` ends or is replaced, even if
   * another stream keeps the peer up: items written to it may not have arrived, so a caller
   * waiting for an answer to one of them should not wait for a timeout.
   */
  onStreamLost(handler: (peer: NodeId) => void): void {
    this.streamLostHandlers.push(handler);
  }

  /** Called by the stream code when a peer's authenticated stream ended or was replaced. */
  streamLost(peer: Peer): void {
    for (const h of this.streamLostHandlers) h(peer.id);
  }

  isUp(peerId: NodeId): boolean {
    return this.peerMap.get(peerId)?.up ?? false;
  }

  /** The host:port a peer's authenticated inbound stream comes from, for audit lines. */
  remoteAddressOf(peerId: NodeId): string | undefined {
    return this.peerMap.get(peerId)?.inbound?.getPeer();
  }

  /** Counters per peer (a snapshot copy). */
  stats(): Map<NodeId, PeerStats & { up: boolean; queuedItems: number; queuedBytes: number }> {
    const out = new Map<NodeId, PeerStats & { up: boolean; queuedItems: number; queuedBytes: number }>();
    for (const p of this.peerMap.values()) {
      out.set(p.id, { ...p.queue.stats, up: p.up, queuedItems: p.queue.length, queuedBytes: p.queue.queuedBytes });
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.peerMap.keys()]) this.disconnect(id);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.server.forceShutdown(); resolve(); }, 1_000);
      this.server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
  }

  // ---- used by streams.ts ----

  get isClosed(): boolean {
    return this.closed;
  }

  newClient(address: string): grpc.Client {
    return new ClusterClient(address, this.clientCredentials, {
      ...channelOptions(this.limits),
      'grpc-node.flow_control_window': this.limits.flowControlWindowBytes,
      'grpc.initial_reconnect_backoff_ms': this.limits.reconnectDelayMsMin,
      'grpc.max_reconnect_backoff_ms': this.limits.reconnectDelayMsMax,
    });
  }

  peer(id: NodeId): Peer {
    let p = this.peerMap.get(id);
    if (p === undefined) {
      p = {
        id, address: undefined, wanted: false, client: undefined, dialing: undefined,
        outbound: undefined, inbound: undefined, blockedOn: undefined,
        queue: new PeerQueue(this.limits), attempt: 0, timer: undefined, up: false,
      };
      this.peerMap.set(id, p);
    }
    return p;
  }

  /** Recomputes up/down after a stream came or went, and tells the listeners. */
  refresh(peer: Peer): void {
    const up = peer.inbound !== undefined || peer.outbound !== undefined;
    if (up === peer.up) return;
    peer.up = up;
    if (!up) peer.queue.clear();
    // Tools outside the cluster (ctl) come and go with every call: at debug.
    const transient = peer.id.startsWith(transientPeerPrefix);
    (transient ? this.logger.debug : this.logger.info).call(this.logger, up ? 'peer up' : 'peer down', { peer: peer.id });
    for (const h of this.stateHandlers) h(peer.id, up ? 'up' : 'down');
    if (up) this.markDirty(peer);
  }

  /** Schedules the next dial after a failure: exponential, capped, jittered. */
  scheduleRedial(peer: Peer): void {
    if (!peer.wanted || this.closed || peer.timer !== undefined) return;
    if (peer.dialing !== undefined || peer.outbound !== undefined) return;
    const delayMs = redialDelayMs(peer.attempt, this.limits, Math.random());
    peer.attempt++;
    peer.timer = setTimeout(() => {
      peer.timer = undefined;
      if (peer.wanted && !this.closed) dialPeer(this, peer);
    }, delayMs);
  }

  /** Hands a received frame's items to the listeners. A malformed frame ends the stream. */
  receive(peer: Peer, buf: Buffer, stream: ClientStream | ServerStream): void {
    let frame;
    try {
      frame = decodeFrame(buf);
    } catch (e) {
      if (!(e instanceof ProtoDecodeError)) throw e;
      this.logger.warn('malformed frame from peer; closing the stream', { peer: peer.id, error: e.message });
      if ('cancel' in stream) stream.cancel();
      else stream.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: e.message });
      return;
    }
    const s = peer.queue.stats;
    s.framesReceived++;
    s.bytesReceived += buf.length;
    s.itemsReceived += frame.items.length;
    if (frame.unknownLaneItems > 0) this.logger.debug('skipped items of lanes this version does not know (a newer peer)', { peer: peer.id, items: frame.unknownLaneItems });
    for (const item of frame.items) {
      for (const h of this.messageHandlers) h(peer.id, item.lane, item.payload);
    }
  }

  markDirty(peer: Peer): void {
    if (peer.queue.length === 0) return;
    this.dirty.add(peer);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Once per turn: every dirty peer's queue leaves as frames on its preferred stream. */
  private flush(): void {
    this.flushScheduled = false;
    const peers = [...this.dirty];
    this.dirty.clear();
    for (const peer of peers) this.flushPeer(peer);
  }

  private flushPeer(peer: Peer): void {
    const stream = peer.inbound ?? peer.outbound;
    if (stream === undefined || peer.blockedOn === stream) return;
    const s = peer.queue.stats;
    while (peer.queue.length > 0) {
      const items = peer.queue.takeFrame();
      const buf = encodeFrame(items);
      s.framesSent++;
      s.itemsSent += items.length;
      s.bytesSent += buf.length;
      if (!stream.write(buf)) {
        peer.blockedOn = stream;
        stream.once('drain', () => {
          if (peer.blockedOn === stream) peer.blockedOn = undefined;
          this.markDirty(peer);
        });
        return;
      }
    }
  }
}

/**
 * grpc-js writes its own error lines to stderr (a failed bind prints "E No address added out of
 * total 1 resolved" before our own error says which port is taken): they go to our log instead,
 * as JSON lines, that one at debug since the bind's caller reports it. Process-wide: the logger of
 * the last transport started.
 */
function relayGrpcLog(logger: Logger): void {
  const line = (args: unknown[]): string => args.map((a) => (typeof a === 'string' ? a : String(a))).join(' ');
  grpc.setLogger({
    error: (...args: unknown[]) => {
      const message = line(args);
      if (/No address added out of total/.test(message)) logger.debug('grpc', { message });
      else logger.warn('grpc', { message });
    },
    info: (...args: unknown[]) => logger.debug('grpc', { message: line(args) }),
    debug: (...args: unknown[]) => logger.debug('grpc', { message: line(args) }),
  } as unknown as Partial<Console>);
}

/**
 * Delay before redial attempt `attempt` (0-based): doubling from reconnectDelayMsMin, capped at
 * reconnectDelayMsMax, minus a random share (up to reconnectJitter) so peers that lost each other
 * at once do not redial in lockstep. `unit` is a random number in [0, 1).
 */
export function redialDelayMs(attempt: number, limits: TransportLimits, unit: number): number {
  const base = Math.min(limits.reconnectDelayMsMax, limits.reconnectDelayMsMin * 2 ** Math.min(attempt, 30));
  return Math.round(base * (1 - limits.reconnectJitter * unit));
}

function channelOptions(limits: TransportLimits): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': limits.payloadBytesMax + limits.frameBytesMax + 65_536,
    'grpc.max_send_message_length': limits.payloadBytesMax + limits.frameBytesMax + 65_536,
    'grpc.keepalive_time_ms': limits.keepaliveMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
  };
}

function credentials(tls: TlsFiles | undefined): {
  serverCredentials: grpc.ServerCredentials; clientCredentials: grpc.ChannelCredentials;
} {
  if (tls === undefined) {
    return { serverCredentials: grpc.ServerCredentials.createInsecure(), clientCredentials: grpc.credentials.createInsecure() };
  }
  const ca = readFileSync(tls.caFile);
  const cert = readFileSync(tls.certFile);
  const key = readFileSync(tls.keyFile);
  return {
    serverCredentials: grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true),
    clientCredentials: grpc.credentials.createSsl(ca, key, cert),
  };
}
