// Whether a node can take its share of the work, and how to take its leaders away before it stops.
// - 'ctl.ready': the node asked answers for itself: the metadata group has a leader, and every queue
//   replica it hosts has a leader and, where this node follows, holds the leader's committed entries
//   (within a small slack under load). A Kubernetes readiness probe calls it (`espresso ctl ready`).
// - 'ctl.drain' {node}: the node named (or the node asked, when none is) hands every group it leads (queues and metadata) to another
//   voter that is up, preferring the one with the most of the log, until it leads none or the time
//   is up: what a rolling upgrade does before stopping a node (`espresso ctl drain NODE`).

import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import { nodeId, type GroupId, type NodeId } from '../lib/ids.js';
import type { GroupHost } from './group-host.js';
import { metadataGroupId } from './metadata-group.js';
import { listingMethods, type ReplicaRow } from './queue-listing.js';
import type { QueueMesh } from './queue-service.js';
import type { ClusterRpc } from './rpc.js';

export const readinessMethods = { ready: 'ctl.ready', drain: 'ctl.drain', drainHere: 'q.drain-here' } as const;

export const readinessLimits = {
  /** A follower this many entries or fewer behind its leader's commit index counts as caught up (load keeps it from 0). */
  catchUpSlackEntries: 256,
  /** Reasons listed in one answer. */
  reasonsMax: 20,
  rowsTimeoutMs: 2_000,
  /** How long a drain keeps handing leaders over; and between rounds. */
  drainDefaultMs: 60_000,
  drainMaxMs: 600_000,
  drainRoundMs: 300,
} as const;

export interface Readiness {
  node: string;
  ready: boolean;
  /** Queue replicas here, those it leads, and those it follows. */
  replicas: number;
  leading: number;
  /** Why not ready (at most reasonsMax). */
  reasons: string[];
}

