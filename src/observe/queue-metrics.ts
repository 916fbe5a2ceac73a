// Queue and Raft-group metrics: one pass over the queues this node runs per scrape (shared by every
// family of that scrape), then either one sum per family (/metrics: constant size) or one sample per
// queue and replica (/metrics/per-object). A queue's message counts come from the node that leads it
// (as RabbitMQ's quorum queues), so summing a family over all nodes counts each queue once; term,
// commit and applied index come from every replica, follower lag from the leader.

import { queueGroupId, type HostedQueue } from '../broker/queue-registry.js';
import type { GroupId } from '../lib/ids.js';
import type { QueueTotals } from '../queue/index.js';
import type { Labels, ReadMetricSpec, Sample } from './read-metric.js';
import type { ObservedNode } from './node-metrics.js';

export interface QueueRow {
  readonly labels: Labels;
  readonly reported: boolean;
  readonly ready: number;
  readonly unacked: number;
  readonly readyBytes: number;
  readonly unackedBytes: number;
  readonly consumers: number;
  readonly totals: Readonly<QueueTotals>;
  readonly raft: { term: number; commit: number; applied: number; lastIndex: number } | null;
  readonly lags: ReadonlyArray<{ follower: string; lag: number }>;
}

/** A scan is reused by the families of one scrape (they are read together, within this time). */
const scanReuseMs = 250;

function scanner(node: ObservedNode): () => QueueRow[] {
  let rows: QueueRow[] = [];
  let atMs = -Infinity;
  return () => {
    const now = performance.now();
    if (now - atMs < scanReuseMs) return rows;
    rows = scanQueues(node);
    atMs = performance.now();
    return rows;
  };
}

/** Every queue this node runs, with its counts and its Raft group's indexes (one pass). */
export function scanQueues(node: ObservedNode): QueueRow[] {
  const out: QueueRow[] = [];
  const host = node.groupHost;
  for (const h of node.context.queues.hosted()) {
    const s = h.queue.stats();
    const replicated = !isLocal(h);
    const status = replicated ? host.status(queueGroupId(h.vhost, h.name) as GroupId) : null;
    const lags = status === null || status.role !== 'leader' ? [] : status.replicas
      .filter((r) => r.node !== host.nodeId).map((r) => ({ follower: r.node as string, lag: Math.max(0, status.lastIndex - r.match) }));
    out.push({
      labels: { vhost: h.vhost, queue: h.name }, reported: h.leader,
      ready: s.messagesReady, unacked: s.messagesUnacked, readyBytes: s.bytesReady, unackedBytes: s.bytesUnacked, consumers: s.consumers,
      totals: h.queue.totals(),
      raft: status === null ? null : { term: status.term, commit: status.commit, applied: status.applied, lastIndex: status.lastIndex },
      lags,
    });
  }
  return out;
}

function isLocal(h: HostedQueue): boolean {
  return !('groupId' in h.queue);
}

type Mode = 'aggregated' | 'per-object';

export function queueFamilies(node: ObservedNode, mode: Mode): ReadMetricSpec[] {
  const rows = scanner(node);
  /** A family of the queues this node reports: summed, or one sample per queue. */
  const family = (name: string, help: string, type: 'gauge' | 'counter', value: (r: QueueRow) => number): ReadMetricSpec => ({
    name, help, type,
    read: (): Sample[] => {
      const all = rows();
      if (mode === 'aggregated') {
        let sum = 0;
        for (const r of all) if (r.reported) sum += value(r);
        return [{ value: sum }];
      }
      const out: Sample[] = [];
      for (const r of all) if (r.reported) out.push({ labels: r.labels, value: value(r) });
      return out;
    },
  });
  const specs: ReadMetricSpec[] = [
    {
      name: 'espresso_queues', help: 'queues whose counts this node reports (local queues and replicated queues it leads)', type: 'gauge',
      read: () => [{ value: rows().filter((r) => r.reported).length }],
    },
    family('espresso_queue_messages_ready', 'messages ready for delivery', 'gauge', (r) => r.ready),
    family('espresso_queue_messages_unacked', 'messages delivered and not acknowledged yet', 'gauge', (r) => r.unacked),
    family('espresso_queue_messages', 'ready plus unacked messages', 'gauge', (r) => r.ready + r.unacked),
    family('espresso_queue_messages_ready_bytes', 'bytes of ready message bodies', 'gauge', (r) => r.readyBytes),
    family('espresso_queue_messages_unacked_bytes', 'bytes of unacked message bodies', 'gauge', (r) => r.unackedBytes),
    family('espresso_queue_messages_bytes', 'bytes of ready plus unacked message bodies', 'gauge', (r) => r.readyBytes + r.unackedBytes),
    family('espresso_queue_consumers', 'consumers of the queue', 'gauge', (r) => r.consumers),
    family('espresso_queue_messages_published_total', 'messages accepted into the queue', 'counter', (r) => r.totals.published),
    family('espresso_queue_messages_delivered_total', 'deliveries to consumers and basic.get', 'counter', (r) => r.totals.delivered),
    family('espresso_queue_messages_redelivered_total', 'deliveries with redelivered=true', 'counter', (r) => r.totals.redelivered),
    family('espresso_queue_messages_acked_total', 'messages settled by a consumer\'s ack', 'counter', (r) => r.totals.acked),
    family('espresso_queue_messages_dead_lettered_total', 'messages sent to the dead-letter exchange', 'counter', (r) => r.totals.deadLettered),
  ];
  specs.push({
    name: 'espresso_raft_max_follower_lag', help: 'largest lag (entries) of any follower of a queue this node leads', type: 'gauge',
    read: () => [{ value: rows().reduce((m, r) => Math.max(m, ...r.lags.map((l) => l.lag)), 0) }],
  });
  if (mode === 'aggregated') return specs;
  const raft = (name: string, help: string, value: (r: NonNullable<QueueRow['raft']>) => number): ReadMetricSpec => ({
    name, help, type: 'gauge',
    read: () => rows().flatMap((r) => (r.raft === null ? [] : [{ labels: r.labels, value: value(r.raft) }])),
  });
  specs.push(
    {
      name: 'espresso_queue_info', help: 'each queue run here: its type and this replica\'s membership', type: 'gauge',
      read: () => rows().map((r) => ({
        labels: { ...r.labels, queue_type: r.raft === null ? 'local' : 'replicated', membership: r.reported ? 'leader' : 'follower' }, value: 1,
      })),
    },
    raft('espresso_raft_term', 'current Raft term of this replica', (s) => s.term),
    raft('espresso_raft_commit_index', 'commit index as this replica knows it', (s) => s.commit),
    raft('espresso_raft_last_applied', 'last index applied by this replica', (s) => s.applied),
    raft('espresso_raft_last_index', 'last index in this replica\'s log', (s) => s.lastIndex),
    {
      name: 'espresso_raft_follower_lag', help: 'entries each follower is behind the leader\'s last index (from the leader)', type: 'gauge',
      read: () => rows().flatMap((r) => r.lags.map((l) => ({ labels: { ...r.labels, follower: l.follower }, value: l.lag }))),
    },
  );
  return specs;
}
