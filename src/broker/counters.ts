// The broker's counters for metrics, kept as plain numbers where things happen (a publish, a
// delivery, an ack) and read when /metrics is scraped; and the hook through which 1 in N
// publishes carries a stage trace (src/lib/trace.ts) to the metrics layer. Nothing here allocates
// per message.

import { BucketHistogram, latencyBucketsSeconds } from '../lib/histogram.js';
import type { MessageTrace } from '../lib/trace.js';

/** Names follow RabbitMQ's global counters (rabbitmq_global_messages_*), see the README. */
export interface BrokerCounters {
  connectionsOpened: number;
  connectionsClosed: number;
  channelsOpened: number;
  channelsClosed: number;
  /** basic.publish received, and those on channels in confirm mode. */
  messagesReceived: number;
  messagesReceivedConfirm: number;
  /** Routed to at least one queue (or a direct reply-to consumer). */
  messagesRouted: number;
  messagesUnroutableDropped: number;
  messagesUnroutableReturned: number;
  /** basic.ack / basic.nack sent to publishers (one per message, however coalesced). */
  messagesConfirmed: number;
  messagesNacked: number;
  deliveredConsumeManualAck: number;
  deliveredConsumeAutoAck: number;
  deliveredGetManualAck: number;
  deliveredGetAutoAck: number;
  messagesRedelivered: number;
  /** Messages acknowledged by consumers (a multiple ack counts each). */
  messagesAcknowledged: number;
  getEmpty: number;
  /** Publish received to basic.ack sent, every confirmed message (seconds). */
  readonly confirmSeconds: BucketHistogram;
}

export function createBrokerCounters(): BrokerCounters {
  return {
    connectionsOpened: 0, connectionsClosed: 0, channelsOpened: 0, channelsClosed: 0,
    messagesReceived: 0, messagesReceivedConfirm: 0, messagesRouted: 0, messagesUnroutableDropped: 0, messagesUnroutableReturned: 0,
    messagesConfirmed: 0, messagesNacked: 0,
    deliveredConsumeManualAck: 0, deliveredConsumeAutoAck: 0, deliveredGetManualAck: 0, deliveredGetAutoAck: 0,
    messagesRedelivered: 0, messagesAcknowledged: 0, getEmpty: 0,
    confirmSeconds: new BucketHistogram(latencyBucketsSeconds),
  };
}

/** Where traced messages go (observe/ implements it; the default records nothing). */
export interface TraceRecorder {
  /** A new trace for one publish in N (received now), undefined for the others. */
  sample(): MessageTrace | undefined;
  /** The publishing side of a traced copy is done: its confirm went out, or without confirms its enqueue was answered. */
  published(trace: MessageTrace): void;
  /** The consuming side is done: its ack's settle was committed, or it went to a no-ack consumer. */
  consumed(trace: MessageTrace): void;
}

export const noTracing: TraceRecorder = {
  sample: () => undefined,
  published: () => undefined,
  consumed: () => undefined,
};
