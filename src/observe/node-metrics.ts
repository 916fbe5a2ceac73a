// The node's Prometheus metrics: every family read at scrape time from the plain counters the
// layers keep (broker counters, queue totals, the group host's histograms, the transport's per-peer
// counters, gossip's view). Names follow RabbitMQ's rabbitmq_* metrics where one exists (same
// meaning, prefix espresso_); the README lists them. /metrics sums the queues this node reports into
// one sample per family (constant size however many queues); /metrics/per-object has the same node
// families and one sample per queue and Raft group instead (queue-metrics.ts writes those).

import { collectDefaultMetrics, Registry } from 'prom-client';
import { statfsSync } from 'node:fs';
import { liveMemoryBytes } from '../broker/memory-alarm.js';
import type { NodeContext } from '../broker/node-context.js';
import type { BrokerServer } from '../broker/server.js';
import type { GroupHost } from '../cluster/index.js';
import { stageNames, Stage, stageCount } from '../lib/trace.js';
import type { GossipService } from '../membership/index.js';
import { histogramSamples, one, registerAll, type ReadMetricSpec, type Sample } from './read-metric.js';
import type { PeerProbe } from './peer-probe.js';
import type { StageRecorder } from './stage-recorder.js';
import { aggregatedQueueFamilies, perObjectQueueText } from './queue-metrics.js';

/** What the metrics read: the node's running parts (built by the composition root). */
export interface ObservedNode {
  readonly nodeId: string;
  readonly version: string;
  readonly context: NodeContext;
  /** The AMQP listener's live counts. */
  readonly broker: Pick<BrokerServer, 'connectionCount' | 'consumerCount' | 'connectionFlow'>;
  readonly groupHost: GroupHost;
  readonly gossip: GossipService | undefined;
  readonly peers: PeerProbe;
  readonly stages: StageRecorder;
}

/** A scrape's body in Prometheus' text format. */
export type MetricsText = () => Promise<string>;

/** What a per-object scrape asks for: the queues of these vhosts only (all when absent). */
export interface PerObjectFilter {
  readonly vhosts?: ReadonlySet<string>;
}

export interface NodeMetrics {
  /** /metrics: node families plus queue families summed over the queues this node reports. */
  readonly aggregated: MetricsText;
  /** /metrics/per-object: node families plus one sample per queue and Raft group (of the vhosts asked for). */
  readonly perObject: (filter?: PerObjectFilter) => Promise<string>;
  readonly contentType: string;
}

const amqp = { protocol: 'amqp091' } as const;

export function createNodeMetrics(node: ObservedNode): NodeMetrics {
  const nodeOnly = new Registry();
  registerAll([nodeOnly], [...identityFamilies(node), ...brokerFamilies(node), ...raftFamilies(node), ...peerFamilies(node), ...alarmFamilies(node), ...stageFamilies(node)]);
  // Process CPU, RSS, heap, file descriptors, GC and event-loop lag, as prom-client measures them.
  collectDefaultMetrics({ register: nodeOnly, prefix: 'espresso_' });
  const queues = new Registry();
  registerAll([queues], aggregatedQueueFamilies(node));
  // How long the previous render of each path took here (what a scrape costs this node, not the wire).
  const renderMs = { aggregated: 0, perObject: 0 };
  registerAll([nodeOnly], [{
    name: 'espresso_metrics_render_seconds', help: 'time this node took to build the previous answer of each metrics path', type: 'gauge',
    read: () => [{ labels: { path: '/metrics' }, value: renderMs.aggregated / 1000 }, { labels: { path: '/metrics/per-object' }, value: renderMs.perObject / 1000 }],
  }]);
  const timed = <A extends unknown[]>(which: keyof typeof renderMs, render: (...a: A) => Promise<string>) => async (...a: A): Promise<string> => {
    const startedMs = performance.now();
    const text = await render(...a);
    renderMs[which] = performance.now() - startedMs;
    return text;
  };
  return {
    aggregated: timed('aggregated', async () => `${await nodeOnly.metrics()}\n${await queues.metrics()}`),
    perObject: timed('perObject', async (filter?: PerObjectFilter) => `${await nodeOnly.metrics()}\n${perObjectQueueText(node, filter?.vhosts)}`),
    contentType: nodeOnly.contentType,
  };
}

