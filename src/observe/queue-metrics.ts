// Queue and Raft-group metrics: one pass over the queues this node runs, then either one sum per
// family (/metrics: constant size, through prom-client) or one sample per queue and replica
// (/metrics/per-object, written straight to Prometheus' text format: 10,000 queues make some 150,000
// samples, and formatting them through generic label objects costs seconds). A queue's message
// counts come from the node that leads it (as RabbitMQ's quorum queues), so summing a family over
// all nodes counts each queue once; term, commit and applied index come from every replica,
// follower lag from the leader.

import type { QueueTotals } from '../queue/index.js';
import type { ReadMetricSpec } from './read-metric.js';
import type { ObservedNode } from './node-metrics.js';

export interface QueueRow {
  readonly vhost: string;
  readonly name: string;
  /** `vhost="...",queue="..."`, escaped once per scan. */
  readonly labelText: string;
  readonly reported: boolean;
  readonly ready: number;
  readonly unacked: number;
  readonly readyBytes: number;
  readonly unackedBytes: number;
  readonly consumers: number;
  readonly totals: Readonly<QueueTotals>;
  readonly raft: { term: number; commit: number; applied: number; lastIndex: number } | null;
  readonly lags: ReadonlyArray<{ follower: string; lag: number }>;
  readonly maxLag: number;
}

/** A scan is reused by the families of one scrape (they are read together, within this time). */
const scanReuseMs = 250;

/** The queues this node reports, for /metrics (followers' replicas are skipped: nothing of theirs is summed). */
function scanner(node: ObservedNode): () => QueueRow[] {
  let rows: QueueRow[] = [];
  let atMs = -Infinity;
  return () => {
    const now = performance.now();
    if (now - atMs < scanReuseMs) return rows;
    rows = scanQueues(node, true);
    atMs = performance.now();
    return rows;
  };
}

/** Prometheus label value escaping: backslash, double quote, newline. */
export function escapeLabel(s: string): string {
  return /[\\"\n]/.test(s) ? s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : s;
}

/** Every queue this node runs (or only those it reports; or only those of `vhosts`), with its counts and its Raft group's indexes (one pass). */
export function scanQueues(node: ObservedNode, reportedOnly = false, vhosts?: ReadonlySet<string>): QueueRow[] {
  const out: QueueRow[] = [];
  const host = node.groupHost;
  for (const h of node.context.queues.running()) {
    if (reportedOnly && !h.leader) continue;
    if (vhosts !== undefined && !vhosts.has(h.vhost)) continue;
    const s = h.queue.stats();
    const status = 'groupId' in h.queue ? host.status(h.queue.groupId) : null;
    const lags: Array<{ follower: string; lag: number }> = [];
    let maxLag = 0;
    if (status !== null && status.role === 'leader') {
      for (const r of status.replicas) {
        if (r.node === host.nodeId) continue;
        const lag = Math.max(0, status.lastIndex - r.match);
        lags.push({ follower: r.node, lag });
        maxLag = Math.max(maxLag, lag);
      }
    }
    out.push({
      vhost: h.vhost, name: h.name, labelText: `vhost="${escapeLabel(h.vhost)}",queue="${escapeLabel(h.name)}"`, reported: h.leader,
      ready: s.messagesReady, unacked: s.messagesUnacked, readyBytes: s.bytesReady, unackedBytes: s.bytesUnacked, consumers: s.consumers,
      totals: h.queue.totals(),
      raft: status === null ? null : { term: status.term, commit: status.commit, applied: status.applied, lastIndex: status.lastIndex },
      lags, maxLag,
    });
  }
  return out;
}

interface QueueFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly value: (r: QueueRow) => number;
}

/** Per queue, from the node that reports it (leads it, or runs it locally). */
const queueFamilyList: readonly QueueFamily[] = [
  { name: 'espresso_queue_messages_ready', help: 'messages ready for delivery', type: 'gauge', value: (r) => r.ready },
  { name: 'espresso_queue_messages_unacked', help: 'messages delivered and not acknowledged yet', type: 'gauge', value: (r) => r.unacked },
  { name: 'espresso_queue_messages', help: 'ready plus unacked messages', type: 'gauge', value: (r) => r.ready + r.unacked },
  { name: 'espresso_queue_messages_ready_bytes', help: 'bytes of ready message bodies', type: 'gauge', value: (r) => r.readyBytes },
  { name: 'espresso_queue_messages_unacked_bytes', help: 'bytes of unacked message bodies', type: 'gauge', value: (r) => r.unackedBytes },
  { name: 'espresso_queue_messages_bytes', help: 'bytes of ready plus unacked message bodies', type: 'gauge', value: (r) => r.readyBytes + r.unackedBytes },
  { name: 'espresso_queue_consumers', help: 'consumers of the queue', type: 'gauge', value: (r) => r.consumers },
  { name: 'espresso_queue_messages_published_total', help: 'messages accepted into the queue', type: 'counter', value: (r) => r.totals.published },
  { name: 'espresso_queue_messages_delivered_total', help: 'deliveries to consumers and basic.get', type: 'counter', value: (r) => r.totals.delivered },
  { name: 'espresso_queue_messages_redelivered_total', help: 'deliveries with redelivered=true', type: 'counter', value: (r) => r.totals.redelivered },
  { name: 'espresso_queue_messages_acked_total', help: 'messages settled by a consumer\'s ack', type: 'counter', value: (r) => r.totals.acked },
  { name: 'espresso_queue_messages_dead_lettered_total', help: 'messages sent to the dead-letter exchange', type: 'counter', value: (r) => r.totals.deadLettered },
];

