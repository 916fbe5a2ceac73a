// Where a published or dead-lettered message goes: routing through the metadata (exchanges,
// bindings, alternate exchanges, CC/BCC), then one enqueue per target queue.

import { lookupQueue, route, RouteFailure, type RoutedMessage } from '../model/index.js';
import { isDeadLetterCycle } from '../queue/dead-letter.js';
import type { NodeContext } from './node-context.js';
import type { DeadLetterSink, QueueBackend } from './queue-backend.js';
import { wireFieldValues } from './field-values.js';
import type { FieldTable } from '../amqp/index.js';

/** Backends of the queues a message reaches (each once). */
export function targetQueues(ctx: NodeContext, vhost: string, exchange: string, routingKey: string,
  headers: FieldTable | null, extraKeys: readonly string[] | null, message: RoutedMessage | null = null): QueueBackend[] {
  const names = route(ctx.metadata.state, vhost, exchange, routingKey, headers, extraKeys, message);
  const out: QueueBackend[] = [];
  for (const name of names) {
    const q = ctx.queues.get(vhost, name) ?? ensureFromMetadata(ctx, vhost, name);
    if (q !== undefined) out.push(q);
  }
  return out;
}

function ensureFromMetadata(ctx: NodeContext, vhost: string, name: string): QueueBackend | undefined {
  const record = lookupQueue(ctx.metadata.state, vhost, name);
  return record === undefined ? undefined : ctx.queues.ensure(record);
}

/**
 * Republishes dead-lettered messages of a vhost's queues: to the DLX with each routing key,
 * skipping queues that would close a cycle; a missing DLX drops the message (as RabbitMQ).
 */
export function deadLetterSinkFor(ctx: () => NodeContext, vhost: string): DeadLetterSink {
  return (dl) => {
    const c = ctx();
    const headers = (dl.message.properties.headers ?? null) as FieldTable | null;
    const seen = new Set<QueueBackend>();
    for (const key of dl.routingKeys) {
      let targets: QueueBackend[];
      try {
        targets = targetQueues(c, vhost, dl.exchange, key, headers, null, dl.message);
      } catch (e) {
        // A plugin exchange type failed (counted and logged by the plugin host): dropped, as unroutable.
        if (e instanceof RouteFailure) continue;
        throw e;
      }
      for (const q of targets) {
        if (seen.has(q)) continue;
        seen.add(q);
        if (isDeadLetterCycle(dl.message.properties.headers, q.name, wireFieldValues)) continue;
        // Dead-lettering is at most once here (as RabbitMQ's classic queues): a refused copy is dropped.
        q.enqueue(dl.message).catch(() => undefined);
      }
    }
  };
}
