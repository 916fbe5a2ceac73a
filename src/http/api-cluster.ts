// The management API's cluster-wide view: the node asked gathers every connected node's
// connections (with channels and consumers), its non-replicated queues' counters and its replicas'
// Raft rows over the cluster rpc, and closes a connection on whichever node holds it. A node that
// does not answer within a bound is left out of the answer, never waited for.

import { availableParallelism } from 'node:os';
import type { ConnectionInfo } from '../broker/connection-info.js';
import type { NodeContext } from '../broker/node-context.js';
import { clusterListing, type QueueListing } from '../cluster/queue-listing.js';
import type { ClusterRpc } from '../cluster/rpc.js';
import type { NodeId } from '../lib/ids.js';
import { listQueues, listVhosts } from '../model/index.js';
import type { Transport } from '../transport/index.js';

export const managementMethods = {
  snapshot: 'mgmt.node-snapshot',
  closeConnection: 'mgmt.close-connection',
} as const;

/** A non-replicated queue's counters, from its home node. */
export interface LocalQueueRow {
  readonly vhost: string;
  readonly name: string;
  readonly ready: number;
  readonly unacked: number;
  readonly bytes: number;
  readonly consumers: number;
}

/** A node's resources and alarms, as /api/nodes shows them. */
export interface NodeStats {
  readonly memUsed: number;
  readonly memLimit: number;
  readonly memAlarm: boolean;
  readonly diskFreeLimit: number;
  readonly diskAlarm: boolean;
  readonly uptimeMs: number;
  readonly processors: number;
  readonly osPid: number;
  readonly socketsUsed: number;
  readonly socketsTotal: number;
}

export interface NodeSnapshot {
  readonly node: string;
  readonly stats: NodeStats;
  readonly connections: ConnectionInfo[];
  readonly localQueues: LocalQueueRow[];
}

export interface ClusterView {
  /** Every answering node's snapshot (this node's first). */
  readonly nodes: NodeSnapshot[];
}

/** The parts of a node the gathering reads. */
export interface GatherDeps {
  readonly ctx: NodeContext;
  readonly rpc: ClusterRpc;
  readonly transport: Transport;
  readonly connections: () => ConnectionInfo[];
  readonly closeConnection: (name: string, reason: string) => boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const gatherTimeoutMs = 3_000;

function encode(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

function decode<T>(bytes: Uint8Array): T {
  return JSON.parse(decoder.decode(bytes)) as T;
}

export function upPeers(transport: Transport): NodeId[] {
  return [...transport.stats()].filter(([, s]) => s.up).map(([id]) => id);
}

export function localSnapshot(d: GatherDeps): NodeSnapshot {
  const state = d.ctx.metadata.state;
  const localQueues: LocalQueueRow[] = [];
  for (const vhost of listVhosts(state)) {
    for (const q of listQueues(state, vhost)) {
      if (q.kind !== 'local' || q.homeNode !== d.ctx.nodeId) continue;
      const s = d.ctx.queues.get(vhost, q.name)?.stats();
      localQueues.push({ vhost, name: q.name, ready: s?.messagesReady ?? 0, unacked: s?.messagesUnacked ?? 0, bytes: (s?.bytesReady ?? 0) + (s?.bytesUnacked ?? 0), consumers: s?.consumers ?? 0 });
    }
  }
  const c = d.ctx.config;
  const stats: NodeStats = {
    memUsed: process.memoryUsage().rss, memLimit: c.memoryHighWatermarkBytes, memAlarm: d.ctx.memoryAlarm,
    diskFreeLimit: c.diskFreeLimitBytes, diskAlarm: d.ctx.diskAlarm, uptimeMs: Math.round(process.uptime() * 1000),
    processors: availableParallelism(), osPid: process.pid, socketsUsed: d.ctx.connectionCount(), socketsTotal: c.maxConnections,
  };
  return { node: d.ctx.nodeId, stats, connections: d.connections(), localQueues };
}

/** Registers what other nodes ask of this one. */
export function serveGathering(d: GatherDeps): void {
  d.rpc.handle(managementMethods.snapshot, () => encode(localSnapshot(d)));
  d.rpc.handle(managementMethods.closeConnection, (_from, p) => {
    const { name, reason } = decode<{ name: string; reason: string }>(p);
    return Uint8Array.of(d.closeConnection(name, reason) ? 1 : 0);
  });
}

/** Every connected node's snapshot; nodes that fail or time out are left out. */
export async function clusterView(d: GatherDeps): Promise<ClusterView> {
  const remote = await Promise.all(upPeers(d.transport).map((p) => d.rpc.call(p, managementMethods.snapshot, new Uint8Array(0), gatherTimeoutMs)
    .then((b) => decode<NodeSnapshot>(b), () => null)));
  return { nodes: [localSnapshot(d), ...remote.filter((s): s is NodeSnapshot => s !== null)] };
}

/** Replicated queues' Raft view (leader, members, counts, commit index, lag) merged over every node. */
export async function replicatedQueues(d: GatherDeps): Promise<QueueListing[]> {
  const mesh = d.ctx.queues.attachedMesh;
  return mesh === null ? [] : clusterListing(mesh, d.rpc, d.transport);
}

/** Closes the named connection on the node that holds it; false when no node has it. */
export async function closeAnywhere(d: GatherDeps, node: string, name: string, reason: string): Promise<boolean> {
  if (node === d.ctx.nodeId) return d.closeConnection(name, reason);
  const answer = await d.rpc.call(node as NodeId, managementMethods.closeConnection, encode({ name, reason }), gatherTimeoutMs);
  return answer[0] === 1;
}
