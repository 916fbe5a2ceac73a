// The narrow interface the AMQP channel code uses for any queue: local (in-process, now) or
// replicated (a Raft group, later). The channel code never sees which one it talks to.
//
// Ordering and promises: calls made by one caller are applied in call order. A promise resolves
// when the operation counts: applied locally for a local queue, committed by a majority and
// applied for a replicated one. Deliveries reach the consumer's sink in the queue's order and
// may arrive before the promise of the call that caused them resolves.

import type { MessageTrace } from '../lib/trace.js';
import type { DownScope, MsgId, Owner, QueueCounters } from '../queue/types.js';

export type { DownScope, MsgId, Owner } from '../queue/types.js';

/**
 * AMQP basic properties as the codec decodes them. The queue reads only `expiration`
 * (per-message TTL, a decimal string of ms), `priority` and `headers` (dead-lettering writes
 * x-death there); everything else is carried untouched. Field-table values are whatever the
 * codec produces (typed values); the queue treats them as opaque except in dead-lettering.
 */
export interface MessageProperties {
  readonly expiration?: string | undefined;
  readonly priority?: number | undefined;
  readonly headers?: Readonly<Record<string, unknown>> | undefined;
  readonly [property: string]: unknown;
}

/** One published message as a queue stores it (the same object may sit in several queues). */
export interface StoredMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: MessageProperties;
  /**
   * The content header's property bytes as received, for byte-exact relay; undefined when the
   * properties were changed (dead-lettering rewrites headers), so the broker re-encodes them.
   */
  readonly rawProperties?: Buffer | undefined;
  readonly body: Buffer;
}

export type EnqueueOutcome = 'ok' | 'rejected';

/** A message handed to a consumer. `msgId` is what settle/requeue/discard take back. */
export interface Delivery {
  readonly consumerTag: string;
  readonly msgId: MsgId;
  readonly message: StoredMessage;
  readonly redelivered: boolean;
  /** Failed deliveries so far (x-delivery-count on redelivery; 0 on first delivery). */
  readonly deliveryCount: number;
  /** A sampled message's stage trace, on its first delivery (src/lib/trace.ts). */
  readonly trace?: MessageTrace | undefined;
}

/** Receives deliveries for one consumer, synchronously, in queue order. Must not throw. */
export type DeliverySink = (delivery: Delivery) => void;

export interface ConsumeRequest {
  readonly owner: Owner;
  /** Unique per channel (the broker generates amq.ctag-... when the client sent none). */
  readonly consumerTag: string;
  readonly noAck: boolean;
  /**
   * 'auto': at most `prefetch` unacked messages (0 = unlimited), refilled on settle: basic.qos
   * per consumer. 'granted': the consumer gets messages only for credit granted by `credit()`
   * (`prefetch` is the initial credit): for channel-wide global prefetch across queues.
   */
  readonly creditMode: 'auto' | 'granted';
  readonly prefetch: number;
  /** x-priority argument of basic.consume (0 if absent). */
  readonly priority: number;
}

export interface GetResponse {
  readonly msgId: MsgId;
  readonly message: StoredMessage;
  readonly redelivered: boolean;
  readonly deliveryCount: number;
  /** Ready messages left after this one (basic.get-ok message-count). */
  readonly messageCount: number;
}

export interface QueueStats {
  readonly messagesReady: number;
  readonly messagesUnacked: number;
  readonly bytesReady: number;
  readonly bytesUnacked: number;
  readonly consumers: number;
}

export type QueueEvent =
  /** The queue cancelled a consumer on its own: send basic.cancel (consumer_cancel_notify). */
  | { readonly type: 'consumerCancelled'; readonly channel: string; readonly consumerTag: string; readonly reason: 'timeout' | 'deleted' | 'limit' }
  /** The queue is gone (x-expires ran out, or delete()): forget it; its consumers were cancelled. */
  | { readonly type: 'queueDeleted'; readonly reason: 'expired' | 'deleted' };

export interface QueueBackend {
  readonly name: string;

  /**
   * Store a message. 'rejected' = refused by x-overflow reject-publish(-dlx): nack a confirm.
   * `trace`: a sampled message's stage trace, stamped on its way (forwarded, proposed, ... applied).
   */
  enqueue(message: StoredMessage, trace?: MessageTrace): Promise<EnqueueOutcome>;

  /** Register a consumer; deliveries go to `sink`. Resolves once registered. */
  consume(request: ConsumeRequest, sink: DeliverySink): Promise<void>;
  /** basic.cancel. The consumer's unacked messages stay with its channel until settled or down. */
  cancel(channel: string, consumerTag: string): Promise<void>;
  /** 'granted' consumers: add to (or set) the credit; 'auto' consumers ignore it. */
  credit(channel: string, consumerTag: string, credit: number, mode: 'add' | 'set'): Promise<void>;

  /** basic.ack of these ids, held by this channel (ids not held by it are ignored). */
  settle(channel: string, msgIds: readonly MsgId[]): Promise<void>;
  /** nack/reject with requeue=true, basic.recover: back to the queue, redelivered=true. */
  requeue(channel: string, msgIds: readonly MsgId[]): Promise<void>;
  /** nack/reject with requeue=false: dead-lettered ('rejected') or dropped. */
  discard(channel: string, msgIds: readonly MsgId[]): Promise<void>;

  /** basic.get; null = get-empty. With noAck=false the message is held by owner.channel. */
  get(owner: Owner, noAck: boolean): Promise<GetResponse | null>;
  /** queue.purge: removes ready messages, returns how many. */
  purge(): Promise<number>;
  /** queue.delete: cancels every consumer, returns the number of messages deleted. */
  delete(): Promise<number>;
  /** A channel, connection or node went away: its consumers go, its messages return. */
  down(scope: DownScope, id: string): Promise<void>;
  /** queue.declare of an existing queue: counts as use for x-expires. */
  touch(): void;

  /** Counters as of the last applied command (synchronous, cheap). */
  stats(): QueueStats;
  /**
   * A queue that lives on another node: touch() there, answering its counters now (declare-ok,
   * delete-ok); stats() is only as fresh as the last answer from there. Absent: stats() is current.
   */
  refresh?(): Promise<QueueStats>;
  /** Subscribe to server-side events; returns the unsubscribe function. */
  onEvent(listener: (event: QueueEvent) => void): () => void;
}

export function statsFromCounters(counters: QueueCounters): QueueStats {
  return {
    messagesReady: counters.ready,
    messagesUnacked: counters.unacked,
    bytesReady: counters.readyBytes,
    bytesUnacked: counters.unackedBytes,
    consumers: counters.consumers,
  };
}

/**
 * A message leaving a queue for its dead-letter exchange, ready to route: headers already carry
 * x-death (src/queue/dead-letter.ts) and `expiration` is removed. The broker publishes it to
 * `exchange` with each of `routingKeys` (the queue's x-dead-letter-routing-key, else the
 * original routing key and CC keys), drops it if the exchange does not exist, and skips target
 * queues that would close a cycle (isDeadLetterCycle in src/queue/dead-letter.ts).
 */
export interface DeadLetteredMessage {
  readonly queue: string;
  readonly reason: 'rejected' | 'expired' | 'maxlen' | 'delivery_limit';
  readonly exchange: string;
  readonly routingKeys: readonly string[];
  readonly message: StoredMessage;
}

/** Provided by the broker; called synchronously, must not throw and must not call back in. */
export type DeadLetterSink = (message: DeadLetteredMessage) => void;