export interface DrainAnswer {
  node: string;
  /** Groups handed over: "vhost/queue -> node" (or "meta -> node"). */
  moved: string[];
  /** Groups the node still leads when the drain ended (empty when it succeeded). */
  stillLeading: string[];
  durationMs: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const json = (v: unknown): Uint8Array => encoder.encode(JSON.stringify(v));
const parse = <T>(b: Uint8Array): T => JSON.parse(decoder.decode(b)) as T;

/** The readiness check of each node's queue layer, once it runs (keyed by the node's rpc). */
const checks = new WeakMap<ClusterRpc, () => Promise<Readiness>>();

/**
 * Registers ctl.ready from the moment the cluster port listens: "still starting" until the queue
 * layer runs (the broker starts after the metadata group), then its answer.
 */
export function serveReadyCheck(rpc: ClusterRpc, self: NodeId): void {
  rpc.handle(readinessMethods.ready, async () => {
    const check = checks.get(rpc);
    if (check !== undefined) return json(await check());
    const starting: Readiness = { node: self, ready: false, replicas: 0, leading: 0, reasons: ['still starting: waiting for the metadata group and the broker'] };
    return json(starting);
  });
}

/** Answers ctl.ready with this queue layer's check, and serves ctl.drain and q.drain-here. */
export function serveReadiness(mesh: QueueMesh, rpc: ClusterRpc): void {
  checks.set(rpc, () => readiness(mesh, rpc));
  rpc.handle(readinessMethods.drainHere, async (_from, p) => json(await drainHere(mesh, parse<{ timeoutMs?: number }>(p).timeoutMs)));
  rpc.handle(readinessMethods.drain, async (_from, p) => {
    const { node, timeoutMs } = parse<{ node: string; timeoutMs?: number }>(p);
    // No node named: the node asked drains itself (a Kubernetes preStop hook on the pod).
    const target = node === '' ? mesh.nodeId : nodeId(node);
    if (target === mesh.nodeId) return json(await drainHere(mesh, timeoutMs));
    if (!mesh.host.transport.isUp(target)) throw new OperatingError(OperatingErrorCode.BadConfig, `node ${node} is not connected to ${mesh.nodeId} (not running, or not its id): nothing to drain through here`, { node });
    const bound = drainBound(timeoutMs);
    return rpc.call(target, readinessMethods.drainHere, json({ timeoutMs: bound }), bound + 5_000);
  });
}

function drainBound(timeoutMs: number | undefined): number {
  return Math.min(readinessLimits.drainMaxMs, Math.max(1_000, timeoutMs ?? readinessLimits.drainDefaultMs));
}

/** This node's readiness, asking the leaders of the queues it follows how far behind it is. */
export async function readiness(mesh: QueueMesh, rpc: ClusterRpc): Promise<Readiness> {
  const reasons: string[] = [];
  const meta = mesh.host.status(metadataGroupId);
  if (meta === null) reasons.push('this node does not host the metadata group yet');
  else if (meta.leader === null) reasons.push('the metadata group has no leader');
  const followed = new Map<NodeId, Array<{ vhost: string; name: string }>>();
  const replicas = mesh.replicaList();
  let leading = 0;
  for (const { vhost, name, queue } of replicas) {
    const s = mesh.groupStatus(queue.groupId);
    if (s === null || s.leader === null) reasons.push(`queue '${name}' in vhost '${vhost}' has no leader`);
    else if (s.leader === mesh.nodeId) leading++;
    else followed.set(s.leader, [...(followed.get(s.leader) ?? []), { vhost, name }]);
  }
  await Promise.all([...followed].map(async ([leader, queues]) => {
    let rows: ReplicaRow[];
    try {
      rows = parse<ReplicaRow[]>(await rpc.call(leader, listingMethods.rows, new Uint8Array(0), readinessLimits.rowsTimeoutMs));
    } catch (e) {
      reasons.push(`leader ${leader} of ${queues.length} queue(s) here does not answer: ${(e as Error).message}`);
      return;
    }
    for (const q of queues) {
      const row = rows.find((r) => r.vhost === q.vhost && r.name === q.name && r.role === 'leader');
      const match = row?.followers.find((f) => f.node === mesh.nodeId)?.match;
      if (row === undefined || match === undefined) reasons.push(`queue '${q.name}' in vhost '${q.vhost}': ${leader} no longer leads it (a change in progress)`);
      else if (match + readinessLimits.catchUpSlackEntries < row.commit) reasons.push(`queue '${q.name}' in vhost '${q.vhost}': ${row.commit - match} entries behind the leader's commit`);
    }
  }));
  return { node: mesh.nodeId, ready: reasons.length === 0, replicas: replicas.length, leading, reasons: reasons.slice(0, readinessLimits.reasonsMax) };
}

/** The groups this node leads, with a name for each. */
function ledHere(mesh: QueueMesh): Array<{ group: GroupId; label: string }> {
  const out: Array<{ group: GroupId; label: string }> = [];
  if (mesh.host.leader(metadataGroupId) === mesh.nodeId) out.push({ group: metadataGroupId, label: 'meta' });
  for (const { vhost, name, queue } of mesh.replicaList()) {
    if (mesh.host.leader(queue.groupId) === mesh.nodeId) out.push({ group: queue.groupId, label: `${vhost}/${name}` });
  }
  return out;
}

/** The voter to hand `group` to: up, not this node, the most of the log first. */
function successor(host: GroupHost, group: GroupId): NodeId | undefined {
  const s = host.status(group);
  if (s === null) return undefined;
  const match = new Map(s.replicas.map((r) => [r.node, r.match]));
  return s.membership.voters
    .filter((v) => v !== host.nodeId && host.transport.isUp(v))
    .sort((a, b) => (match.get(b) ?? 0) - (match.get(a) ?? 0))[0];
}

/** Hands every group this node leads to another voter, round after round, until none is left or the time is up. */
export async function drainHere(mesh: QueueMesh, timeoutMs: number | undefined): Promise<DrainAnswer> {
  const started = Date.now();
  const deadline = started + drainBound(timeoutMs);
  const moved = new Map<string, GroupId>();
  for (let round = 0; Date.now() < deadline && round < 10_000; round++) {
    const led = ledHere(mesh);
    if (led.length === 0) break;
    for (const { group, label } of led) {
      const to = successor(mesh.host, group);
      if (to === undefined) continue;
      try {
        mesh.host.transferLeadership(group, to);
        moved.set(label, group);
      } catch {
        // A transfer already under way, or a membership change: the next round tries again.
      }
    }
    await new Promise((r) => setTimeout(r, readinessLimits.drainRoundMs));
  }
  const still = ledHere(mesh).map((l) => l.label);
  for (const label of still) moved.delete(label);
  return {
    node: mesh.nodeId, moved: [...moved].map(([label, group]) => `${label} -> ${mesh.host.leader(group) ?? '(electing)'}`).sort(),
    stillLeading: still.sort(), durationMs: Date.now() - started,
  };
}
