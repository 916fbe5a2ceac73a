// Publisher flow control (RabbitMQ's connection state 'flow'): which queues a connection's
// publishes have backed up, and when they have drained enough for it to be read again.
// A queue is backed up when it has consumers and more ready messages than they can take in
// flight by `flowReadyHighMessages`; a queue without consumers is a legitimate backlog and
// never holds a publisher back (only the memory alarm does).

import { limits } from './limits.js';
import type { QueueBackend, QueueStats } from './queue-backend.js';

/** Ready messages beyond the consumers' prefetch are growing faster than they are taken. */
export function isBackedUp(stats: QueueStats): boolean {
  return stats.consumers > 0 && stats.messagesReady > limits.flowReadyHighMessages;
}

/** Low mark (hysteresis): resume once the queue is down to it, or has lost its consumers. */
export function hasDrained(stats: QueueStats): boolean {
  return stats.consumers === 0 || stats.messagesReady <= limits.flowReadyLowMessages;
}

/** A connection in flow, as the other connections of the node see it. */
export interface FlowParty {
  /** Does this connection consume from `queue`? */
  consumes(queue: QueueBackend): boolean;
}

/** The queues holding one connection in flow. */
export class PublisherFlow {
  private readonly holding = new Set<QueueBackend>();
  private lastReady = Number.POSITIVE_INFINITY;
  /** Times this connection entered flow (for metrics and tests). */
  pauses = 0;

  get active(): boolean {
    return this.holding.size > 0;
  }

  /**
   * After a publish reached `queue`: true when this publish put the connection into flow.
   * `consumedHere` exempts queues this same connection consumes from: not reading it would
   * also stop reading the acks that drain the queue.
   */
  published(queue: QueueBackend, consumedHere: (queue: QueueBackend) => boolean): boolean {
    if (this.holding.has(queue)) return false;
    const stats = queue.stats();
    if (!isBackedUp(stats) || consumedHere(queue)) return false;
    const entered = this.holding.size === 0;
    this.holding.add(queue);
    if (entered) this.pauses++;
    this.lastReady = (entered ? 0 : this.lastReady) + stats.messagesReady;
    return entered;
  }

  /**
   * Forgets queues that have drained. 'drained': none holds the connection any more;
   * 'moving': the holding queues' ready total fell since the last look; 'stalled': it did not
   * (the caller looks less often, so a consumer stuck for good costs few wake-ups).
   */
  recheck(): 'drained' | 'moving' | 'stalled' {
    let ready = 0;
    for (const q of [...this.holding]) {
      const stats = q.stats();
      if (hasDrained(stats)) this.holding.delete(q);
      else ready += stats.messagesReady;
    }
    if (this.holding.size === 0) return 'drained';
    const moving = ready < this.lastReady;
    this.lastReady = ready;
    return moving ? 'moving' : 'stalled';
  }

  /** Is any holding queue consumed by `party`? */
  heldBy(party: FlowParty): boolean {
    for (const q of this.holding) if (party.consumes(q)) return true;
    return false;
  }

  clear(): void {
    this.holding.clear();
    this.lastReady = Number.POSITIVE_INFINITY;
  }
}
