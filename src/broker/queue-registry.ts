// The node's live queues by vhost and name: creates a backend when metadata says a queue exists,
// drops it when metadata deletes it, and routes queue events (server-side cancels, x-expires) to
// channels and back to metadata.

import type { Logger } from '../lib/log.js';
import type { Clock } from '../lib/random.js';
import { queueSettings, type QueueRecord } from '../model/index.js';
import { defaultQueueConfig } from '../queue/index.js';
import { LocalQueue } from './local-queue.js';
import type { MetadataClient } from './metadata-client.js';
import type { DeadLetterSink, QueueBackend, QueueEvent } from './queue-backend.js';
import { wireFieldValues } from './field-values.js';

/** What a channel exposes so queue events can reach it. */
export interface CancelTarget {
  serverCancel(consumerTag: string): void;
}

export class QueueRegistry {
  private readonly queues = new Map<string, QueueBackend>();
  /** Channels by their owner id (node/connection/channel), for server-sent basic.cancel. */
  readonly channels = new Map<string, CancelTarget>();
  /** Queues with an exclusive consumer, and the channel holding it. */
  readonly exclusiveConsumer = new Map<QueueBackend, string>();

  constructor(
    private readonly metadata: MetadataClient,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly deadLetterSink: (vhost: string) => DeadLetterSink,
  ) {}

  private key(vhost: string, name: string): string {
    return `${vhost}\u0000${name}`;
  }

  get(vhost: string, name: string): QueueBackend | undefined {
    return this.queues.get(this.key(vhost, name));
  }

  /** The backend of a queue metadata knows, created on first use. */
  ensure(record: QueueRecord): QueueBackend {
    const key = this.key(record.vhost, record.name);
    const existing = this.queues.get(key);
    if (existing !== undefined) return existing;
    const s = queueSettings(this.metadata.state, record.vhost, record.name);
    const config = s === undefined ? defaultQueueConfig : {
      messageTtlMs: s.messageTtlMs, expiresMs: s.expiresMs, maxLength: s.maxLength, maxLengthBytes: s.maxLengthBytes,
      overflow: s.overflow, deadLetter: s.deadLetter, maxPriority: s.maxPriority,
      singleActiveConsumer: s.singleActiveConsumer, deliveryLimit: s.deliveryLimit, consumerTimeoutMs: s.consumerTimeoutMs,
    };
    const queue = new LocalQueue({
      name: record.name,
      config,
      clock: this.clock,
      deadLetterExchange: s?.deadLetterExchange ?? null,
      deadLetterRoutingKey: s?.deadLetterRoutingKey ?? null,
      onDeadLetter: this.deadLetterSink(record.vhost),
      fieldValues: wireFieldValues,
    });
    this.queues.set(key, queue);
    queue.onEvent((event) => this.onEvent(record, queue, event));
    return queue;
  }

  private onEvent(record: QueueRecord, queue: QueueBackend, event: QueueEvent): void {
    if (event.type === 'consumerCancelled') {
      this.channels.get(event.channel)?.serverCancel(event.consumerTag);
      return;
    }
    if (event.reason !== 'expired') return;
    this.logger.info('queue expired', { vhost: record.vhost, queue: record.name });
    void this.metadata.apply({
      kind: 'deleteQueue', vhost: record.vhost, name: record.name, ifUnused: false, ifEmpty: false,
      consumerCount: 0, messageCount: 0, connection: null,
    }).then((r) => {
      if (r.ok) this.dropDeleted(r.deletedQueues);
    });
    this.queues.delete(this.key(record.vhost, record.name));
    void queue;
  }

  /** Metadata deleted these queues: delete their backends (which cancel their consumers). */
  dropDeleted(records: readonly QueueRecord[]): number {
    let messages = 0;
    for (const r of records) {
      const key = this.key(r.vhost, r.name);
      const q = this.queues.get(key);
      if (q === undefined) continue;
      this.queues.delete(key);
      this.exclusiveConsumer.delete(q);
      messages += q.stats().messagesReady;
      void q.delete();
    }
    return messages;
  }

  closeAll(): void {
    for (const q of this.queues.values()) void q.delete();
    this.queues.clear();
  }
}
