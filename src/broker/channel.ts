// One AMQP channel: its state (open, closing), content assembly for basic.publish, serial handling
// of methods (a method that waits on metadata holds back the ones after it), and the one place
// where a channel's protocol errors become channel.close (or connection.close when hard).

import { randomBytes } from 'node:crypto';
import { nodeId } from '../lib/ids.js';
import type { ConnectionRef } from '../model/index.js';
import type { Connection } from './connection.js';
import { ConfirmTracker } from './confirms.js';
import type { Consumer } from './consumer.js';
import { amqpError, amqpErrorText, isProtocolError, type ProtocolError } from './errors.js';
import type { NodeContext } from './node-context.js';
import type { QueueBackend, StoredMessage } from './queue-backend.js';
import type { Transaction } from './transaction.js';
import { stamp, Stage, type MessageTrace } from '../lib/trace.js';
import { traceNowMs } from '../cluster/trace-clock.js';
import { UnackedTags } from './unacked.js';
import {
  decodeContentHeader, decodeMethod, encodeBasicProperties, encodeContentFrames, FrameType, isProtocolError as isFault,
  methodInfo as methodIds, type AmqpMethod, type BasicProperties, type BasicPublish, type ContentHeader, type Frame,
} from '../amqp/index.js';
import { dispatchMethod } from './channel-methods.js';
import { autoDeleteIfUnused, publish } from './channel-basic.js';

export type MethodResult = void | ProtocolError | Promise<void | ProtocolError>;

interface Assembly {
  readonly method: BasicPublish;
  header: ContentHeader | null;
  chunks: Buffer[];
  received: number;
}

const pendingFramesMax = 10_000;

export class Channel {
  readonly ownerId: string;
  readonly ctx: NodeContext;
  state: 'open' | 'closing' | 'closed' = 'open';
  private busy = false;
  private pending: Frame[] = [];
  private pendingAt = 0;
  private content: Assembly | null = null;
  readonly unacked = new UnackedTags();
  readonly consumers = new Map<string, Consumer>();
  /** Queues this channel consumed from or got from: told when the channel goes down. */
  readonly touched = new Set<QueueBackend>();
  prefetchCount = 0;
  globalPrefetch = 0;
  globalUnacked = 0;
  creditCursor = 0;
  confirms: ConfirmTracker | null = null;
  /** Timer moving parked global-prefetch credit (see channel-basic.ts), while global consumers exist. */
  creditSweep: NodeJS.Timeout | null = null;
  tx: Transaction | null = null;
  lastQueue = '';
  replyName: string | null = null;
  replyConsumerTag: string | null = null;
  /** Traced publishes whose enqueue was answered: their confirm goes out with the next flush. */
  readonly confirmTraces: MessageTrace[] = [];
  private counted = true;

  constructor(readonly conn: Connection, readonly number: number) {
    this.ctx = conn.ctx;
    this.ownerId = `${conn.ctx.nodeId}/${conn.id}/${number}`;
    this.ctx.queues.channels.set(this.ownerId, this);
    this.ctx.counters.channelsOpened++;
  }

  get owner(): { node: string; connection: string; channel: string } {
    return { node: this.ctx.nodeId, connection: this.conn.id, channel: this.ownerId };
  }

  get connectionRef(): ConnectionRef {
    return { connectionId: this.conn.id, nodeId: nodeId(this.ctx.nodeId) };
  }

  get user(): string {
    return this.conn.user;
  }

  /** Whom the model checks permissions for: none (trusted) when a plugin backend authorizes (plugin-authz.ts). */
  get actor(): string | undefined {
    return this.conn.admission?.backend.authorize !== undefined ? undefined : this.conn.user;
  }

  get vhost(): string {
    return this.conn.vhost;
  }

  // ---- input ---------------------------------------------------------------------------------

  handleFrame(frame: Frame): void {
    if (this.state === 'closing') return this.handleWhileClosing(frame);
    if (this.state === 'closed') return;
    if (this.busy) {
      this.pending.push(frame);
      if (this.pending.length - this.pendingAt === pendingFramesMax) this.conn.pause(this.ownerId);
      return;
    }
    this.process(frame);
  }

  private process(frame: Frame): void {
    if (this.content !== null) return this.processContent(frame, this.content);
    if (frame.type !== FrameType.method) {
      return this.fail(amqpError(505, `unexpected ${frame.type === FrameType.header ? 'content header' : 'content body'} frame on channel ${this.number}: no basic.publish before it`), null);
    }
    const method = decodeMethod(frame.payload);
    if (isFault(method)) return this.conn.fail(amqpErrorText(method.replyCode, method.replyText, 'connection'), method.classId, method.methodId);
    if (method.name === 'basic.publish') {
      if (method.immediate) return this.fail(amqpError(540, 'immediate=true'), method);
      this.content = { method, header: null, chunks: [], received: 0 };
      return;
    }
    this.run(method, () => dispatchMethod(this, method));
  }

