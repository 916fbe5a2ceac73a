// The serving side of one method: its request queue (declared on every connection), a consumer
// with prefetch = concurrency, at most `concurrency` handlers at once, the checks before a handler
// runs (deadline passed: skip; redelivered and not idempotent: answer "server lost"), and replies
// sent before the request is acked, held across a reconnect when the connection dropped meanwhile.

import type * as amqp from 'amqplib';
import type { RpcLimits } from './limits.js';
import type { FailoverConnection, Link, LinkUser, RpcEvent } from './rpc-connection.js';
import {
  booleanHeader, contentType, decodePayload, encodeErrorBody, encodePayload, errorBodyOf, header, integerHeader, requestQueueArguments,
  requestQueueName, reservedErrorName, type ErrorBody, type Payload, type ReplyStatus,
} from './rpc-wire.js';

export interface ServeOptions {
  /** Handlers of this method running at once in this process (also the consumer's prefetch). Default 8. */
  concurrency?: number;
}

export interface CallContext {
  readonly method: string;
  /** The request's correlation id. */
  readonly callId: string;
  /** Absolute deadline (ms since the epoch) the caller set; undefined when the request named none. */
  readonly deadlineMs: number | undefined;
  /** Aborted at the deadline: the caller has given up, further work is wasted. */
  readonly signal: AbortSignal;
  readonly idempotent: boolean;
  /** 1 for the caller's first send; more when the SDK resent an idempotent call. */
  readonly attempt: number;
  /** The broker delivered this request before (its earlier server was lost mid-call). */
  readonly redelivered: boolean;
}

export type Handler = (payload: Payload, ctx: CallContext) => unknown;

export interface ServerStats {
  /** Handlers that returned a result. */
  served: number;
  /** Handlers that threw (answered with an error reply). */
  failed: number;
  /** Requests whose deadline had passed before a handler could start: not run, not answered. */
  skippedExpired: number;
  /** Redelivered non-idempotent requests: not run, answered RpcServerLost. */
  refusedRedelivered: number;
  /** Requests whose body did not decode: answered RpcBadRequest. */
  badRequests: number;
  /** Results that came after the caller's deadline: not sent. */
  late: number;
  /** Replies lost because no connection came back in time (or too many were held). */
  repliesDropped: number;
}

interface ServerChannel {
  readonly ch: amqp.Channel;
  readonly link: Link;
  live: boolean;
  /** Set once consuming: only a channel that was serving is set up again when it closes. */
  consumerTag: string | undefined;
}

interface Reply {
  readonly replyTo: string;
  readonly callId: string;
  readonly deadlineMs: number | undefined;
  readonly status: ReplyStatus;
  readonly body: Buffer;
  readonly contentType: string;
}

interface Delivery {
  readonly sc: ServerChannel;
  readonly msg: amqp.ConsumeMessage;
}

export class MethodServer implements LinkUser {
  readonly queue: string;
  readonly name: string;
  private channel: ServerChannel | undefined;
  private running = 0;
  /** Deliveries waiting for a free slot: at most one prefetch window per live channel. */
  private readonly queued: Delivery[] = [];
  /** Replies of handlers that finished while no channel was live. */
  private readonly held: Reply[] = [];
  private stopping = false;
  private setup: { link: Link; done: Promise<void> } | undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly counters: ServerStats = { served: 0, failed: 0, skippedExpired: 0, refusedRedelivered: 0, badRequests: 0, late: 0, repliesDropped: 0 };

