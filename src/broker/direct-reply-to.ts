// Direct reply-to (amq.rabbitmq.reply-to): a requester channel consumes the pseudo-queue with
// no-ack, its requests carry a rewritten reply-to naming the channel, and replies published to
// that name go straight to the channel: no queue, at most once, dropped if the channel is gone.

import { randomBytes } from 'node:crypto';
import type { StoredMessage } from './queue-backend.js';

export const replyToQueue = 'amq.rabbitmq.reply-to';
export const replyToPrefix = 'amq.rabbitmq.reply-to.';

/** The channel side: receives replies for its reply consumer. */
export interface ReplyTarget {
  deliverReply(message: StoredMessage): void;
}

export class DirectReplyRegistry {
  private readonly targets = new Map<string, ReplyTarget>();

  /** Registers a channel's reply consumer; returns the reply-to name its requests carry. */
  register(target: ReplyTarget): string {
    const token = randomBytes(16).toString('base64url');
    this.targets.set(token, target);
    return replyToPrefix + token;
  }

  unregister(name: string): void {
    this.targets.delete(name.slice(replyToPrefix.length));
  }

  /** The live channel behind a reply-to name, or undefined (gone or never existed). */
  lookup(name: string): ReplyTarget | undefined {
    if (!name.startsWith(replyToPrefix)) return undefined;
    return this.targets.get(name.slice(replyToPrefix.length));
  }
}

export function isReplyToName(name: string): boolean {
  return name.startsWith(replyToPrefix);
}
