// The in-process queue: drives the pure queue state machine directly (no log), keeps bodies in
// a Map by message id (released when the machine says so), and owns the real timer that turns
// TTL, x-expires and consumer timeouts into tick commands. Used for exclusive, auto-delete and
// non-durable queues, on their home node only (other nodes reach it through home-queue.ts), and for
// every queue of a broker without a cluster.

import { assert } from '../lib/assert.js';
import type { Clock } from '../lib/random.js';
import { deadLetter, type FieldValues } from '../queue/dead-letter.js';
import { answerCaller, apply, counters, createQueueState, type Command, type ConsumerKey, type DeadLetterReason, type Effect, type EnqueueIdentity, type MsgId, type QueueConfig, type QueueState, type QueueTotals } from '../queue/index.js';
import { durationMsMax, idsPerCommandMax } from '../queue/limits.js';
import { parseExpiration } from '../queue/expiration.js';
import { realTimers, type QueueTimers } from '../cluster/queue-timers.js';
import { traceNowMs } from '../cluster/trace-clock.js';
import { stamp, Stage, type MessageTrace } from '../lib/trace.js';

/** Traced messages waiting for their first delivery; the oldest is forgotten past it. */
const tracedWaitingMax = 256;
import {
  statsFromCounters,
  type ConsumeRequest, type DeadLetterSink, type DeliverySink, type DownScope, type EnqueueOutcome,
  type GetResponse, type Owner, type QueueBackend, type QueueEvent, type QueueStats, type StoredMessage,
} from './queue-backend.js';

/** The timer functions the queue uses (kept under this name for the broker's tests). */
export type Timers = QueueTimers;

export interface LocalQueueOptions {
  readonly name: string;
  /** `deadLetter` is overridden by whether deadLetterExchange is set. */
  readonly config: QueueConfig;
  readonly clock: Clock;
  /** x-dead-letter-exchange (null = none: dead-lettered messages are dropped). */
  readonly deadLetterExchange: string | null;
  /** x-dead-letter-routing-key (null = keep the original keys). */
  readonly deadLetterRoutingKey: string | null;
  readonly onDeadLetter: DeadLetterSink;
  /** How to make and read header values (the codec's representation). */
  readonly fieldValues: FieldValues;
  readonly timers?: Timers;
}

interface ConsumerEntry {
  readonly tag: string;
  readonly owner: Owner;
  readonly sink: DeliverySink;
}

/** What one command produced for its caller. */
interface Outcome {
  enqueue: EnqueueOutcome;
  get: GetResponse | null;
  count: number;
}

export class LocalQueue implements QueueBackend {
  readonly name: string;
  private readonly state: QueueState;
  private readonly bodies = new Map<MsgId, StoredMessage>();
  private readonly consumers = new Map<ConsumerKey, ConsumerEntry>();
  /** Sampled messages not delivered yet, by id: their trace goes with the delivery. */
  private readonly traced = new Map<MsgId, MessageTrace>();
  private readonly keyByTag = new Map<string, ConsumerKey>();
  private readonly listeners = new Set<(event: QueueEvent) => void>();
  private readonly timers: Timers;
  private readonly pending: Array<() => void> = [];
  private running = false;
  private seq = 0;
  private timer: unknown = undefined;
  /** The dead-letter target: the options' at first, then reconfigure's. */
  private deadLetterExchange: string | null;
  private deadLetterRoutingKey: string | null;

  constructor(private readonly options: LocalQueueOptions) {
    this.name = options.name;
    this.deadLetterExchange = options.deadLetterExchange;
    this.deadLetterRoutingKey = options.deadLetterRoutingKey;
    this.timers = options.timers ?? realTimers;
    const config = { ...options.config, deadLetter: options.deadLetterExchange !== null };
    this.state = createQueueState(config, options.clock.nowMs());
    // An x-expires queue needs its first timer before any command arrives.
    this.run({ type: 'touch' });
  }

  /**
   * `dedup`: the caller's identity of this enqueue (a channel on another node, whose call may be
   * retried); a repeat of one already stored stores nothing and answers 'ok' again.
   */
  enqueue(message: StoredMessage, trace?: MessageTrace, dedup?: EnqueueIdentity): Promise<EnqueueOutcome> {
    return this.call((outcome) => {
      const id = this.seq + 1;
      this.bodies.set(id, message);
      if (trace !== undefined) this.traceUntilDelivered(id, trace);
      const ttlMs = parseExpiration(message.properties.expiration);
      const priority = typeof message.properties.priority === 'number' ? message.properties.priority : 0;
      const sizeBytes = message.body.length;
      this.run(dedup === undefined ? { type: 'enqueue', sizeBytes, priority, ttlMs } : { type: 'enqueue', sizeBytes, priority, ttlMs, dedup }, outcome);
      // Refused (after reject-publish-dlx dead-lettered it, which needs the body): nothing is kept.
      if (outcome.enqueue === 'rejected') {
        this.bodies.delete(id);
        this.traced.delete(id);
      }
      return outcome.enqueue;
    });
  }

