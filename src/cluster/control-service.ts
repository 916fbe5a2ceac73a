// The ctl methods every node serves (cluster status, add-node, forget-node), and the load a node
// spreads through gossip so that any node can tell how many groups each node leads.

import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { audited, caller } from './audit.js';
import { nodeId, type NodeId } from '../lib/ids.js';
import type { GossipService, MemberMeta, MemberStatus } from '../membership/index.js';
import type { GroupHost } from './group-host.js';
import { decodeJson, encodeJson } from './metadata-entries.js';
import { metadataGroupId, type ClusterNode, type MetadataGroupStats, type ReplicatedMetadataClient } from './metadata-group.js';
import type { ClusterRpc } from './rpc.js';
import { serveReadyCheck } from './node-readiness.js';
import { serveAccess } from './access-service.js';
import { listPolicies, listVhosts, type MetadataCommand, type MetadataOk, type PolicyApplyTo, type PolicyRecord } from '../model/index.js';

export const CtlMethod = {
  status: 'ctl.status',
  addNode: 'ctl.add-node',
  forgetNode: 'ctl.forget-node',
  /** Served by the queue layer when it is there. */
  listQueues: 'ctl.list-queues',
  /** Served by the queue layer: every queue back to its preferred leader. */
  rebalance: 'ctl.rebalance',
  setPolicy: 'ctl.set-policy',
  clearPolicy: 'ctl.clear-policy',
  listPolicies: 'ctl.list-policies',
  /** Served by the composition root (cli/server-command.ts): the broker re-reads its client TLS files. */
  reloadTls: 'ctl.reload-tls',
  setVhostLimits: 'ctl.set-vhost-limits',
  setUserLimits: 'ctl.set-user-limits',
} as const;

/** ctl set-policy's request, as rabbitmqctl set_policy takes it. */
export interface SetPolicyRequest {
  vhost: string;
  name: string;
  pattern: string;
  definition: Record<string, unknown>;
  priority: number;
  applyTo: PolicyApplyTo;
}

/** What set-policy and clear-policy answer: the queues whose effective settings changed. */
export interface PolicyChangeAnswer {
  changedQueues: string[];
}

export interface NodeStatus {
  id: NodeId;
  clusterAddress: string;
  amqpAddress: string;
  version: string;
  /** From gossip, as the answering node sees it; 'unknown' when gossip never heard of it. */
  status: MemberStatus | 'unknown';
  /** Raft groups the node leads (from its gossip load); null when not known. */
  groupsLed: number | null;
  voter: boolean;
  learner: boolean;
}

export interface ClusterStatus {
  answeredBy: NodeId;
  /** The answering node still waits for the metadata group (no quorum yet): no registry to show. */
  starting: boolean;
  /** The answering node's metadata counters (applied index, forwarded changes and their bytes). */
  metadata: MetadataGroupStats | null;
  /** The answering node's write-ahead log counters since it started (fsyncs, records, bytes). */
  storage: { fsyncs: number; batches: number; recordsWritten: number; bytesWritten: number; diskBytes: number };
  metaLeader: NodeId | null;
  voters: readonly NodeId[];
  learners: readonly NodeId[];
  nodes: NodeStatus[];
}

export interface ControlDeps {
  /** Undefined while the node waits for the metadata group at start (ctl still answers status). */
  metadata: ReplicatedMetadataClient | undefined;
  readonly groupHost: GroupHost;
  /** Undefined on a one-node cluster, and until the node knows its peers. */
  gossip: GossipService | undefined;
  readonly self: ClusterNode;
  /** Where the audit lines of ctl's changes go (audit.ts); none: not written. */
  readonly audit?: Logger;
}