  /** Runs a handler; an async one holds back this channel's later frames until it settles. */
  run(method: AmqpMethod, handler: () => MethodResult): void {
    let result: MethodResult;
    try {
      result = handler();
    } catch (e) {
      this.internalError(e, method);
      return;
    }
    if (!(result instanceof Promise)) {
      if (isProtocolError(result)) this.fail(result, method);
      return;
    }
    this.busy = true;
    result.then(
      (r) => {
        this.busy = false;
        if (isProtocolError(r)) this.fail(r, method);
        this.drainPending();
      },
      (e: unknown) => {
        this.busy = false;
        this.internalError(e, method);
      },
    );
  }

  private internalError(e: unknown, method: AmqpMethod): void {
    this.ctx.logger.error('internal error in channel', { channel: this.ownerId, method: method.name, error: (e as Error).stack ?? String(e) });
    const ids = methodIds(method.name);
    this.conn.fail(amqpError(541, `internal error while handling ${method.name}`), ids.classId, ids.methodId);
  }

  private drainPending(): void {
    while (!this.busy && this.pendingAt < this.pending.length && this.state === 'open') {
      const f = this.pending[this.pendingAt++]!;
      this.process(f);
    }
    if (this.pendingAt >= this.pending.length || this.state !== 'open') {
      this.pending = [];
      this.pendingAt = 0;
      this.conn.resume(this.ownerId);
    }
  }

  private processContent(frame: Frame, a: Assembly): void {
    if (frame.type === FrameType.method) {
      return this.fail(amqpError(505, `expected content ${a.header === null ? 'header' : 'body'} for class 60, got a method frame`), a.method);
    }
    if (frame.type === FrameType.header) {
      if (a.header !== null) return this.fail(amqpError(505, 'expected content body, got a second content header'), a.method);
      const header = decodeContentHeader(frame.payload);
      if (isFault(header)) return this.conn.fail(amqpErrorText(header.replyCode, header.replyText, 'connection'), 60, 40);
      if (header.classId !== 60) return this.fail(amqpError(505, `content header for class ${header.classId}, expected 60`), a.method);
      if (header.bodySize > this.ctx.config.maxMessageSizeBytes) {
        this.content = null;
        return this.fail(amqpError(406, `message size ${header.bodySize} is larger than configured max size ${this.ctx.config.maxMessageSizeBytes}`), a.method);
      }
      a.header = header;
      if (header.bodySize === 0) return this.completeContent(a, header);
      return;
    }
    if (a.header === null) return this.fail(amqpError(505, 'expected content header for class 60, got a content body frame'), a.method);
    if (frame.payload.length === 0) return; // empty body frames are tolerated
    a.received += frame.payload.length;
    if (a.received > a.header.bodySize) {
      return this.conn.fail(amqpError(501, `content body of ${a.received} bytes exceeds the declared body size ${a.header.bodySize}`), 60, 40);
    }
    a.chunks.push(frame.payload);
    if (a.received === a.header.bodySize) this.completeContent(a, a.header);
  }

  private completeContent(a: Assembly, header: ContentHeader): void {
    this.content = null;
    // Copy: a slice would pin the whole socket chunk for as long as the message is queued.
    const body = a.chunks.length === 1 ? Buffer.from(a.chunks[0]!) : Buffer.concat(a.chunks, a.received);
    this.conn.notePublish();
    this.run(a.method, () => publish(this, a.method, header, body));
  }

  private handleWhileClosing(frame: Frame): void {
    if (frame.type !== FrameType.method) return;
    const method = decodeMethod(frame.payload);
    if (isFault(method)) return;
    if (method.name === 'channel.close-ok') this.finishClose();
    else if (method.name === 'channel.close') {
      this.conn.sendMethod(this.number, { name: 'channel.close-ok' });
      this.finishClose();
    }
  }

  private finishClose(): void {
    this.state = 'closed';
    this.conn.channelClosed(this.number);
  }

  // ---- output --------------------------------------------------------------------------------

  reply(method: AmqpMethod): void {
    if (this.state === 'open') this.conn.sendMethod(this.number, method);
  }

  sendContent(method: AmqpMethod, message: StoredMessage): void {
    const raw = message.rawProperties ?? encodeBasicProperties(message.properties as BasicProperties);
    for (const b of encodeContentFrames(this.number, method, raw, message.body, this.conn.frameMaxBytes)) this.conn.send(b);
  }

