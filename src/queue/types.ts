// The queue state machine's vocabulary: configuration, commands (what a log entry asks), meta
// (what the log says about the entry) and effects (what the edge must do). All plain data.

import type { EnqueueIdentity } from './dedup.js';
export type { EnqueueIdentity };

/**
 * Id of a message inside one queue: the log index of its enqueue command (replicated queues) or
 * the local sequence number (local queues). Unique within the queue for its whole life.
 */
export type MsgId = number;

/** Key of a consumer: the index of the command that registered it (small, unique, ordered). */
export type ConsumerKey = number;

/**
 * Who holds a consumer or a message taken by basic.get. `channel` must be unique across the
 * cluster (the broker composes it, e.g. `node/connection/channel-number`), and likewise
 * `connection`; a down command names one of the three scopes.
 */
export interface Owner {
  readonly node: string;
  readonly connection: string;
  readonly channel: string;
}

export type DownScope = 'channel' | 'connection' | 'node';

export type Overflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';

/** Why a message leaves the queue for the dead-letter exchange (RabbitMQ's x-death reasons). */
export type DeadLetterReason = 'rejected' | 'expired' | 'maxlen' | 'delivery_limit';

/** Why the queue cancelled a consumer on its own (the broker sends basic.cancel). */
export type CancelReason = 'timeout' | 'deleted' | 'limit';

/**
 * Queue arguments as the state machine uses them, already validated by the broker. `null`
 * means "not set" (no limit). Durations are ms, sizes bytes.
 */
export interface QueueConfig {
  readonly messageTtlMs: number | null;
  readonly expiresMs: number | null;
  readonly maxLength: number | null;
  readonly maxLengthBytes: number | null;
  readonly overflow: Overflow;
  /** x-dead-letter-exchange is set: dead-lettered messages go to the edge, else they are dropped. */
  readonly deadLetter: boolean;
  /** x-max-priority; 0 = no priorities (every message at level 0). Clamped to 31. */
  readonly maxPriority: number;
  readonly singleActiveConsumer: boolean;
  /** Failed deliveries allowed before dead-lettering ('delivery_limit'); null = unlimited. */
  readonly deliveryLimit: number | null;
  /** x-consumer-timeout: a consumer holding a message longer than this is cancelled. */
  readonly consumerTimeoutMs: number | null;
}

export const defaultQueueConfig: QueueConfig = {
  messageTtlMs: null,
  expiresMs: null,
  maxLength: null,
  maxLengthBytes: null,
  overflow: 'drop-head',
  deadLetter: false,
  maxPriority: 0,
  singleActiveConsumer: false,
  deliveryLimit: null,
  consumerTimeoutMs: null,
};

/** What the log says about a command: its index and the leader's timestamp (ms since epoch). */
export interface CommandMeta {
  readonly index: number;
  readonly timeMs: number;
}

/**
 * 'auto': credit refills on settle/return up to `prefetch` (0 = unlimited): basic.qos per consumer.
 * 'granted': credit only through credit commands: how the broker implements channel-wide
 * (global) prefetch across queues.
 */
export type CreditMode = 'auto' | 'granted';

export interface EnqueueCommand {
  readonly type: 'enqueue';
  readonly sizeBytes: number;
  /** The message's priority property (0 if absent); clamped to the queue's levels. */
  readonly priority: number;
  /** Per-message TTL from the `expiration` property, ms; null if absent. */
  readonly ttlMs: number | null;
  /**
   * Replicated enqueues that may be retried: a repeat of an applied identity stores nothing and
   * is answered accepted again. Absent for local queues (never retried).
   */
  readonly dedup?: EnqueueIdentity;
}

export interface RegisterCommand {
  readonly type: 'register';
  readonly owner: Owner;
  readonly tag: string;
  readonly creditMode: CreditMode;
  /** 'auto' mode: the prefetch count (0 = unlimited). 'granted' mode: the initial credit. */
  readonly prefetch: number;
  /** x-priority of the consumer: higher is served first. */
  readonly priority: number;
  /** no-ack consumer: a delivered message is settled at once. */
  readonly noAck: boolean;
}

export type Command =
  | EnqueueCommand
  | RegisterCommand
  | { readonly type: 'cancel'; readonly consumerKey: ConsumerKey }
  | { readonly type: 'credit'; readonly consumerKey: ConsumerKey; readonly credit: number; readonly mode: 'add' | 'set' }
  | { readonly type: 'settle'; readonly channel: string; readonly msgIds: readonly MsgId[] }
  | { readonly type: 'return'; readonly channel: string; readonly msgIds: readonly MsgId[] }
  | { readonly type: 'discard'; readonly channel: string; readonly msgIds: readonly MsgId[] }
  | { readonly type: 'down'; readonly scope: DownScope; readonly id: string }
  | { readonly type: 'purge' }
  | { readonly type: 'get'; readonly owner: Owner; readonly noAck: boolean }
  | { readonly type: 'tick' }
  /** Activity that keeps an x-expires queue alive (redeclare). */
  | { readonly type: 'touch' }
  | { readonly type: 'config'; readonly config: QueueConfig }
  | { readonly type: 'delete' };

export type CommandType = Command['type'];

/**
 * Effects, in the order the edge must carry them out (a deliver before the dropped that
 * releases the same body). Ids in deadLetter have left the queue: the edge republishes their
 * bodies and then releases them; ids in dropped can be released at once.
 */
export type Effect =
  | { readonly type: 'deliver'; readonly consumerKey: ConsumerKey; readonly msgId: MsgId; readonly redelivered: boolean; readonly deliveryCount: number }
  /** duplicate: a retried enqueue applied before; nothing is stored under msgId (release its body). */
  | { readonly type: 'enqueueResult'; readonly msgId: MsgId; readonly outcome: 'accepted' | 'rejected'; readonly duplicate?: true }
  | { readonly type: 'deadLetter'; readonly msgIds: readonly MsgId[]; readonly reason: DeadLetterReason }
  | { readonly type: 'dropped'; readonly msgIds: readonly MsgId[] }
  /**
   * The queue ended a consumer on its own. It names the consumer's owner and tag because the
   * holder may already be gone from the state when the edge carries this out (a delete clears
   * every holder), and a consumer on another node is found by them.
   */
  | { readonly type: 'consumerCancelled'; readonly consumerKey: ConsumerKey; readonly reason: CancelReason; readonly owner: Owner; readonly tag: string }
  /** Ask for a tick command at this time (replaces any earlier request; null = none needed). */
  | { readonly type: 'timer'; readonly atMs: number | null }
  | { readonly type: 'queueExpired' }
  | { readonly type: 'getResult'; readonly msgId: MsgId; readonly redelivered: boolean; readonly deliveryCount: number; readonly remaining: number }
  | { readonly type: 'getEmpty' }
  | { readonly type: 'purged'; readonly count: number }
  | { readonly type: 'deleted'; readonly count: number };

export type EffectType = Effect['type'];

/**
 * What went through the queue since this state was created or restored (a snapshot restarts them:
 * Prometheus reads that as a counter reset). Every replica counts the same, from the same log.
 */
export interface QueueTotals {
  /** Enqueues accepted (duplicates of a retried enqueue and rejected ones not counted). */
  published: number;
  /** Handed to a consumer or a basic.get, first time or again. */
  delivered: number;
  redelivered: number;
  /** Settled by an ack (no-ack deliveries are not). */
  acked: number;
  deadLettered: number;
}

export interface QueueCounters {
  readonly ready: number;
  readonly readyBytes: number;
  readonly unacked: number;
  readonly unackedBytes: number;
  readonly consumers: number;
}
