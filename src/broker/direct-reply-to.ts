// Direct reply-to (amq.rabbitmq.reply-to): a requester channel consumes the pseudo-queue with
// no-ack, its requests carry a rewritten reply-to naming the channel, and replies published to
// that name on any node go straight to the channel: no queue, at most once, dropped (and counted)
// if the channel or its reply consumer is gone. A channel on another node is reached through the
// cluster's ReplyRelay.
//
// The name is `amq.rabbitmq.reply-to.<channel id, base64url>.<key>`: the channel id is
// node/connection/channel, so any node can tell where to send a reply, and the key (16 random
// bytes, base64url, fresh for each reply consumer) must match the channel's current reply
// consumer, so a name outlives neither its consumer nor a channel number reused after a restart.

import { randomBytes } from 'node:crypto';
import type { ReplyRelay, ReplyTargets } from '../cluster/reply-relay.js';
import { nodeId } from '../lib/ids.js';
import type { StoredMessage } from './queue-backend.js';

export const replyToQueue = 'amq.rabbitmq.reply-to';
export const replyToPrefix = 'amq.rabbitmq.reply-to.';

export function isReplyToName(name: string): boolean {
  return name.startsWith(replyToPrefix);
}

/** Where a reply-to name points. */
export interface ReplyAddress {
  readonly node: string;
  /** The channel's id: node/connection/channel. */
  readonly channel: string;
  readonly key: string;
}

const base64url = /^[A-Za-z0-9_-]+$/;
const keyBytes = 16;
/** A channel id longer than this is not one of ours (names stay well inside a 255-byte routing key). */
const channelIdBytesMax = 150;

export function replyName(channel: string, key: string): string {
  return `${replyToPrefix}${Buffer.from(channel, 'utf8').toString('base64url')}.${key}`;
}

/** The address a reply-to name carries, or null for anything that is not exactly such a name (never throws). */
export function parseReplyName(name: string): ReplyAddress | null {
  if (!name.startsWith(replyToPrefix)) return null;
  const rest = name.slice(replyToPrefix.length);
  const dot = rest.indexOf('.');
  if (dot <= 0) return null;
  const encoded = rest.slice(0, dot);
  const key = rest.slice(dot + 1);
  if (!base64url.test(encoded) || !base64url.test(key) || key.length !== 22) return null;
  if (encoded.length > Math.ceil((channelIdBytesMax * 4) / 3)) return null;
  const bytes = Buffer.from(encoded, 'base64url');
  // Only the canonical encoding of valid UTF-8: the decoder skips what it does not understand.
  const channel = bytes.toString('utf8');
  if (bytes.toString('base64url') !== encoded || Buffer.from(channel, 'utf8').toString('base64url') !== encoded) return null;
  const slash = channel.indexOf('/');
  if (slash <= 0 || slash === channel.length - 1) return null;
  return { node: channel.slice(0, slash), channel, key };
}

/** The channel side: receives replies for its reply consumer. */
export interface ReplyTarget {
  /** False when the channel is closing and cannot take it. */
  deliverReply(message: StoredMessage): boolean;
}

/** Plain counters of this node's direct replies, for metrics. */
export interface DirectReplyCounters {
  /** Replies handed to a requester channel on this node. */
  delivered: number;
  /** Replies published here and sent to the requester's node. */
  forwarded: number;
  /** Replies that reached no channel: a name that does not decode, its node, channel or reply consumer gone. */
  dropped: number;
  /** Mandatory replies published here that reached no channel, answered with basic.return. */
  returned: number;
}

export class DirectReplyRegistry implements ReplyTargets {
  private readonly targets = new Map<string, { readonly target: ReplyTarget; readonly key: string }>();
  private relay: ReplyRelay | null = null;
  readonly stats: DirectReplyCounters = { delivered: 0, forwarded: 0, dropped: 0, returned: 0 };

  constructor(private readonly nodeId: string) {}

  /** Replies for channels of other nodes go through `relay` from now on. */
  attachRelay(relay: ReplyRelay): void {
    this.relay = relay;
  }

  /** Registers a channel's reply consumer; returns the reply-to name its requests carry. */
  register(channel: string, target: ReplyTarget): string {
    const key = randomBytes(keyBytes).toString('base64url');
    this.targets.set(channel, { target, key });
    return replyName(channel, key);
  }

  unregister(channel: string): void {
    this.targets.delete(channel);
  }

  /** A reply published here: delivered at once (this node) or sent on; false when known undelivered. */
  send(name: string, message: StoredMessage): boolean {
    const a = parseReplyName(name);
    if (a === null) return this.drop();
    if (a.node === this.nodeId) return this.deliver(a.channel, a.key, message);
    if (this.relay === null || !this.relay.send(nodeId(a.node), a.channel, a.key, message)) return this.drop();
    this.stats.forwarded++;
    return true;
  }

  /** A mandatory reply: true once the requester's channel took it (asks its node when that is another). */
  sendChecked(name: string, message: StoredMessage): boolean | Promise<boolean> {
    const a = parseReplyName(name);
    if (a === null) return this.drop();
    if (a.node === this.nodeId) return this.deliver(a.channel, a.key, message);
    if (this.relay === null) return this.drop();
    this.stats.forwarded++;
    return this.relay.sendChecked(nodeId(a.node), a.channel, a.key, message);
  }

  /** Whether the channel behind a reply-to name still listens (queue.declare of the name). */
  exists(name: string): boolean | Promise<boolean> {
    const a = parseReplyName(name);
    if (a === null) return false;
    if (a.node === this.nodeId) return this.listening(a.channel, a.key);
    return this.relay?.listening(nodeId(a.node), a.channel, a.key) ?? false;
  }

  deliver(channel: string, key: string, message: StoredMessage): boolean {
    const t = this.targets.get(channel);
    if (t === undefined || t.key !== key || !t.target.deliverReply(message)) return this.drop();
    this.stats.delivered++;
    return true;
  }

  listening(channel: string, key: string): boolean {
    return this.targets.get(channel)?.key === key;
  }

  counters(): Readonly<Record<string, number>> {
    return { ...this.stats };
  }

  private drop(): false {
    this.stats.dropped++;
    return false;
  }
}