/** Served from the moment the transport listens; `d.metadata` is filled in once it started. */
export function serveControl(rpc: ClusterRpc, d: ControlDeps): void {
  rpc.handle(CtlMethod.status, () => encodeJson(clusterStatus(d)));
  serveReadyCheck(rpc, d.self.id);
  rpc.handle(CtlMethod.addNode, async (from, p) => {
    const { id, clusterAddress } = decodeJson<{ id: string; clusterAddress: string }>(p);
    return audited(d.audit, caller(d, from, 'add-node', { id, clusterAddress }), async () => {
      if (!/^[^@\s]+$/.test(id) || !/^(?:\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):\d+$/.test(clusterAddress)) {
        throw new OperatingError(OperatingErrorCode.BadConfig, `add-node wants ID@HOST:PORT, got '${id}@${clusterAddress}'`);
      }
      const metadata = started(d);
      await metadata.addNode({ id: nodeId(id), clusterAddress, amqpAddress: '', version: '' });
      await metadata.sync(); // the status answered shows it
      return encodeJson(clusterStatus(d));
    });
  });
  rpc.handle(CtlMethod.forgetNode, async (from, p) => {
    const { id } = decodeJson<{ id: string }>(p);
    return audited(d.audit, caller(d, from, 'forget-node', { id }), async () => {
      await started(d).forgetNode(nodeId(id));
      return encodeJson(clusterStatus(d));
    });
  });
  servePolicies(rpc, d);
  serveAccess(rpc, () => d.metadata);
  serveLimits(rpc, d);
}

/**
 * Vhost and user limits (rabbitmqctl set_vhost_limits / set_user_limits): the request replaces all
 * of the vhost's or user's limits, null for none; in force on every node when answered.
 */
function serveLimits(rpc: ClusterRpc, d: ControlDeps): void {
  const change = async (c: MetadataCommand): Promise<Uint8Array> => {
    const r = await started(d).apply(c);
    if (!r.ok) throw new OperatingError(OperatingErrorCode.BadConfig, r.replyText, { replyCode: r.replyCode });
    return encodeJson({});
  };
  rpc.handle(CtlMethod.setVhostLimits, async (from, p) => {
    const r = decodeJson<{ vhost: string; maxConnections: number | null; maxQueues: number | null }>(p);
    return audited(d.audit, caller(d, from, 'set-vhost-limits', { ...r }), () => change({ kind: 'setVhostLimits', ...r }));
  });
  rpc.handle(CtlMethod.setUserLimits, async (from, p) => {
    const r = decodeJson<{ user: string; maxConnections: number | null; maxChannels: number | null }>(p);
    return audited(d.audit, caller(d, from, 'set-user-limits', { ...r }), () => change({ kind: 'setUserLimits', ...r }));
  });
}

/**
 * Policies are metadata entries: any node takes them and its metadata client forwards them to the
 * meta leader; once applied, every node's queue registry gives its queues the new settings.
 */
