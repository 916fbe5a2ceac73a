// The calling side: one confirm channel per connection that consumes direct reply-to and publishes
// requests (mandatory, with a deadline header and a per-message TTL), the table of calls in flight,
// and what happens to them when a reply, a return, a nack, the deadline or a lost channel comes first.

import { randomUUID } from 'node:crypto';
import type * as amqp from 'amqplib';
import type { RpcLimits } from './limits.js';
import type { FailoverConnection, Link, LinkUser, RpcEvent } from './rpc-connection.js';
import {
  RpcClosedError, RpcConnectionLostError, RpcNoServerError, RpcRefusedError, RpcRemoteError, RpcServerLostError,
  RpcTimeoutError, RpcTooManyCallsError, type RpcError,
} from './rpc-errors.js';
import {
  decodeErrorBody, decodePayload, directReplyTo, encodePayload, header, requestQueueName, reservedErrorName, type Payload,
} from './rpc-wire.js';

export interface CallOptions {
  /** How long the caller waits for the reply (default 30 s); also the request's TTL in the queue. */
  timeoutMs?: number;
  /**
   * True when running the call twice is harmless. Then a call whose connection or server is lost
   * mid-call is sent again (until its deadline); otherwise it fails with RpcConnectionLostError or
   * RpcServerLostError. Default false.
   */
  idempotent?: boolean;
}

export interface CallerStats {
  calls: number;
  succeeded: number;
  remoteErrors: number;
  timeouts: number;
  /** Sends after the first, of idempotent calls whose connection was lost. */
  resent: number;
  /** Failures other than remote errors and timeouts (no server, server lost, connection lost, refused, closed). */
  otherFailures: number;
}

interface CallerChannel {
  readonly ch: amqp.ConfirmChannel;
  readonly link: Link;
  live: boolean;
}

interface PendingCall {
  readonly id: string;
  readonly method: string;
  readonly queue: string;
  readonly body: Buffer;
  readonly contentType: string;
  readonly deadlineMs: number;
  readonly timeoutMs: number;
  readonly idempotent: boolean;
  attempt: number;
  /** The channel it was last sent on; undefined while it waits for one. */
  sentOn: CallerChannel | undefined;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: RpcError) => void;
  readonly timer: NodeJS.Timeout;
}

export class RpcCaller implements LinkUser {
  readonly name = 'caller';
  private readonly pending = new Map<string, PendingCall>();
  /** Calls not sent on a live channel yet (first send, or an idempotent call whose channel died). */
  private readonly waiting = new Set<PendingCall>();
  private channel: CallerChannel | undefined;
  private opening: Promise<void> | undefined;
  /** The channel is set up on every new link once the first call was made. */
  private wanted = false;
  private closed = false;
  private readonly counters: CallerStats = { calls: 0, succeeded: 0, remoteErrors: 0, timeouts: 0, resent: 0, otherFailures: 0 };

  constructor(
    private readonly connection: FailoverConnection,
    private readonly limits: RpcLimits,
    private readonly emit: (e: RpcEvent) => void,
  ) {}

  /** Bad arguments (method name, timeout, a payload that is not JSON) reject with a TypeError or RangeError. */
  call(method: string, payload: Payload, opts: CallOptions): Promise<unknown> {
    if (this.closed) return Promise.reject(new RpcClosedError(`call '${method}'`));
    let queue: string;
    let encoded: { body: Buffer; contentType: string };
    const timeoutMs = opts.timeoutMs ?? this.limits.defaultTimeoutMs;
    try {
      queue = requestQueueName(method);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > this.limits.maxTimeoutMs) {
        throw new RangeError(`timeoutMs must be an integer from 1 to ${this.limits.maxTimeoutMs}, got ${String(timeoutMs)}`);
      }
      encoded = encodePayload(payload);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    if (this.pending.size >= this.limits.maxPendingCalls) return Promise.reject(new RpcTooManyCallsError(this.limits.maxPendingCalls));
    const { body, contentType } = encoded;
    this.counters.calls++;
    return new Promise((resolve, reject) => {
      const id = randomUUID();
      const timer = setTimeout(() => this.settle(id, new RpcTimeoutError(method, timeoutMs, this.pending.get(id)?.attempt === 0)), timeoutMs);
      const call: PendingCall = {
        id, method, queue, body, contentType, deadlineMs: Date.now() + timeoutMs, timeoutMs, idempotent: opts.idempotent === true,
        attempt: 0, sentOn: undefined, resolve, reject, timer,
      };
      this.pending.set(id, call);
      this.send(call);
    });
  }

  stats(): CallerStats {
    return { ...this.counters };
  }

  async up(link: Link): Promise<void> {
    if (this.wanted && !this.closed) await this.open(link);
  }

  down(link: Link): void {
    if (this.channel?.link === link) this.lost(this.channel);
  }

  close(): void {
    this.closed = true;
    for (const id of [...this.pending.keys()]) this.settle(id, new RpcClosedError('call'));
    const c = this.channel;
    this.channel = undefined;
    if (c !== undefined) {
      c.live = false;
      void c.ch.close().catch(() => undefined);
    }
  }