const counter = (name: string, help: string, read: () => number, labels?: Record<string, string>): ReadMetricSpec =>
  ({ name, help, type: 'counter', read: () => one(read(), labels) });
const gauge = (name: string, help: string, read: () => number, labels?: Record<string, string>): ReadMetricSpec =>
  ({ name, help, type: 'gauge', read: () => one(read(), labels) });

function identityFamilies(node: ObservedNode): ReadMetricSpec[] {
  return [
    gauge('espresso_build_info', 'espresso and Node.js versions', () => 1, { version: node.version, nodejs_version: process.version }),
    gauge('espresso_identity_info', 'the node this is', () => 1, { espresso_node: node.nodeId }),
  ];
}

function brokerFamilies(node: ObservedNode): ReadMetricSpec[] {
  const c = node.context.counters;
  const g = 'espresso_global_messages_';
  return [
    gauge('espresso_connections', 'AMQP connections open on this node', () => node.broker.connectionCount()),
    gauge('espresso_channels', 'AMQP channels open on this node', () => c.channelsOpened - c.channelsClosed),
    gauge('espresso_consumers', 'consumers on this node\'s channels', () => node.broker.consumerCount()),
    counter('espresso_connections_opened_total', 'AMQP connections accepted', () => c.connectionsOpened),
    counter('espresso_connections_closed_total', 'AMQP connections gone', () => c.connectionsClosed),
    counter('espresso_channels_opened_total', 'channels opened', () => c.channelsOpened),
    counter('espresso_channels_closed_total', 'channels closed', () => c.channelsClosed),
    counter(`${g}received_total`, 'basic.publish received', () => c.messagesReceived, amqp),
    counter(`${g}received_confirm_total`, 'basic.publish received on channels in confirm mode', () => c.messagesReceivedConfirm, amqp),
    counter(`${g}routed_total`, 'publishes routed to at least one queue', () => c.messagesRouted, amqp),
    counter(`${g}unroutable_dropped_total`, 'unroutable publishes dropped', () => c.messagesUnroutableDropped, amqp),
    counter(`${g}unroutable_returned_total`, 'unroutable mandatory publishes returned', () => c.messagesUnroutableReturned, amqp),
    counter(`${g}confirmed_total`, 'publisher confirms (basic.ack) sent, one per message', () => c.messagesConfirmed, amqp),
    counter(`${g}nacked_total`, 'publishes refused with basic.nack (overflow reject-publish)', () => c.messagesNacked, amqp),
    counter(`${g}delivered_total`, 'messages delivered to consumers and basic.get', () =>
      c.deliveredConsumeManualAck + c.deliveredConsumeAutoAck + c.deliveredGetManualAck + c.deliveredGetAutoAck, amqp),
    counter(`${g}delivered_consume_manual_ack_total`, 'deliveries to consumers with manual acks', () => c.deliveredConsumeManualAck, amqp),
    counter(`${g}delivered_consume_auto_ack_total`, 'deliveries to no-ack consumers', () => c.deliveredConsumeAutoAck, amqp),
    counter(`${g}delivered_get_manual_ack_total`, 'basic.get with manual ack answered with a message', () => c.deliveredGetManualAck, amqp),
    counter(`${g}delivered_get_auto_ack_total`, 'basic.get no-ack answered with a message', () => c.deliveredGetAutoAck, amqp),
    counter(`${g}redelivered_total`, 'deliveries with redelivered=true', () => c.messagesRedelivered, amqp),
    counter(`${g}acknowledged_total`, 'messages acknowledged by consumers', () => c.messagesAcknowledged, amqp),
    counter(`${g}get_empty_total`, 'basic.get answered get-empty', () => c.getEmpty, amqp),
    {
      name: 'espresso_connections_state', help: 'AMQP connections by flow state: running, flow (held by credit flow), blocked (by an alarm)', type: 'gauge',
      read: () => {
        const n = { running: 0, flow: 0, blocked: 0 };
        for (const f of node.broker.connectionFlow()) n[f.state]++;
        return Object.entries(n).map(([state, value]) => ({ labels: { state }, value }));
      },
    },
    {
      name: 'espresso_direct_reply_to_replies_total', help: 'direct reply-to replies published or received here, by what became of them', type: 'counter',
      read: () => {
        const r = node.context.replies.stats;
        return [
          { labels: { outcome: 'delivered' }, value: r.delivered }, { labels: { outcome: 'forwarded' }, value: r.forwarded },
          { labels: { outcome: 'dropped' }, value: r.dropped }, { labels: { outcome: 'returned' }, value: r.returned },
        ];
      },
    },
    {
      name: 'espresso_message_confirm_latency_seconds', help: 'publish received to basic.ack sent, every confirmed message', type: 'histogram',
      read: () => histogramSamples('espresso_message_confirm_latency_seconds', c.confirmSeconds),
    },
  ];
}