  constructor(
    readonly method: string,
    private readonly handler: Handler,
    private readonly concurrency: number,
    private readonly connection: FailoverConnection,
    private readonly limits: RpcLimits,
    private readonly emit: (e: RpcEvent) => void,
  ) {
    this.queue = requestQueueName(method);
    this.name = `serve ${method}`;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > limits.maxConcurrency) {
      throw new RangeError(`concurrency must be an integer from 1 to ${limits.maxConcurrency}, got ${String(concurrency)}`);
    }
  }

  stats(): ServerStats {
    return { ...this.counters };
  }

  /** Declares the queue and consumes on `link` (once per link). Throws what the broker refused (e.g. 406 on declare). */
  up(link: Link): Promise<void> {
    if (this.setup?.link !== link) this.setup = { link, done: this.setupOn(link) };
    return this.setup.done;
  }

  private async setupOn(link: Link): Promise<void> {
    if (this.stopping || this.connection.current() !== link) return;
    const ch = await link.conn.createChannel();
    const sc: ServerChannel = { ch, link, live: true, consumerTag: undefined };
    ch.on('error', () => undefined);
    ch.on('close', () => this.lost(sc));
    await ch.assertQueue(this.queue, { durable: true, arguments: { ...requestQueueArguments } });
    await ch.prefetch(this.concurrency);
    const ok = await ch.consume(this.queue, (m) => this.delivered(sc, m), { noAck: false });
    sc.consumerTag = ok.consumerTag;
    if (this.stopping) {
      // stop() came while this was being set up: it no longer sees this channel, so close it here.
      sc.live = false;
      await ch.close().catch(() => undefined);
      return;
    }
    this.channel = sc;
    this.flushHeld();
  }

  down(link: Link): void {
    if (this.channel?.link === link) this.lost(this.channel);
  }

  /** Stops consuming, lets running handlers finish (at most closeDrainMs), then closes the channel. */
  async stop(): Promise<void> {
    this.stopping = true;
    const sc = this.channel;
    if (sc?.live === true && sc.consumerTag !== undefined) await sc.ch.cancel(sc.consumerTag).catch(() => undefined);
    // After cancel-ok nothing more arrives: what was delivered still runs, so nothing comes back redelivered.
    await this.idle(this.limits.closeDrainMs);
    this.channel = undefined;
    if (sc?.live === true) {
      sc.live = false;
      await sc.ch.close().catch(() => undefined);
    }
    this.connection.detach(this);
  }

  private lost(sc: ServerChannel): void {
    if (!sc.live) return;
    sc.live = false;
    if (this.channel === sc) this.channel = undefined;
    // Deliveries not started cannot be acked any more: the broker gives them to another server.
    for (let i = this.queued.length - 1; i >= 0; i--) if (this.queued[i]!.sc === sc) this.queued.splice(i, 1);
    this.wakeIdle();
    const link = this.connection.current();
    if (!this.stopping && link === sc.link && sc.consumerTag !== undefined) {
      // Only the channel closed (e.g. the queue was deleted): set up again on the same connection.
      setTimeout(() => {
        if (!this.stopping && this.connection.current() === link && this.channel === undefined) {
          this.setup = undefined;
          this.up(link).catch((e: unknown) => this.emit({ type: 'channel-failed', what: this.name, reason: e instanceof Error ? e.message : String(e) }));
        }
      }, this.limits.reconnectDelayMinMs);
    }
  }

  private delivered(sc: ServerChannel, m: amqp.ConsumeMessage | null): void {
    if (m === null) {
      // basic.cancel from the broker (the queue was deleted): declare and consume again.
      this.emit({ type: 'channel-failed', what: this.name, reason: `the broker cancelled the consumer of '${this.queue}'` });
      void sc.ch.close().catch(() => undefined);
      return;
    }
    if (this.running < this.concurrency) this.start({ sc, msg: m });
    else this.queued.push({ sc, msg: m });
  }

  private start(d: Delivery): void {
    const props = d.msg.properties;
    const headers = props.headers as Record<string, unknown> | undefined;
    const callId = String(props.correlationId ?? '');
    const replyTo = typeof props.replyTo === 'string' && props.replyTo !== '' ? props.replyTo : undefined;
    const deadlineMs = integerHeader(headers, header.deadline);
    const idempotent = booleanHeader(headers, header.idempotent);
    const base = { replyTo, callId, deadlineMs };
    if (deadlineMs !== undefined && Date.now() >= deadlineMs) {
      this.counters.skippedExpired++;
      this.emit({ type: 'skipped-expired', method: this.method, callId });
      return this.finish(d, undefined);
    }
    if (d.msg.fields.redelivered && !idempotent) {
      this.counters.refusedRedelivered++;
      this.emit({ type: 'refused-redelivered', method: this.method, callId });
      const message = 'its server was lost mid-call and the call is not idempotent, so it was not run again; it may or may not have run';
      return this.finish(d, errorReply(base, { name: reservedErrorName.serverLost, message }));
    }
    let payload: Payload;
    try {
      payload = decodePayload(d.msg.content, props.contentType as string | undefined);
    } catch (e) {
      this.counters.badRequests++;
      return this.finish(d, errorReply(base, { name: reservedErrorName.badRequest, message: `request body is not valid JSON: ${(e as Error).message}` }));
    }
    this.running++;
    const ac = new AbortController();
    const timer = deadlineMs === undefined ? undefined : setTimeout(() => ac.abort(new DOMException(`the caller's deadline for '${this.method}' passed`, 'TimeoutError')), deadlineMs - Date.now());
    const ctx: CallContext = { method: this.method, callId, deadlineMs, signal: ac.signal, idempotent, attempt: integerHeader(headers, header.attempt) ?? 1, redelivered: d.msg.fields.redelivered };
    Promise.resolve()
      .then(() => this.handler(payload, ctx))
      .then((result) => {
        this.counters.served++;
        return okReply(base, result);
      }, (thrown: unknown) => {
        this.counters.failed++;
        return errorReply(base, errorBodyOf(thrown));
      })
      .then((reply) => {
        clearTimeout(timer);
        this.running--;
        this.finish(d, reply);
      });
  }

  /** Sends the reply (if any and the caller still waits), acks the request, starts the next one. */
  private finish(d: Delivery, reply: Reply | undefined): void {
    if (reply !== undefined) {
      if (reply.deadlineMs !== undefined && Date.now() >= reply.deadlineMs) this.counters.late++;
      else this.sendReply(reply);
    }
    if (d.sc.live) {
      try {
        d.sc.ch.ack(d.msg);
      } catch {
        // closed meanwhile: the broker redelivers it
      }
    }
    while (this.running < this.concurrency && this.queued.length > 0) this.start(this.queued.shift()!);
    this.wakeIdle();
  }

  private sendReply(r: Reply): void {
    const sc = this.channel;
    if (sc === undefined || !sc.live) {
      if (this.held.length >= this.limits.maxHeldReplies) return this.dropReply(r, 'too many replies held while disconnected');
      this.held.push(r);
      return;
    }
    try {
      sc.ch.publish('', r.replyTo, r.body, { correlationId: r.callId, contentType: r.contentType, headers: { [header.status]: r.status } });
    } catch {
      // The channel closed under us; the next one sends it.
      if (this.held.length >= this.limits.maxHeldReplies) this.dropReply(r, 'too many replies held while disconnected');
      else this.held.push(r);
    }
  }

  private flushHeld(): void {
    for (const r of this.held.splice(0)) {
      if (r.deadlineMs !== undefined && Date.now() >= r.deadlineMs) this.dropReply(r, 'the deadline passed while disconnected');
      else this.sendReply(r);
    }
  }

  private dropReply(r: Reply, reason: string): void {
    this.counters.repliesDropped++;
    this.emit({ type: 'reply-dropped', method: this.method, callId: r.callId, reason });
  }

  private idle(maxMs: number): Promise<void> {
    if (this.running === 0 && this.queued.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, maxMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private wakeIdle(): void {
    if (this.running !== 0 || this.queued.length !== 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}

type ReplyBase = { replyTo: string | undefined; callId: string; deadlineMs: number | undefined };

function okReply(base: ReplyBase, result: unknown): Reply | undefined {
  if (base.replyTo === undefined) return undefined;
  try {
    const encoded = encodePayload(result);
    return { ...base, replyTo: base.replyTo, status: 'ok', body: encoded.body, contentType: encoded.contentType };
  } catch (e) {
    return errorReply(base, { name: reservedErrorName.badResult, message: `the handler's result cannot be encoded as JSON: ${(e as Error).message}` });
  }
}

function errorReply(base: ReplyBase, e: ErrorBody): Reply | undefined {
  if (base.replyTo === undefined) return undefined;
  return { ...base, replyTo: base.replyTo, status: 'error', body: encodeErrorBody(e), contentType: contentType.json };
}