  private send(call: PendingCall): void {
    const c = this.channel;
    if (c === undefined || !c.live) {
      this.waiting.add(call);
      this.wanted = true;
      const link = this.connection.current();
      if (link !== undefined) void this.open(link);
      return;
    }
    const remainingMs = call.deadlineMs - Date.now();
    if (remainingMs <= 0) return; // its timer fires now
    this.waiting.delete(call);
    call.attempt++;
    if (call.attempt > 1) this.counters.resent++;
    call.sentOn = c;
    try {
      c.ch.publish('', call.queue, call.body, {
        mandatory: true, replyTo: directReplyTo, correlationId: call.id, contentType: call.contentType,
        expiration: String(remainingMs), timestamp: Math.floor(Date.now() / 1000),
        headers: {
          [header.deadline]: { '!': 'long', value: call.deadlineMs },
          [header.idempotent]: call.idempotent,
          [header.attempt]: { '!': 'int', value: call.attempt },
        },
      }, (err: unknown) => {
        // amqplib also calls back with 'channel closed' for unconfirmed publishes: lost() handles those.
        if (err instanceof Error && err.message === 'message nacked') this.settle(call.id, new RpcRefusedError(call.method));
      });
    } catch {
      // The channel closed under us: nothing went out, so any call may be sent again.
      call.sentOn = undefined;
      call.attempt--;
      this.waiting.add(call);
    }
  }

  /** Opens the caller channel on `link` (once at a time), then sends every waiting call. */
  private open(link: Link): Promise<void> {
    // Serialized: an open still running for an older link finishes (or fails) first.
    const next = (this.opening ?? Promise.resolve()).then(() => this.openChannel(link));
    this.opening = next;
    void next.finally(() => {
      if (this.opening === next) this.opening = undefined;
    });
    return next;
  }

  private async openChannel(link: Link): Promise<void> {
    if (this.closed || this.connection.current() !== link) return;
    if (this.channel?.live === true && this.channel.link === link) return;
    let c: CallerChannel | undefined;
    try {
      const ch = await link.conn.createConfirmChannel();
      c = { ch, link, live: true };
      const self = c;
      ch.on('error', () => undefined);
      ch.on('close', () => this.lost(self));
      ch.on('return', (m: amqp.Message) => this.returned(m));
      await ch.consume(directReplyTo, (m) => this.replied(m), { noAck: true });
    } catch (e) {
      if (this.connection.current() === link) this.emit({ type: 'channel-failed', what: this.name, reason: e instanceof Error ? e.message : String(e) });
      return;
    }
    if (!c.live || this.closed) return;
    this.channel = c;
    for (const call of [...this.waiting]) this.send(call);
  }

  private lost(c: CallerChannel): void {
    if (!c.live) return;
    c.live = false;
    if (this.channel === c) this.channel = undefined;
    for (const call of [...this.pending.values()]) {
      if (call.sentOn !== c) continue;
      call.sentOn = undefined;
      if (call.idempotent) this.waiting.add(call);
      else this.settle(call.id, new RpcConnectionLostError(call.method, c.link.url));
    }
    // The link itself may still be up (only this channel closed): open a new one there.
    const link = this.connection.current();
    if (!this.closed && link === c.link && this.waiting.size > 0) {
      setTimeout(() => {
        if (this.connection.current() === link) void this.open(link);
      }, this.limits.reconnectDelayMinMs);
    }
  }

  private replied(m: amqp.ConsumeMessage | null): void {
    if (m === null) return; // the broker cancelled the reply consumer: the channel closes next
    const call = this.pending.get(String(m.properties.correlationId ?? ''));
    if (call === undefined) return; // a late or repeated reply
    const status = (m.properties.headers as Record<string, unknown> | undefined)?.[header.status];
    if (status === 'error') {
      const e = decodeErrorBody(m.content);
      if (e.name === reservedErrorName.serverLost) return this.settle(call.id, new RpcServerLostError(call.method, e.message));
      return this.settle(call.id, new RpcRemoteError(e.name, e.message, e.details));
    }
    let value: unknown;
    try {
      value = decodePayload(m.content, m.properties.contentType as string | undefined);
    } catch (err) {
      return this.settle(call.id, new RpcRemoteError('RpcBadReply', `reply is not valid JSON: ${err instanceof Error ? err.message : String(err)}`));
    }
    this.settle(call.id, undefined, value);
  }

  private returned(m: amqp.Message): void {
    const call = this.pending.get(String(m.properties.correlationId ?? ''));
    if (call !== undefined) this.settle(call.id, new RpcNoServerError(call.method, call.queue));
  }

  /** Ends a call once: with `error`, or with `value`. */
  private settle(id: string, error: RpcError | undefined, value?: unknown): void {
    const call = this.pending.get(id);
    if (call === undefined) return;
    this.pending.delete(id);
    this.waiting.delete(call);
    clearTimeout(call.timer);
    if (error === undefined) {
      this.counters.succeeded++;
      call.resolve(value);
      return;
    }
    if (error.code === 'REMOTE') this.counters.remoteErrors++;
    else if (error.code === 'TIMEOUT') this.counters.timeouts++;
    else this.counters.otherFailures++;
    call.reject(error);
  }
}