function servePolicies(rpc: ClusterRpc, d: ControlDeps): void {
  rpc.handle(CtlMethod.setPolicy, async (from, p) => {
    const r = decodeJson<SetPolicyRequest>(p);
    return audited(d.audit, caller(d, from, 'set-policy', { ...r }), async () => encodeJson(await changePolicy(d, {
      kind: 'setPolicy', vhost: r.vhost, name: r.name, pattern: r.pattern, applyTo: r.applyTo, priority: r.priority, definition: r.definition,
    })));
  });
  rpc.handle(CtlMethod.clearPolicy, async (from, p) => {
    const r = decodeJson<{ vhost: string; name: string }>(p);
    return audited(d.audit, caller(d, from, 'clear-policy', { ...r }),
      async () => encodeJson(await changePolicy(d, { kind: 'clearPolicy', vhost: r.vhost, name: r.name })));
  });
  rpc.handle(CtlMethod.listPolicies, async (_from, p) => {
    const { vhost } = decodeJson<{ vhost?: string }>(p);
    const metadata = started(d);
    await metadata.sync(); // a policy set through another node a moment ago is listed
    const vhosts = vhost === undefined ? listVhosts(metadata.state) : [vhost];
    const rows: PolicyRecord[] = [];
    for (const v of vhosts) rows.push(...listPolicies(metadata.state, v).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
    return encodeJson(rows);
  });
}

/** A refused change (bad definition, unknown vhost or policy) comes back as BadConfig with the model's words. */
async function changePolicy(d: ControlDeps, c: MetadataCommand): Promise<PolicyChangeAnswer> {
  const r = await started(d).apply(c);
  if (!r.ok) throw new OperatingError(OperatingErrorCode.BadConfig, r.replyText, { replyCode: r.replyCode });
  return { changedQueues: (r as MetadataOk).changedQueues.map((q) => q.name) };
}

function started(d: ControlDeps): ReplicatedMetadataClient {
  if (d.metadata !== undefined) return d.metadata;
  throw new OperatingError(OperatingErrorCode.NotLeader, `node ${d.self.id} is still starting: it waits for the metadata group to elect a leader`, { leader: '' });
}

/** The registry joined with gossip's view and the metadata group's membership, sorted by id. */
export function clusterStatus(d: ControlDeps): ClusterStatus {
  const { voters, learners } = d.groupHost.status(metadataGroupId)?.membership ?? { voters: [], learners: [] };
  const seen = new Map((d.gossip?.members() ?? []).map((m) => [m.nodeId, m]));
  const byId = new Map<NodeId, NodeStatus>();
  const put = (n: ClusterNode): void => {
    const g = seen.get(n.id);
    const self = n.id === d.self.id;
    byId.set(n.id, {
      id: n.id,
      clusterAddress: n.clusterAddress,
      amqpAddress: n.amqpAddress !== '' ? n.amqpAddress : g?.meta?.amqpAddress ?? '',
      version: n.version !== '' ? n.version : g?.meta?.version ?? '',
      status: self ? 'alive' : g?.status ?? 'unknown',
      groupsLed: self ? d.groupHost.leaderCount() : g?.meta !== undefined && g.status !== 'dead' ? g.meta.load : null,
      voter: voters.includes(n.id),
      learner: learners.includes(n.id),
    });
  };
  for (const n of d.metadata?.nodes() ?? []) put(n);
  if (!byId.has(d.self.id)) put(d.self);
  for (const m of seen.values()) {
    // A dead member gossip still remembers but the registry forgot is gone for good.
    if (byId.has(m.nodeId) || m.status === 'dead') continue;
    put({ id: m.nodeId, clusterAddress: m.meta?.clusterAddress ?? '', amqpAddress: m.meta?.amqpAddress ?? '', version: m.meta?.version ?? '' });
  }
  for (const v of [...voters, ...learners]) {
    if (!byId.has(v)) put({ id: v, clusterAddress: '', amqpAddress: '', version: '' });
  }
  const nodes = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    answeredBy: d.self.id, starting: d.metadata === undefined, metadata: d.metadata?.stats() ?? null, storage: storageCounters(d.groupHost),
    metaLeader: d.groupHost.leader(metadataGroupId), voters, learners, nodes,
  };
}

/** Every `everyMs`, spreads this node's led-group count and the meta leader when they changed. */
export function reportLoad(gossip: GossipService, d: ControlDeps, base: MemberMeta, everyMs = 1_000): () => void {
  let last = '';
  const timer = setInterval(() => {
    const leader = d.groupHost.leader(metadataGroupId);
    const meta: MemberMeta = { ...base, load: d.groupHost.leaderCount(), leaders: leader === null ? {} : { meta: leader } };
    const key = `${meta.load}/${leader ?? ''}`;
    if (key === last) return;
    last = key;
    gossip.setMeta(meta);
  }, everyMs);
  return () => clearInterval(timer);
}

function storageCounters(host: GroupHost): ClusterStatus['storage'] {
  const w = host.stats().wal;
  return { fsyncs: w.fsyncs, batches: w.batches, recordsWritten: w.recordsWritten, bytesWritten: w.bytesWritten, diskBytes: w.diskBytes };
}