function raftFamilies(node: ObservedNode): ReadMetricSpec[] {
  const host = node.groupHost;
  const wal = (): ReturnType<GroupHost['stats']>['wal'] => host.stats().wal;
  const fsync = host.fsyncHistograms();
  return [
    gauge('espresso_raft_groups', 'Raft groups hosted on this node (metadata and queue replicas)', () => host.groupCount()),
    gauge('espresso_raft_groups_led', 'Raft groups this node leads', () => host.leaderCount()),
    counter('espresso_raft_cycles_total', 'Ready cycles of the group host', () => host.stats().cycles),
    counter('espresso_raft_entries_persisted_total', 'log entries written by this node', () => host.stats().entriesPersisted),
    counter('espresso_raft_entries_applied_total', 'log entries applied on this node', () => host.stats().entriesApplied),
    hist('espresso_raft_cycle_seconds', 'one Ready cycle for all groups: persist, send, fdatasync, apply', () => host.cycleSeconds),
    hist('espresso_raft_wal_fsync_seconds', 'fdatasync of the write-ahead log', () => fsync.seconds),
    hist('espresso_raft_wal_entries_per_fsync', 'log records made durable by one fdatasync', () => fsync.records),
    hist('espresso_raft_wal_bytes_per_fsync', 'bytes made durable by one fdatasync', () => fsync.bytes),
    counter('espresso_raft_wal_fsyncs_total', 'fdatasyncs of the write-ahead log', () => wal().fsyncs),
    counter('espresso_raft_wal_entries_total', 'records written to the write-ahead log', () => wal().recordsWritten),
    counter('espresso_raft_wal_bytes_written_total', 'bytes written to the write-ahead log', () => wal().bytesWritten),
    gauge('espresso_raft_wal_segments', 'segment files of the write-ahead log', () => wal().segments),
    gauge('espresso_raft_wal_disk_bytes', 'bytes of the write-ahead log on disk', () => wal().diskBytes),
  ];
}

function hist(name: string, help: string, h: () => import('../lib/histogram.js').BucketHistogram): ReadMetricSpec {
  return { name, help, type: 'histogram', read: () => histogramSamples(name, h()) };
}

