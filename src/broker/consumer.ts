// Consumers of one channel and channel-wide (global) prefetch: consumers created after
// basic.qos(global=true) take messages only for credit the channel grants, so the channel's
// unacked total across all its queues stays within the global limit (RabbitMQ <= 4.2 semantics).

import type { QueueBackend } from './queue-backend.js';

export interface Consumer {
  readonly tag: string;
  readonly queue: QueueBackend;
  readonly queueName: string;
  readonly noAck: boolean;
  readonly exclusive: boolean;
  /** Under the channel's global prefetch ('granted' credit mode). */
  readonly global: boolean;
  /** Per-consumer prefetch in force when it was created (0 = unlimited). */
  readonly prefetch: number;
  /** Credit granted and not yet used (global consumers). */
  granted: number;
  /** Messages delivered and not settled (global consumers). */
  unacked: number;
  /** A no-ack consumer waiting for the socket to drain before it gets more credit. */
  waitingDrain: boolean;
}

/**
 * Hands out free global credit one message at a time, round-robin over global consumers that
 * can take more (per-consumer prefetch respected), preferring consumers whose queue has ready
 * messages so credit does not sit idle on an empty queue. Returns the grants to send.
 */
export function distributeGlobalCredit(consumers: readonly Consumer[], globalPrefetch: number, globalUnacked: number, start: number): Map<Consumer, number> {
  const grants = new Map<Consumer, number>();
  const eligible = consumers.filter((c) => c.global && !c.noAck);
  if (eligible.length === 0 || globalPrefetch <= 0) return grants;
  let outstanding = 0;
  for (const c of eligible) outstanding += c.granted;
  let free = globalPrefetch - globalUnacked - outstanding;
  const withMessages = eligible.filter((c) => c.queue.stats().messagesReady > 0);
  const order = withMessages.length > 0 ? withMessages : eligible;
  let i = start;
  let idle = 0;
  while (free > 0 && idle < order.length) {
    const c = order[i % order.length]!;
    i++;
    const room = c.prefetch === 0 ? Number.POSITIVE_INFINITY : c.prefetch - c.unacked - c.granted - (grants.get(c) ?? 0);
    if (room <= 0) {
      idle++;
      continue;
    }
    idle = 0;
    grants.set(c, (grants.get(c) ?? 0) + 1);
    free--;
  }
  return grants;
}
