// `espresso ctl list-queues`: per replicated queue, its leader, members, messages ready/unacked,
// consumers, commit index and each follower's lag, gathered by the node ctl talks to from its own
// replicas and every connected peer's ('q.rows'), answered as JSON. And 'ctl.rebalance': every node
// hands the queues it leads back to their preferred leader (placement's first replica) when that
// node is up ('q.rebalance'), as RabbitMQ's `rabbitmq-queues rebalance`.

import type { NodeId } from '../lib/ids.js';
import type { QueueMesh } from './queue-service.js';
import type { ClusterRpc } from './rpc.js';
import type { Transport } from '../transport/index.js';

/** One replica as its node sees it. */
export interface ReplicaRow {
  readonly vhost: string;
  readonly name: string;
  readonly node: string;
  readonly role: string;
  readonly term: number;
  readonly commit: number;
  readonly lastIndex: number;
  readonly members: readonly string[];
  readonly ready: number;
  readonly unacked: number;
  readonly consumers: number;
  /** Leader only: each follower's acknowledged index. */
  readonly followers: ReadonlyArray<{ node: string; match: number }>;
}

export interface QueueListing {
  readonly vhost: string;
  readonly name: string;
  readonly leader: string | null;
  readonly members: readonly string[];
  readonly ready: number;
  readonly unacked: number;
  readonly consumers: number;
  readonly commitIndex: number;
  /** Entries each follower is behind the leader's last index (null: not reported by a leader). */
  readonly followerLag: Readonly<Record<string, number>> | null;
  /** Nodes that answered with a replica of this queue. */
  readonly reportedBy: readonly string[];
}

export const listingMethods = { rows: 'q.rows', list: 'ctl.list-queues', rebalanceHere: 'q.rebalance', rebalance: 'ctl.rebalance' } as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const rowsTimeoutMs = 2_000;

export function localRows(mesh: QueueMesh): ReplicaRow[] {
  const rows: ReplicaRow[] = [];
  for (const { vhost, name, queue } of mesh.replicaList()) {
    const s = mesh.groupStatus(queue.groupId);
    if (s === null) continue;
    const stats = queue.stats();
    rows.push({
      vhost, name, node: mesh.nodeId, role: s.role, term: s.term, commit: s.commit, lastIndex: s.lastIndex,
      members: [...s.membership.voters], ready: stats.messagesReady, unacked: stats.messagesUnacked, consumers: stats.consumers,
      followers: s.replicas.filter((r) => r.node !== mesh.nodeId).map((r) => ({ node: r.node, match: r.match })),
    });
  }
  return rows;
}

/** Merges every node's rows into one line per queue, the leader's (highest term) view first. */
export function mergeRows(rows: readonly ReplicaRow[]): QueueListing[] {
  const byQueue = new Map<string, ReplicaRow[]>();
  for (const r of rows) {
    const key = `${r.vhost}\u0000${r.name}`;
    const list = byQueue.get(key) ?? [];
    list.push(r);
    byQueue.set(key, list);
  }
  const out: QueueListing[] = [];
  for (const list of byQueue.values()) {
    const leader = list.filter((r) => r.role === 'leader').sort((a, b) => b.term - a.term)[0];
    const best = leader ?? [...list].sort((a, b) => b.commit - a.commit)[0]!;
    const lag = leader === undefined ? null : Object.fromEntries(leader.followers.map((f) => [f.node, Math.max(0, leader.lastIndex - f.match)]));
    out.push({
      vhost: best.vhost, name: best.name, leader: leader?.node ?? null, members: best.members, ready: best.ready,
      unacked: best.unacked, consumers: best.consumers, commitIndex: best.commit, followerLag: lag,
      reportedBy: list.map((r) => r.node).sort(),
    });
  }
  return out.sort((a, b) => (a.vhost + a.name < b.vhost + b.name ? -1 : 1));
}

/** Registers 'q.rows' (this node's replicas) and 'ctl.list-queues' (the whole cluster, merged). */
export function serveListing(mesh: QueueMesh, rpc: ClusterRpc, transport: Transport): void {
  rpc.handle(listingMethods.rows, () => encoder.encode(JSON.stringify(localRows(mesh))));
  rpc.handle(listingMethods.list, async () => encoder.encode(JSON.stringify(await clusterListing(mesh, rpc, transport))));
}

/** Every connected node's replica rows merged (a node that does not answer in time is left out). */
export async function clusterListing(mesh: QueueMesh, rpc: ClusterRpc, transport: Transport): Promise<QueueListing[]> {
  const peers = [...transport.stats()].filter(([, s]) => s.up).map(([id]) => id as NodeId);
  const remote = await Promise.all(peers.map((p) => rpc.call(p, listingMethods.rows, new Uint8Array(0), rowsTimeoutMs)
    .then((b) => JSON.parse(decoder.decode(b)) as ReplicaRow[], () => [] as ReplicaRow[])));
  return mergeRows([...localRows(mesh), ...remote.flat()]);
}

/** Leadership transfers started here: queues led by this node whose preferred leader is another node that is up. */
export function rebalanceHere(mesh: QueueMesh, transport: Transport): string[] {
  const moved: string[] = [];
  for (const { vhost, name, queue } of mesh.replicaList()) {
    const to = queue.preferredLeader;
    if (!queue.ready || to === mesh.nodeId || !transport.isUp(to)) continue;
    try {
      mesh.transferLeadership(queue.groupId, to);
      moved.push(`${vhost}/${name} -> ${to}`);
    } catch {
      // A transfer already in flight, or a configuration change: the next rebalance tries again.
    }
  }
  return moved;
}

/** Registers 'q.rebalance' (this node's queues) and 'ctl.rebalance' (every connected node's). */
export function serveRebalance(mesh: QueueMesh, rpc: ClusterRpc, transport: Transport): void {
  rpc.handle(listingMethods.rebalanceHere, () => encoder.encode(JSON.stringify(rebalanceHere(mesh, transport))));
  rpc.handle(listingMethods.rebalance, async () => {
    const peers = [...transport.stats()].filter(([, s]) => s.up).map(([id]) => id as NodeId);
    const remote = await Promise.all(peers.map((p) => rpc.call(p, listingMethods.rebalanceHere, new Uint8Array(0), rowsTimeoutMs)
      .then((b) => JSON.parse(decoder.decode(b)) as string[], () => [] as string[])));
    const moved = [...rebalanceHere(mesh, transport), ...remote.flat()].sort();
    return encoder.encode(JSON.stringify({ moved }));
  });
}