function peerFamilies(node: ObservedNode): ReadMetricSpec[] {
  const perPeer = (read: (s: ReturnType<GroupHost['transport']['stats']> extends Map<unknown, infer S> ? S : never) => number): () => Sample[] => () => {
    const out: Sample[] = [];
    for (const [peer, s] of node.groupHost.transport.stats()) if (!peer.startsWith('ctl-')) out.push({ labels: { peer }, value: read(s) });
    return out;
  };
  return [
    { name: 'espresso_peer_up', help: '1 while the cluster stream with the peer is up', type: 'gauge', read: perPeer((s) => (s.up ? 1 : 0)) },
    { name: 'espresso_peer_sent_bytes_total', help: 'bytes sent to the peer over gRPC', type: 'counter', read: perPeer((s) => s.bytesSent) },
    { name: 'espresso_peer_received_bytes_total', help: 'bytes received from the peer over gRPC', type: 'counter', read: perPeer((s) => s.bytesReceived) },
    { name: 'espresso_peer_dropped_items_total', help: 'items for the peer dropped (peer down, queue full)', type: 'counter', read: perPeer((s) => s.itemsDropped) },
    {
      name: 'espresso_peer_rtt_seconds', help: 'round trip of a ping over the cluster stream, last measured', type: 'gauge',
      read: () => [...node.peers.rttMs()].map(([peer, ms]) => ({ labels: { peer }, value: ms / 1000 })),
    },
    {
      name: 'espresso_cluster_member_status', help: 'gossip (SWIM) view of each other member: 1 for its status now', type: 'gauge',
      read: () => (node.gossip?.members() ?? []).filter((m) => m.nodeId !== node.nodeId).map((m) => ({ labels: { member: m.nodeId, status: m.status }, value: 1 })),
    },
  ];
}

function alarmFamilies(node: ObservedNode): ReadMetricSpec[] {
  const ctx = node.context;
  return [
    gauge('espresso_alarms_memory_used_watermark', '1 while memory in use is above the memory high watermark', () => (ctx.memoryAlarm ? 1 : 0)),
    gauge('espresso_memory_used_bytes', 'memory in use as the memory alarm measures it: V8 heap in use plus buffers (not RSS)', liveMemoryBytes),
    gauge('espresso_alarms_free_disk_space_watermark', '1 while free disk is below the limit or the log cannot write', () => (ctx.diskAlarm ? 1 : 0)),
    gauge('espresso_resident_memory_limit_bytes', 'memory high watermark (0 = off)', () => ctx.config.memoryHighWatermarkBytes),
    gauge('espresso_disk_space_available_limit_bytes', 'free disk limit (0 = off)', () => ctx.config.diskFreeLimitBytes),
    // One statfs (a few us), read in line so a scrape is one synchronous pass.
    gauge('espresso_disk_space_available_bytes', 'free bytes on the file system of the data directory', () => {
      try {
        const s = statfsSync(ctx.config.dataDir);
        return s.bavail * s.bsize;
      } catch {
        return Number.NaN;
      }
    }),
    // Cumulative, so any number of scrapers get utilisation as rate(active) / (rate(active) + rate(idle)).
    counter('espresso_event_loop_active_seconds_total', 'time the event loop spent running callbacks', () => performance.eventLoopUtilization().active / 1000),
    counter('espresso_event_loop_idle_seconds_total', 'time the event loop spent waiting for I/O', () => performance.eventLoopUtilization().idle / 1000),
  ];
}

function stageFamilies(node: ObservedNode): ReadMetricSpec[] {
  const s = node.stages;
  return [
    {
      name: 'espresso_message_stage_seconds', help: 'sampled messages: time from the previous stage of their path to this one', type: 'histogram',
      read: () => {
        const out: Sample[] = [];
        for (let st: number = Stage.routed; st < stageCount; st++) {
          if (s.stageSeconds[st]!.count > 0) histogramSamples('espresso_message_stage_seconds', s.stageSeconds[st]!, { stage: stageNames[st]! }, out);
        }
        return out;
      },
    },
    hist('espresso_message_end_to_end_latency_seconds', 'sampled messages: publish received to delivered to a consumer', () => s.endToEndSeconds),
    gauge('espresso_message_trace_sample_every', 'one publish in this many is traced (0 = off)', () => s.sampleEvery),
  ];
}