  consume(request: ConsumeRequest, sink: DeliverySink): Promise<void> {
    return this.call(() => {
      const tagKey = `${request.owner.channel}\u0000${request.consumerTag}`;
      assert(!this.keyByTag.has(tagKey), 'consumer tag is unique on its channel (the broker checks)');
      const key = this.seq + 1;
      this.consumers.set(key, { tag: request.consumerTag, owner: request.owner, sink });
      this.keyByTag.set(tagKey, key);
      this.run({
        type: 'register', owner: request.owner, tag: request.consumerTag, creditMode: request.creditMode,
        prefetch: request.prefetch, priority: request.priority, noAck: request.noAck,
      });
    });
  }

  cancel(channel: string, consumerTag: string): Promise<void> {
    return this.call(() => {
      const key = this.keyByTag.get(`${channel}\u0000${consumerTag}`);
      if (key === undefined) return;
      this.forgetConsumer(key);
      this.run({ type: 'cancel', consumerKey: key });
    });
  }

  credit(channel: string, consumerTag: string, credit: number, mode: 'add' | 'set'): Promise<void> {
    return this.call(() => {
      const key = this.keyByTag.get(`${channel}\u0000${consumerTag}`);
      if (key !== undefined) this.run({ type: 'credit', consumerKey: key, credit, mode });
    });
  }

  settle(channel: string, msgIds: readonly MsgId[]): Promise<void> {
    return this.call(() => this.inChunks(msgIds, (chunk) => this.run({ type: 'settle', channel, msgIds: chunk })));
  }

  requeue(channel: string, msgIds: readonly MsgId[]): Promise<void> {
    return this.call(() => this.inChunks(msgIds, (chunk) => this.run({ type: 'return', channel, msgIds: chunk })));
  }

  discard(channel: string, msgIds: readonly MsgId[]): Promise<void> {
    return this.call(() => this.inChunks(msgIds, (chunk) => this.run({ type: 'discard', channel, msgIds: chunk })));
  }

  /** One command per idsPerCommandMax ids (a multiple ack of a huge window). */
  private inChunks(ids: readonly MsgId[], fn: (chunk: readonly MsgId[]) => void): void {
    if (ids.length <= idsPerCommandMax) return fn(ids);
    for (let i = 0; i < ids.length; i += idsPerCommandMax) fn(ids.slice(i, i + idsPerCommandMax));
  }

  get(owner: Owner, noAck: boolean): Promise<GetResponse | null> {
    return this.call((outcome) => {
      this.run({ type: 'get', owner, noAck }, outcome);
      return outcome.get;
    });
  }

  purge(): Promise<number> {
    return this.call((outcome) => {
      this.run({ type: 'purge' }, outcome);
      return outcome.count;
    });
  }

  delete(): Promise<number> {
    return this.call((outcome) => {
      this.run({ type: 'delete' }, outcome);
      return outcome.count;
    });
  }

  down(scope: DownScope, id: string): Promise<void> {
    return this.call(() => {
      for (const [key, c] of [...this.consumers]) {
        const o = c.owner;
        if ((scope === 'channel' ? o.channel : scope === 'connection' ? o.connection : o.node) === id) this.forgetConsumer(key);
      }
      this.run({ type: 'down', scope, id });
    });
  }

  touch(): void {
    void this.call(() => void this.run({ type: 'touch' }));
  }

  /**
   * New effective settings (a policy changed): applied in queue order with the other commands;
   * nothing happens when they equal the current ones. Single-active-consumer stays as declared.
   */
  reconfigure(config: QueueConfig, deadLetterExchange: string | null, deadLetterRoutingKey: string | null): Promise<void> {
    return this.call(() => {
      const next: QueueConfig = { ...config, deadLetter: deadLetterExchange !== null, singleActiveConsumer: this.state.config.singleActiveConsumer };
      const same = deadLetterExchange === this.deadLetterExchange && deadLetterRoutingKey === this.deadLetterRoutingKey
        && (Object.keys(next) as Array<keyof QueueConfig>).every((k) => next[k] === this.state.config[k]);
      if (same || this.state.deleted) return;
      this.deadLetterExchange = deadLetterExchange;
      this.deadLetterRoutingKey = deadLetterRoutingKey;
      this.run({ type: 'config', config: next });
    });
  }

  /** The settings the queue runs with now (for tests and listings). */
  get settings(): { readonly config: QueueConfig; readonly deadLetterExchange: string | null; readonly deadLetterRoutingKey: string | null } {
    return { config: this.state.config, deadLetterExchange: this.deadLetterExchange, deadLetterRoutingKey: this.deadLetterRoutingKey };
  }

  /** Applied now (stamped before the machine runs: a delivery is the next stage); kept for the first delivery. */
  private traceUntilDelivered(id: MsgId, trace: MessageTrace): void {
    stamp(trace, Stage.applied, traceNowMs());
    if (this.traced.size >= tracedWaitingMax) this.traced.delete(this.traced.keys().next().value!);
    this.traced.set(id, trace);
  }