  flushConfirms(): void {
    if (this.confirms === null || this.state !== 'open') return;
    for (const f of this.confirms.flush(performance.now())) {
      this.conn.sendMethod(this.number, f.kind === 'ack'
        ? { name: 'basic.ack', deliveryTag: f.deliveryTag, multiple: f.multiple }
        : { name: 'basic.nack', deliveryTag: f.deliveryTag, multiple: f.multiple, requeue: false });
    }
    if (this.confirmTraces.length === 0) return;
    // Answered before this flush, so covered by the frames just queued.
    const nowMs = traceNowMs();
    for (const t of this.confirmTraces) {
      stamp(t, Stage.confirmSent, nowMs);
      this.ctx.tracer.published(t);
    }
    this.confirmTraces.length = 0;
  }

  newConsumerTag(): string {
    return 'amq.ctag-' + randomBytes(16).toString('base64url').slice(0, 22);
  }

  // ---- errors and closing --------------------------------------------------------------------

  /** The one place a channel's protocol error turns into channel.close or connection.close. */
  fail(error: ProtocolError, method: AmqpMethod | null): void {
    const ids = method === null ? { classId: 0, methodId: 0 } : methodIds(method.name);
    if (error.scope === 'connection') return this.conn.fail(error, ids.classId, ids.methodId);
    if (this.state !== 'open') return;
    this.ctx.logger.info('channel error', { channel: this.ownerId, replyCode: error.replyCode, replyText: error.replyText });
    this.conn.sendMethod(this.number, { name: 'channel.close', replyCode: error.replyCode, replyText: error.replyText, classId: ids.classId, methodId: ids.methodId });
    this.state = 'closing';
    this.content = null;
    this.teardown();
    this.state = 'closing';
  }

  /** Client sent channel.close: release everything, then close-ok. */
  clientClose(): void {
    this.teardown();
    this.conn.sendMethod(this.number, { name: 'channel.close-ok' });
    this.finishClose();
  }

  /** The channel is going: its consumers are cancelled and its unacked messages return. */
  teardown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.counted) this.ctx.counters.channelsClosed++;
    this.counted = false;
    this.ctx.queues.channels.delete(this.ownerId);
    if (this.creditSweep !== null) clearInterval(this.creditSweep);
    this.creditSweep = null;
    if (this.replyName !== null) this.ctx.replies.unregister(this.ownerId);
    this.replyName = null;
    this.confirms = null;
    // Only queues this channel consumed from may auto-delete: they lose a consumer here.
    const consumed = new Set([...this.consumers.values()].map((c) => c.queue));
    this.consumers.clear();
    this.unacked.takeAll();
    for (const q of this.touched) {
      // A queue deleted meanwhile took its consumers and messages with it: nothing to return.
      if (this.ctx.queues.get(this.vhost, q.name) !== q) continue;
      this.background(q.down('channel', this.ownerId).then(() => (consumed.has(q) ? autoDeleteIfUnused(this.ctx, this.vhost, q) : undefined)), 'channel down', q);
    }
    this.touched.clear();
  }

  /**
   * Runs a queue operation nobody waits for (acks, returns, the channel's down). A replicated queue
   * rejects when its group loses its leader or the node shuts down: the operation is then void, and
   * its messages come back through the queue's own recovery, so a rejection is logged, not thrown
   * (an unhandled rejection would take the whole node down).
   */
  background(op: Promise<unknown>, what: string, q: QueueBackend): void {
    op.catch((e: unknown) => {
      this.ctx.logger.warn('queue operation failed', { what, queue: q.name, channel: this.ownerId, error: e instanceof Error ? e.message : String(e) });
    });
  }

  /**
   * The queue ended the consumer (deleted, timed out): the channel forgets it, so a later
   * basic.cancel of the tag gets cancel-ok, and tells the client when it takes consumer_cancel_notify.
   */
  serverCancel(consumerTag: string): void {
    const c = this.consumers.get(consumerTag);
    if (c === undefined) return;
    this.consumers.delete(consumerTag);
    if (this.ctx.queues.exclusiveConsumer.get(c.queue) === this.ownerId) this.ctx.queues.exclusiveConsumer.delete(c.queue);
    if (this.state === 'open' && this.conn.hasCapability('consumer_cancel_notify')) {
      this.conn.sendMethod(this.number, { name: 'basic.cancel', consumerTag, nowait: true });
    }
  }

  deliverReply(message: StoredMessage): boolean {
    if (this.state !== 'open' || this.replyConsumerTag === null) return false;
    const tag = this.unacked.assign(null);
    this.sendContent({ name: 'basic.deliver', consumerTag: this.replyConsumerTag, deliveryTag: tag, redelivered: false, exchange: message.exchange, routingKey: message.routingKey }, message);
    return true;
  }
}

