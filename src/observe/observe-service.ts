// The ctl side of observability, served by every node over the authenticated cluster rpc (the path
// every ctl command takes, with the cluster secret): CPU and heap profiles of any node (the node
// asked forwards to the one named, which keeps the gzipped result until ctl has fetched it in
// chunks), the stage breakdown of the whole cluster over a window, and the per-node figures of
// `espresso ctl top`.

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import type { ClusterRpc } from '../cluster/rpc.js';
import { decodeJson, encodeJson } from '../cluster/metadata-entries.js';
import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import type { NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import { Lane, type Transport } from '../transport/index.js';
import type { ObservedNode } from './node-metrics.js';
import { cpuProfile, heapSnapshotGzip, profileSecondsMax, summarizeCpuProfile, type CpuSummary } from './profiler.js';
import { scanQueues } from './queue-metrics.js';
import type { StageRecord } from './stage-recorder.js';
import { summarize, type StageBreakdown } from './stage-summary.js';

export const ObserveMethod = {
  /** ctl: take a profile on a node (this one or the one named); answers a ProfileTicket. */
  profile: 'ctl.profile',
  /** ctl: a chunk of a profile taken (forwarded to the node holding it). */
  profileFetch: 'ctl.profile-fetch',
  /** ctl: the stage breakdown of every node's traced messages over the next `seconds`. */
  stages: 'ctl.profile-stages',
  /** ctl: every node's figures for `espresso ctl top`. */
  top: 'ctl.top',
  // Between nodes:
  profileHere: 'observe.profile',
  fetchHere: 'observe.profile-fetch',
  stageRecords: 'observe.stage-records',
  topHere: 'observe.top',
} as const;

export type ProfileKind = 'cpu' | 'heap';

export interface ProfileRequest {
  readonly kind: ProfileKind;
  readonly seconds: number;
  /** The node to profile; absent: the node asked. */
  readonly node?: string;
  /** false: answer the summary only, keep no file to fetch (the bench harness). */
  readonly keep?: boolean;
}

export interface ProfileTicket {
  readonly node: string;
  readonly id: string;
  readonly kind: ProfileKind;
  /** Size of the gzipped profile to fetch (0 when not kept). */
  readonly bytes: number;
  /** CPU profiles: the top functions and GC share. */
  readonly summary: CpuSummary | null;
}

export interface FetchRequest {
  readonly node: string;
  readonly id: string;
  readonly offset: number;
}

export interface StagesRequest {
  readonly seconds: number;
  readonly queue?: string;
}

/** One node's figures for ctl top (rates come from two of these). */
export interface NodeTop {
  readonly node: string;
  readonly atMs: number;
  readonly received: number;
  readonly confirmed: number;
  readonly delivered: number;
  readonly acknowledged: number;
  readonly connections: number;
  readonly channels: number;
  readonly consumers: number;
  readonly queues: number;
  readonly ready: number;
  readonly unacked: number;
  readonly groups: number;
  readonly groupsLed: number;
  readonly maxFollowerLag: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  /** Event-loop time since start, busy and idle (ms): top takes the busy share between two answers. */
  readonly eventLoopActiveMs: number;
  readonly eventLoopIdleMs: number;
  /** p99 of the event loop's delay over the last full 10 s window. */
  readonly eventLoopDelayP99Ms: number;
  readonly alarms: readonly string[];
  readonly peers: ReadonlyArray<{ peer: string; up: boolean; rttMs: number | null }>;
  readonly topQueues: ReadonlyArray<{ vhost: string; name: string; ready: number; unacked: number; consumers: number; published: number; maxLag: number }>;
}

export interface ClusterTop {
  readonly answeredBy: string;
  readonly nodes: readonly NodeTop[];
  /** Nodes that did not answer in time (down, or too busy). */
  readonly missing: readonly string[];
}

const chunkBytes = 4 * 1024 * 1024;
const profilesKeptMax = 2;
const profileKeepMs = 10 * 60_000;
const peerCallMs = 5_000;
const topQueuesMax = 10;
const loopDelayWindowMs = 10_000;

interface KeptProfile {
  readonly bytes: Buffer;
  readonly atMs: number;
}

export class ObserveService {
  private readonly kept = new Map<string, KeptProfile>();
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  /** Windows of fixed length, so several ctl tops at once do not reset each other's figure. */
  private readonly loopWindow: ReturnType<typeof setInterval>;
  private loopDelayP99Ms = 0;

  constructor(private readonly node: ObservedNode, private readonly rpc: ClusterRpc, private readonly transport: Transport, private readonly logger: Logger) {
    this.loopDelay.enable();
    this.loopWindow = setInterval(() => {
      const p99 = this.loopDelay.percentile(99) / 1e6;
      this.loopDelayP99Ms = Number.isFinite(p99) ? p99 : 0;
      this.loopDelay.reset();
    }, loopDelayWindowMs);
    this.loopWindow.unref();
    rpc.handle(ObserveMethod.profile, (_from, p) => this.profile(decodeJson<ProfileRequest>(p)).then(encodeJson));
    rpc.handle(ObserveMethod.profileHere, (_from, p) => this.profileHere(decodeJson<ProfileRequest>(p)).then(encodeJson));
    rpc.handle(ObserveMethod.profileFetch, (_from, p) => this.fetch(decodeJson<FetchRequest>(p)));
    rpc.handle(ObserveMethod.fetchHere, (_from, p) => this.fetchHere(decodeJson<FetchRequest>(p)));
    rpc.handle(ObserveMethod.stages, (_from, p) => this.stages(decodeJson<StagesRequest>(p)).then(encodeJson));
    rpc.handle(ObserveMethod.stageRecords, (_from, p) => {
      const r = decodeJson<{ sinceMs: number; queue?: string }>(p);
      return encodeJson(node.stages.recordsSince(r.sinceMs, r.queue));
    });
    rpc.handle(ObserveMethod.top, () => this.clusterTop().then(encodeJson));
    rpc.handle(ObserveMethod.topHere, () => encodeJson(this.nodeTop()));
  }

  stop(): void {
    this.loopDelay.disable();
    clearInterval(this.loopWindow);
  }

  // ---- profiles ----

  private async profile(r: ProfileRequest): Promise<ProfileTicket> {
    const target = r.node ?? this.node.nodeId;
    if (target === this.node.nodeId) return this.profileHere(r);
    if (!this.peers().includes(target as NodeId)) {
      throw new OperatingError(OperatingErrorCode.BadConfig, `no node '${target}' is connected to ${this.node.nodeId} (connected: ${[this.node.nodeId, ...this.peers()].sort().join(', ')})`);
    }
    const waitMs = (r.kind === 'cpu' ? r.seconds * 1000 : 0) + 120_000;
    const here: ProfileRequest = { kind: r.kind, seconds: r.seconds, ...(r.keep === false ? { keep: false } : {}) };
    return decodeJson<ProfileTicket>(await this.call(target, ObserveMethod.profileHere, encodeJson(here), waitMs));
  }

  private async profileHere(r: ProfileRequest): Promise<ProfileTicket> {
    if (r.kind !== 'cpu' && r.kind !== 'heap') throw new OperatingError(OperatingErrorCode.BadConfig, `unknown profile kind '${String(r.kind)}': cpu or heap`);
    if (r.kind === 'cpu' && !(r.seconds > 0 && r.seconds <= profileSecondsMax)) {
      throw new OperatingError(OperatingErrorCode.BadConfig, `--seconds must be 1 to ${profileSecondsMax}, got ${r.seconds}`);
    }
    const startedMs = performance.now();
    let bytes: Buffer;
    let summary: CpuSummary | null = null;
    if (r.kind === 'cpu') {
      const json = await cpuProfile(r.seconds);
      summary = summarizeCpuProfile(json);
      bytes = gzipSync(json, { level: 1 });
    } else {
      bytes = await heapSnapshotGzip();
    }
    const id = r.keep === false ? '' : randomBytes(8).toString('hex');
    if (id !== '') this.keep(id, bytes);
    this.logger.info('profile taken', { kind: r.kind, id, gzippedBytes: bytes.length, tookMs: Math.round(performance.now() - startedMs) });
    return { node: this.node.nodeId, id, kind: r.kind, bytes: id === '' ? 0 : bytes.length, summary };
  }

  /**
   * Takes a profile of `r.node` (this node by default) and brings its gzipped bytes here, in chunks
   * when another node took it: for callers on this node (the HTTP route).
   */
  async takeProfile(r: ProfileRequest): Promise<{ ticket: ProfileTicket; gzipped: Buffer }> {
    const ticket = await this.profile(r);
    const parts: Uint8Array[] = [];
    for (let offset = 0; offset < ticket.bytes;) {
      const chunk = await this.fetch({ node: ticket.node, id: ticket.id, offset });
      if (chunk.length === 0) throw new OperatingError(OperatingErrorCode.Io, `profile ${ticket.id} on ${ticket.node} ended at ${offset} of ${ticket.bytes} bytes`);
      parts.push(chunk);
      offset += chunk.length;
    }
    return { ticket, gzipped: Buffer.concat(parts) };
  }

  private keep(id: string, bytes: Buffer): void {
    const now = Date.now();
    for (const [k, p] of this.kept) if (now - p.atMs > profileKeepMs) this.kept.delete(k);
    while (this.kept.size >= profilesKeptMax) this.kept.delete(this.kept.keys().next().value!);
    this.kept.set(id, { bytes, atMs: now });
  }

  private async fetch(r: FetchRequest): Promise<Uint8Array> {
    if (r.node === this.node.nodeId) return this.fetchHere(r);
    return this.call(r.node, ObserveMethod.fetchHere, encodeJson(r), peerCallMs * 4);
  }

  private fetchHere(r: FetchRequest): Uint8Array {
    const p = this.kept.get(r.id);
    if (p === undefined) throw new OperatingError(OperatingErrorCode.BadConfig, `no profile '${r.id}' kept on node ${this.node.nodeId} (fetched already, or older than ${profileKeepMs / 60_000} minutes)`);
    if (!Number.isSafeInteger(r.offset) || r.offset < 0 || r.offset > p.bytes.length) throw new OperatingError(OperatingErrorCode.BadConfig, `offset ${r.offset} outside the profile`);
    const chunk = p.bytes.subarray(r.offset, Math.min(p.bytes.length, r.offset + chunkBytes));
    // The last chunk hands the profile over: it is not kept longer than needed.
    if (r.offset + chunk.length >= p.bytes.length) this.kept.delete(r.id);
    return chunk;
  }

  // ---- stages ----

  private async stages(r: StagesRequest): Promise<StageBreakdown> {
    if (!(r.seconds >= 0 && r.seconds <= profileSecondsMax)) throw new OperatingError(OperatingErrorCode.BadConfig, `--seconds must be 0 to ${profileSecondsMax}, got ${r.seconds}`);
    const fromMs = Date.now();
    await new Promise((resolve) => setTimeout(resolve, r.seconds * 1000));
    const ask = { sinceMs: fromMs, ...(r.queue !== undefined ? { queue: r.queue } : {}) };
    const remote = await Promise.all(this.peers().map((peer) => this.call(peer, ObserveMethod.stageRecords, encodeJson(ask), peerCallMs)
      .then((b) => decodeJson<StageRecord[]>(b), () => [] as StageRecord[])));
    const records = [...this.node.stages.recordsSince(fromMs, r.queue), ...remote.flat()];
    return summarize(records, r.queue ?? null, fromMs, Date.now());
  }

  // ---- top ----

  private async clusterTop(): Promise<ClusterTop> {
    const peers = this.peers();
    const answers = await Promise.all(peers.map((peer) => this.call(peer, ObserveMethod.topHere, encodeJson({}), peerCallMs)
      .then((b) => decodeJson<NodeTop>(b), () => peer)));
    const nodes = [this.nodeTop(), ...answers.filter((a): a is NodeTop => typeof a !== 'string')].sort((a, b) => (a.node < b.node ? -1 : 1));
    const known = new Set([...peers, ...(this.node.gossip?.members() ?? []).map((m) => m.nodeId)]);
    const missing = [...known].filter((n) => n !== this.node.nodeId && !nodes.some((t) => t.node === n)).sort();
    return { answeredBy: this.node.nodeId, nodes, missing };
  }

  nodeTop(): NodeTop {
    const n = this.node;
    const c = n.context.counters;
    const rows = scanQueues(n, true);
    const elu = performance.eventLoopUtilization();
    const mem = process.memoryUsage();
    const rtt = n.peers.rttMs();
    return {
      node: n.nodeId, atMs: Date.now(),
      received: c.messagesReceived, confirmed: c.messagesConfirmed,
      delivered: c.deliveredConsumeManualAck + c.deliveredConsumeAutoAck + c.deliveredGetManualAck + c.deliveredGetAutoAck,
      acknowledged: c.messagesAcknowledged,
      connections: n.broker.connectionCount(), channels: c.channelsOpened - c.channelsClosed, consumers: n.broker.consumerCount(),
      queues: rows.length, ready: rows.reduce((a, r) => a + r.ready, 0), unacked: rows.reduce((a, r) => a + r.unacked, 0),
      groups: n.groupHost.groupCount(), groupsLed: n.groupHost.leaderCount(), maxFollowerLag: rows.reduce((m, r) => Math.max(m, r.maxLag), 0),
      rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, eventLoopActiveMs: elu.active, eventLoopIdleMs: elu.idle, eventLoopDelayP99Ms: this.loopDelayP99Ms,
      alarms: [...(n.context.memoryAlarm ? ['memory'] : []), ...(n.context.diskAlarm ? ['disk'] : [])],
      peers: [...n.groupHost.transport.stats()].filter(([id]) => !id.startsWith('ctl-')).map(([peer, s]) => ({ peer, up: s.up, rttMs: rtt.get(peer) ?? null })),
      topQueues: rows.sort((a, b) => b.ready + b.unacked - (a.ready + a.unacked)).slice(0, topQueuesMax).map((r) => ({
        vhost: r.vhost, name: r.name, ready: r.ready, unacked: r.unacked, consumers: r.consumers,
        published: r.totals.published, maxLag: r.maxLag,
      })),
    };
  }

  // ---- helpers ----

  private peers(): NodeId[] {
    return [...this.transport.stats()].filter(([id, s]) => s.up && !id.startsWith('ctl-')).map(([id]) => id);
  }

  private call(peer: string, method: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return this.rpc.call(peer as NodeId, method, payload, timeoutMs, Lane.control);
  }
}