  /** Bodies held in memory (ready + unacked); the rest were released. For metrics and tests. */
  get bodiesHeld(): number {
    return this.bodies.size;
  }

  stats(): QueueStats {
    return statsFromCounters(counters(this.state));
  }

  /** What went through the queue since it was created (for metrics). */
  totals(): Readonly<QueueTotals> {
    return this.state.totals;
  }

  onEvent(listener: (event: QueueEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /**
   * Runs `fn` after every command already under way, so deliveries reach sinks in queue order
   * even when a sink calls back in (an ack from inside a delivery).
   */
  private call<T>(fn: (outcome: Outcome) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push(() => {
        try {
          resolve(fn({ enqueue: 'ok', get: null, count: 0 }));
        } catch (e) {
          reject(e);
        }
      });
      this.drain();
    });
  }

  private drain(): void {
    if (this.running) return;
    this.running = true;
    try {
      for (let job = this.pending.shift(); job !== undefined; job = this.pending.shift()) job();
    } finally {
      this.running = false;
    }
  }

  private run(command: Command, outcome?: Outcome): void {
    this.seq++;
    const effects = apply(this.state, command, { index: this.seq, timeMs: this.options.clock.nowMs() });
    for (const effect of effects) this.carryOut(effect, outcome);
  }

  private carryOut(effect: Effect, outcome: Outcome | undefined): void {
    answerCaller(effect, outcome, (id) => this.bodies.get(id));
    switch (effect.type) {
      case 'deliver': return this.deliver(effect.consumerKey, effect.msgId, effect.redelivered, effect.deliveryCount);
      case 'enqueueResult':
        // A repeat of an enqueue stored before: nothing is kept under this id.
        if (effect.duplicate === true) this.bodies.delete(effect.msgId);
        return;
      case 'deadLetter': return this.deadLetter(effect.msgIds, effect.reason);
      case 'dropped':
        for (const id of effect.msgIds) this.bodies.delete(id);
        return;
      case 'consumerCancelled': return this.serverCancel(effect.consumerKey, effect.reason);
      case 'timer': return this.setTimer(effect.atMs);
      case 'queueExpired': return this.gone('expired');
      case 'deleted': return this.gone('deleted');
      default: return; // getResult, getEmpty, purged: the caller's answer only
    }
  }

  private deliver(key: ConsumerKey, msgId: MsgId, redelivered: boolean, deliveryCount: number): void {
    const consumer = this.consumers.get(key);
    const message = this.bodies.get(msgId);
    assert(consumer !== undefined, 'deliveries go to registered consumers');
    assert(message !== undefined, 'a message handed out has its body');
    const trace = this.traced.size === 0 ? undefined : this.traced.get(msgId);
    if (trace !== undefined) this.traced.delete(msgId);
    consumer.sink({ consumerTag: consumer.tag, msgId, message, redelivered, deliveryCount, trace });
  }

  private deadLetter(msgIds: readonly MsgId[], reason: DeadLetterReason): void {
    const exchange = this.deadLetterExchange;
    for (const id of msgIds) {
      const message = this.bodies.get(id);
      assert(message !== undefined, 'a dead-lettered message has its body');
      this.bodies.delete(id);
      if (exchange === null) continue;
      const { expiration, headers: oldHeaders, ...rest } = message.properties;
      const death = { queue: this.name, reason, exchange: message.exchange, routingKey: message.routingKey, expiration, timeMs: this.options.clock.nowMs() };
      const out = deadLetter(oldHeaders, death, { routingKey: this.deadLetterRoutingKey }, this.options.fieldValues);
      // Republished as RabbitMQ does: from the dead-letter exchange with the keys it is routed by.
      const republished: StoredMessage = { exchange, routingKey: out.routingKeys[0] ?? message.routingKey, properties: { ...rest, headers: out.headers }, body: message.body };
      this.options.onDeadLetter({ queue: this.name, reason, exchange, routingKeys: out.routingKeys, message: republished });
    }
  }

  private serverCancel(key: ConsumerKey, reason: 'timeout' | 'deleted' | 'limit'): void {
    const consumer = this.consumers.get(key);
    if (consumer === undefined) return;
    this.forgetConsumer(key);
    this.emit({ type: 'consumerCancelled', channel: consumer.owner.channel, consumerTag: consumer.tag, reason });
  }

  private forgetConsumer(key: ConsumerKey): void {
    const consumer = this.consumers.get(key);
    if (consumer === undefined) return;
    this.consumers.delete(key);
    this.keyByTag.delete(`${consumer.owner.channel}\u0000${consumer.tag}`);
  }

  private gone(reason: 'expired' | 'deleted'): void {
    this.bodies.clear();
    this.setTimer(null);
    this.emit({ type: 'queueDeleted', reason });
  }

  private setTimer(atMs: number | null): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    if (atMs === null) return;
    const delayMs = Math.min(Math.max(0, atMs - this.options.clock.nowMs()), durationMsMax);
    this.timer = this.timers.set(() => {
      this.timer = undefined;
      void this.call(() => void this.run({ type: 'tick' }));
    }, delayMs);
  }

  private emit(event: QueueEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }
}