/** Per replica of a replicated queue hosted here. */
const raftFamilyList: ReadonlyArray<{ name: string; help: string; value: (s: NonNullable<QueueRow['raft']>) => number }> = [
  { name: 'espresso_raft_term', help: 'current Raft term of this replica', value: (s) => s.term },
  { name: 'espresso_raft_commit_index', help: 'commit index as this replica knows it', value: (s) => s.commit },
  { name: 'espresso_raft_last_applied', help: 'last index applied by this replica', value: (s) => s.applied },
  { name: 'espresso_raft_last_index', help: 'last index in this replica\'s log', value: (s) => s.lastIndex },
];

const countOf = (rows: readonly QueueRow[]): number => rows.reduce((n, r) => n + (r.reported ? 1 : 0), 0);
const maxLagOf = (rows: readonly QueueRow[]): number => rows.reduce((m, r) => Math.max(m, r.maxLag), 0);

/** /metrics: each family summed over the queues this node reports (prom-client formats them). */
export function aggregatedQueueFamilies(node: ObservedNode): ReadMetricSpec[] {
  const rows = scanner(node);
  return [
    ...summaryFamilies().map((f) => ({ ...f, read: () => [{ value: f.value(rows()) }] })),
    ...queueFamilyList.map((f): ReadMetricSpec => ({
      name: f.name, help: f.help, type: f.type,
      read: () => {
        let sum = 0;
        for (const r of rows()) if (r.reported) sum += f.value(r);
        return [{ value: sum }];
      },
    })),
  ];
}

function summaryFamilies(): Array<{ name: string; help: string; type: 'gauge'; value: (rows: readonly QueueRow[]) => number }> {
  return [
    { name: 'espresso_queues', help: 'queues whose counts this node reports (local queues and replicated queues it leads)', type: 'gauge', value: countOf },
    { name: 'espresso_raft_max_follower_lag', help: 'largest lag (entries) of any follower of a queue this node leads', type: 'gauge', value: maxLagOf },
  ];
}

/**
 * /metrics/per-object's queue part, in Prometheus' text format: one sample per queue (or replica, or
 * follower); only the queues of `vhosts` when given (RabbitMQ's /metrics/detailed?vhost=...).
 */
export function perObjectQueueText(node: ObservedNode, vhosts?: ReadonlySet<string>): string {
  const rows = scanQueues(node, false, vhosts);
  const out: string[] = [];
  const head = (name: string, help: string, type: string): void => void out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const f of summaryFamilies()) {
    head(f.name, f.help, f.type);
    out.push(`${f.name} ${f.value(rows)}`);
  }
  head('espresso_queue_info', 'each queue run here: its type and this replica\'s membership', 'gauge');
  for (const r of rows) {
    out.push(`espresso_queue_info{${r.labelText},queue_type="${r.raft === null ? 'local' : 'replicated'}",membership="${r.reported ? 'leader' : 'follower'}"} 1`);
  }
  for (const f of queueFamilyList) {
    head(f.name, f.help, f.type);
    for (const r of rows) if (r.reported) out.push(`${f.name}{${r.labelText}} ${f.value(r)}`);
  }
  for (const f of raftFamilyList) {
    head(f.name, f.help, 'gauge');
    for (const r of rows) if (r.raft !== null) out.push(`${f.name}{${r.labelText}} ${f.value(r.raft)}`);
  }
  head('espresso_raft_follower_lag', 'entries each follower is behind the leader\'s last index (from the leader)', 'gauge');
  for (const r of rows) for (const l of r.lags) out.push(`espresso_raft_follower_lag{${r.labelText},follower="${escapeLabel(l.follower)}"} ${l.lag}`);
  out.push('');
  return out.join('\n');
}
