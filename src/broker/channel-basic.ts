// The basic.*, confirm.* and tx.* methods of a channel: publish (routing, mandatory returns,
// confirms, CC/BCC, direct reply-to), consume with per-consumer and global prefetch, get,
// ack/nack/reject, recover, and transactions.

import { checkPublish, checkPublishTopics, checkQueueAccess, extraRoutingKeys, isModelError, lookupQueue, readInt, RouteFailure, typeNameOf, type ExchangeRecord } from '../model/index.js';
import { authorizePublish } from './plugin-authz.js';
import type { Channel, MethodResult } from './channel.js';
import { ConfirmTracker } from './confirms.js';
import { distributeGlobalCredit, type Consumer } from './consumer.js';
import { isReplyToName, replyToQueue } from './direct-reply-to.js';
import { withDeliveryCount } from './delivery-headers.js';
import { amqpError, amqpErrorText, fromModel, whenQueueGone, type ProtocolError } from './errors.js';
import type { NodeContext } from './node-context.js';
import { targetQueues } from './publish.js';
import type { PublishHook, PublishHookAnswer } from './publish-hooks.js';
import type { Delivery, QueueBackend, StoredMessage } from './queue-backend.js';
import { limits } from './limits.js';
import { Transaction } from './transaction.js';
import { copyTrace, stamp, Stage, type MessageTrace } from '../lib/trace.js';
import { traceNowMs } from '../cluster/trace-clock.js';

const creditSweepIntervalMs = limits.globalCreditSweepIntervalMs;
import { byQueue, type UnackedEntry } from './unacked.js';
import type { AmqpMethod, BasicProperties, BasicPublish, ContentHeader, FieldTable, MethodOf } from '../amqp/index.js';

// ---- publish ---------------------------------------------------------------------------------

/**
 * The publish checks after the exchange's, in RabbitMQ's order: expiration (406), the CC and BCC
 * headers' type (406), topic write permission on every routing key (403), user-id (406). Returns
 * the extra routing keys (CC, BCC) when all pass.
 */
function checkMessage(ch: Channel, m: BasicPublish, x: ExchangeRecord, p: BasicProperties): ProtocolError | { extra: string[] | null } {
  if (p.expiration !== undefined && !/^\d+$/.test(p.expiration)) {
    return amqpError(406, `invalid expiration '${p.expiration}' for message: must be a non-negative integer string`);
  }
  const extra = extraRoutingKeys(p.headers ?? null);
  if (isModelError(extra)) return fromModel(extra);
  const topicDenied = checkPublishTopics(ch.ctx.metadata.state, ch.actor, ch.vhost, x, extra === null ? [m.routingKey] : [m.routingKey, ...extra]);
  if (topicDenied !== null) return fromModel(topicDenied);
  if (p.userId !== undefined && p.userId !== ch.user) {
    return amqpError(406, `user_id property set to '${p.userId}' but authenticated user was '${ch.user}'`);
  }
  return { extra };
}

/** Builds the stored message, editing properties only when the broker must (BCC, reply-to). */
function storedMessage(ch: Channel, m: BasicPublish, header: ContentHeader, body: Buffer): StoredMessage | ProtocolError {
  let props = header.properties;
  let raw: Buffer | undefined = header.rawProperties;
  if (props.replyTo === replyToQueue) {
    if (ch.replyName === null) return amqpError(406, 'fast reply consumer does not exist');
    props = { ...props, replyTo: ch.replyName };
    raw = undefined;
  }
  if (props.headers !== undefined && 'BCC' in props.headers) {
    const { BCC: _bcc, ...rest } = props.headers;
    props = { ...props, headers: rest };
    raw = undefined;
  }
  return { exchange: m.exchange, routingKey: m.routingKey, properties: props as StoredMessage['properties'], rawProperties: raw, body };
}

/**
 * `receivedMs` (performance.now(), confirm mode only) and `trace` (one publish in N) are taken on
 * the first pass; the pass after a metadata sync (`synced`) carries them on.
 */
export function publish(
  ch: Channel, m: BasicPublish, header: ContentHeader, body: Buffer, synced = false, receivedMs = 0, trace: MessageTrace | undefined = undefined,
): MethodResult {
  if (!synced) {
    countReceived(ch);
    if (ch.confirms !== null) receivedMs = performance.now();
    trace = ch.ctx.tracer.sample();
    // A plugin auth backend that authorizes this connection is asked first (plugin-authz.ts).
    const gate = authorizePublish(ch, m.exchange, m.routingKey);
    if (gate !== null) return gate.then((refused) => refused ?? publish(ch, m, header, body, true, receivedMs, trace));
  }
  const x = checkPublish(ch.ctx.metadata.state, ch.actor, ch.vhost, m.exchange);
  // Not found here may be declared elsewhere a moment ago: catch up with the cluster, look again.
  if (isModelError(x) && x.replyCode === 404 && !synced) return ch.ctx.metadata.sync().then(() => publish(ch, m, header, body, true, receivedMs, trace));
  if (isModelError(x)) return fromModel(x);
  // The queue a default-exchange publish names may have been declared on another node a moment ago
  // (a reply queue: its declare-ok promised it everywhere): catch up before calling it unroutable.
  if (!synced && m.exchange === '' && !isReplyToName(m.routingKey) && lookupQueue(ch.ctx.metadata.state, ch.vhost, m.routingKey) === undefined) {
    return ch.ctx.metadata.sync().then(() => publish(ch, m, header, body, true, receivedMs, trace));
  }
  const checked = checkMessage(ch, m, x, header.properties);
  if ('protocolError' in checked) return checked;
  const extra = checked.extra;
  const stored = storedMessage(ch, m, header, body);
  if ('protocolError' in stored) return stored;
  const plugins = ch.ctx.plugins;
  const message = plugins === null || !plugins.hasPublishHooks ? stored : plugins.interceptPublish(stored);
  if ('refuse' in message) return refusePublish(ch, amqpError(message.refuse.code, message.refuse.text));
  const headers = message === stored ? header.properties.headers ?? null : (message.properties.headers ?? null) as FieldTable | null;
  const run = (): void => route(ch, m, message, headers, extra, receivedMs, trace);
  if (ch.tx !== null) {
    if (!ch.tx.add(run)) return amqpError(406, 'too many operations in one transaction');
    return;
  }
  run();
}

/**
 * A publish a plugin refused or failed to route: a basic.nack under confirms (as RabbitMQ answers a
 * rejected publish), a channel error otherwise.
 */
function refusePublish(ch: Channel, error: ProtocolError): MethodResult {
  if (ch.confirms === null) return error.scope === 'channel' ? error : amqpErrorText(error.replyCode, error.replyText, 'channel');
  ch.confirms.settle(ch.confirms.publish(1), false);
  ch.conn.requestFlush();
}

function countReceived(ch: Channel): void {
  const c = ch.ctx.counters;
  c.messagesReceived++;
  if (ch.confirms !== null) c.messagesReceivedConfirm++;
}

function route(
  ch: Channel, m: BasicPublish, message: StoredMessage, headers: FieldTable | null, extra: string[] | null, receivedMs: number, sampled: MessageTrace | undefined,
): void {
  if (m.exchange === '' && isReplyToName(m.routingKey)) return routeReply(ch, m, message);
  const hook = ch.ctx.publishHooks.get(m.exchange);
  if (hook !== undefined) return hooked(ch, m, message, hook);
  let queues: QueueBackend[];
  try {
    queues = targetQueues(ch.ctx, ch.vhost, m.exchange, m.routingKey, headers, extra, message);
  } catch (e) {
    if (!(e instanceof RouteFailure)) throw e;
    const refused = refusePublish(ch, amqpErrorText(541, `INTERNAL_ERROR - ${e.message}`, 'channel'));
    if (refused !== undefined) ch.fail(refused as ProtocolError, m);
    return;
  }
  countRouting(ch, m, queues.length > 0);
  if (m.mandatory && queues.length === 0) returnUnroutable(ch, m, message);
  const confirms = ch.confirms;
  const bytes = message.body.length;
  if (confirms === null) {
    for (let i = 0; i < queues.length; i++) {
      const q = queues[i]!;
      const trace = traceFor(sampled, i, q);
      const done = ch.conn.track(q.enqueue(message, trace), bytes);
      if (trace !== undefined) done.then(() => ch.ctx.tracer.published(trace), () => undefined);
      ch.background(done, 'publish', q);
    }
    return;
  }
  const seq = confirms.publish(queues.length, receivedMs);
  if (queues.length === 0) ch.conn.requestFlush();
  for (let i = 0; i < queues.length; i++) {
    const q = queues[i]!;
    const trace = traceFor(sampled, i, q);
    ch.conn.track(q.enqueue(message, trace), bytes).then(
      (r) => {
        confirms.settle(seq, r === 'ok');
        // The confirm of a publish to several queues waits for all: only a single target's is timed.
        if (trace !== undefined) {
          if (queues.length === 1) ch.confirmTraces.push(trace);
          else ch.ctx.tracer.published(trace);
        }
        ch.conn.requestFlush();
      },
      () => {
        confirms.settle(seq, false);
        ch.conn.requestFlush();
      },
    );
  }
}

/** A publish to an exchange a higher layer serves (publish-hooks.ts): confirmed once the hook answers. */
function hooked(ch: Channel, m: BasicPublish, message: StoredMessage, hook: PublishHook): void {
  const confirms = ch.confirms;
  const seq = confirms?.publish(1);
  const p = { vhost: ch.vhost, user: ch.user, exchange: m.exchange, routingKey: m.routingKey, properties: message.properties, body: message.body };
  const settle = (ok: boolean): void => {
    if (confirms === null || seq === undefined) return;
    confirms.settle(seq, ok);
    ch.conn.requestFlush();
  };
  hook(p).then(
    (a) => {
      const replyTo = message.properties['replyTo'];
      if (a.reply !== undefined && typeof replyTo === 'string' && replyTo !== '') sendHookReply(ch, replyTo, message, a.reply);
      settle(a.ok);
    },
    (e: unknown) => {
      ch.ctx.logger.warn('publish hook failed', { exchange: m.exchange, error: e instanceof Error ? e.message : String(e) });
      settle(false);
    },
  );
}

function sendHookReply(ch: Channel, replyTo: string, request: StoredMessage, reply: NonNullable<PublishHookAnswer['reply']>): void {
  const correlationId = request.properties['correlationId'];
  const properties = { contentType: 'application/json', ...(typeof correlationId === 'string' ? { correlationId } : {}) };
  const out: StoredMessage = { exchange: '', routingKey: replyTo, properties, body: reply.body };
  if (isReplyToName(replyTo)) {
    ch.ctx.replies.send(replyTo, out);
    return;
  }
  for (const q of targetQueues(ch.ctx, ch.vhost, '', replyTo, null, null)) q.enqueue(out).catch(() => undefined);
}

function returnUnroutable(ch: Channel, m: BasicPublish, message: StoredMessage): void {
  if (ch.state !== 'open') return;
  ch.sendContent({ name: 'basic.return', replyCode: 312, replyText: 'NO_ROUTE', exchange: m.exchange, routingKey: m.routingKey }, message);
}

/**
 * A reply to a direct reply-to name goes straight to the requester's channel, on this node or
 * its own; no queue, at most once. Confirms ack at once, as RabbitMQ's. A delivered reply counts
 * as routed (RabbitMQ 4.2's rule); a mandatory one that reached no channel (the name does not
 * decode, its node, channel or reply consumer is gone) is returned with 312 NO_ROUTE before its
 * confirm, which means asking the requester's node first.
 */
function routeReply(ch: Channel, m: BasicPublish, message: StoredMessage): void {
  const replies = ch.ctx.replies;
  if (!m.mandatory) {
    countRouting(ch, m, replies.send(m.routingKey, message));
    if (ch.confirms !== null) {
      ch.confirms.publish(0);
      ch.conn.requestFlush();
    }
    return;
  }
  const confirms = ch.confirms;
  const seq = confirms?.publish(1);
  const settled = (delivered: boolean): void => {
    countRouting(ch, m, delivered);
    if (!delivered) {
      replies.stats.returned++;
      returnUnroutable(ch, m, message);
    }
    if (confirms === null || seq === undefined) return;
    confirms.settle(seq, true);
    ch.conn.requestFlush();
  };
  const outcome = replies.sendChecked(m.routingKey, message);
  if (typeof outcome === 'boolean') settled(outcome);
  else void outcome.then(settled);
}

/** The trace of the copy going to the i-th target queue (the first takes the original). */
function traceFor(trace: MessageTrace | undefined, i: number, q: QueueBackend): MessageTrace | undefined {
  if (trace === undefined) return undefined;
  const t = i === 0 ? trace : copyTrace(trace, q.name);
  t.queue = q.name;
  stamp(t, Stage.routed, traceNowMs());
  return t;
}

function countRouting(ch: Channel, m: BasicPublish, routed: boolean): void {
  const c = ch.ctx.counters;
  if (routed) c.messagesRouted++;
  else if (m.mandatory) c.messagesUnroutableReturned++;
  else c.messagesUnroutableDropped++;
}

// ---- consumers -------------------------------------------------------------------------------

export function qos(ch: Channel, m: MethodOf<'basic.qos'>): MethodResult {
  if (m.prefetchSize !== 0) return amqpError(540, `prefetch_size!=0 (${m.prefetchSize})`);
  if (m.global) {
    ch.globalPrefetch = m.prefetchCount;
    if (m.prefetchCount === 0) liftGlobalLimit(ch);
    rebalanceGlobalCredit(ch);
  } else {
    ch.prefetchCount = m.prefetchCount;
  }
  ch.reply({ name: 'basic.qos-ok' });
}

function consumerPriority(args: FieldTable, queue: string, vhost: string): number | ProtocolError {
  if (!('x-priority' in args)) return 0;
  const n = readInt(args['x-priority']);
  if (n === null) {
    return amqpError(406, `invalid arg 'x-priority' for queue '${queue}' in vhost '${vhost}': {unacceptable_type,${typeNameOf(args['x-priority'])}}`);
  }
  return n;
}

/** The queue a consume/get reads; one that is not found here is looked up again after a sync. */
async function queueToRead(ch: Channel, queueName: string): Promise<ReturnType<typeof checkQueueAccess>> {
  const record = checkQueueAccess(ch.ctx.metadata.state, ch.actor, ch.vhost, queueName, ch.connectionRef, 'read');
  if (!isModelError(record) || record.replyCode !== 404) return record;
  await ch.ctx.metadata.sync();
  return checkQueueAccess(ch.ctx.metadata.state, ch.actor, ch.vhost, queueName, ch.connectionRef, 'read');
}

export async function consume(ch: Channel, m: MethodOf<'basic.consume'>): Promise<void | ProtocolError> {
  const queueName = m.queue === '' ? ch.lastQueue : m.queue;
  if (queueName === replyToQueue) return consumeReplyTo(ch, m);
  const tag = m.consumerTag === '' ? ch.newConsumerTag() : m.consumerTag;
  if (ch.consumers.has(tag) || tag === ch.replyConsumerTag) return amqpError(530, `attempt to reuse consumer tag '${tag}'`);
  if (queueName === '') return amqpError(404, 'no previously declared queue');
  const record = await queueToRead(ch, queueName);
  if (isModelError(record)) return fromModel(record);
  const priority = consumerPriority(m.arguments, queueName, ch.vhost);
  if (typeof priority !== 'number') return priority;
  const queue = ch.ctx.queues.ensure(record);
  const exclusiveHolder = ch.ctx.queues.exclusiveConsumer.get(queue);
  if (exclusiveHolder !== undefined || (m.exclusive && queue.stats().consumers > 0)) {
    return amqpError(403, `queue '${queueName}' in vhost '${ch.vhost}' in exclusive use`);
  }
  // No-ack consumers take credit in batches refilled only while the socket keeps up, so a slow
  // reader cannot make the broker buffer a whole queue in memory. Prefetch does not apply to them.
  const global = ch.globalPrefetch > 0 && !m.noAck;
  const granted = m.noAck ? limits.noAckCreditBatch : 0;
  const consumer: Consumer = { tag, queue, queueName, noAck: m.noAck, exclusive: m.exclusive, global, prefetch: ch.prefetchCount, granted, unacked: 0, waitingDrain: false };
  ch.consumers.set(tag, consumer);
  ch.touched.add(queue);
  if (m.exclusive) ch.ctx.queues.exclusiveConsumer.set(queue, ch.ownerId);
  // consume-ok must reach the client before the first delivery for the tag.
  if (!m.nowait) ch.reply({ name: 'basic.consume-ok', consumerTag: tag });
  try {
    await queue.consume(
      { owner: ch.owner, consumerTag: tag, noAck: m.noAck, creditMode: global || m.noAck ? 'granted' : 'auto', prefetch: global ? 0 : m.noAck ? granted : ch.prefetchCount, priority },
      (d) => deliver(ch, consumer, d),
    );
  } catch (e) {
    // Deleted where it lived meanwhile (consume-ok is out already): the consumer learns it as RabbitMQ's do.
    whenQueueGone(e, ch.vhost, queueName);
    ch.serverCancel(tag);
    return;
  }
  if (global) {
    rebalanceGlobalCredit(ch);
    ensureCreditSweep(ch);
  }
}

function consumeReplyTo(ch: Channel, m: MethodOf<'basic.consume'>): void | ProtocolError {
  if (!m.noAck) return amqpError(406, 'reply consumer cannot acknowledge');
  if (ch.replyConsumerTag !== null) return amqpError(406, 'reply consumer already set');
  const tag = m.consumerTag === '' ? ch.newConsumerTag() : m.consumerTag;
  if (ch.consumers.has(tag)) return amqpError(530, `attempt to reuse consumer tag '${tag}'`);
  ch.replyConsumerTag = tag;
  ch.replyName = ch.ctx.replies.register(ch.ownerId, ch);
  if (!m.nowait) ch.reply({ name: 'basic.consume-ok', consumerTag: tag });
}

function deliver(ch: Channel, c: Consumer, d: Delivery): void {
  if (ch.state !== 'open' || !ch.consumers.has(c.tag)) return; // returned by the channel's down
  if (c.noAck) {
    c.granted--;
    if (c.granted <= limits.noAckCreditBatch / 2) topUpNoAck(ch, c);
  } else if (c.global) {
    c.granted = Math.max(0, c.granted - 1);
    if (!c.noAck) {
      c.unacked++;
      ch.globalUnacked++;
    }
  }
  const trace = d.trace;
  const tag = ch.unacked.assign(c.noAck ? null : { queue: c.queue, msgId: d.msgId, consumerTag: c.tag, global: c.global, trace });
  ch.sendContent({
    name: 'basic.deliver', consumerTag: c.tag, deliveryTag: tag, redelivered: d.redelivered,
    exchange: d.message.exchange, routingKey: d.message.routingKey,
  }, outgoing(ch, d.message, d.deliveryCount, c.queueName, d.redelivered));
  const counters = ch.ctx.counters;
  if (c.noAck) counters.deliveredConsumeAutoAck++;
  else counters.deliveredConsumeManualAck++;
  if (d.redelivered) counters.messagesRedelivered++;
  if (trace === undefined) return;
  stamp(trace, Stage.delivered, traceNowMs());
  if (c.noAck) ch.ctx.tracer.consumed(trace);
}

/** The message as it leaves for a client: x-delivery-count set, then the plugins' deliver hooks. */
function outgoing(ch: Channel, stored: StoredMessage, deliveryCount: number, queue: string, redelivered: boolean): StoredMessage {
  const message = withDeliveryCount(stored, deliveryCount);
  const plugins = ch.ctx.plugins;
  return plugins === null || !plugins.hasDeliverHooks ? message : plugins.interceptDeliver(message, queue, redelivered);
}

function topUpNoAck(ch: Channel, c: Consumer): void {
  if (c.waitingDrain || ch.state !== 'open' || !ch.consumers.has(c.tag)) return;
  if (ch.conn.bufferedBytes() > limits.noAckBufferedMaxBytes) {
    c.waitingDrain = true;
    ch.conn.whenDrained(() => {
      c.waitingDrain = false;
      topUpNoAck(ch, c);
    });
    return;
  }
  const add = limits.noAckCreditBatch - c.granted;
  if (add <= 0) return;
  c.granted += add;
  ch.background(c.queue.credit(ch.ownerId, c.tag, add, 'add'), 'credit', c.queue);
}

/**
 * Grants free global credit. With `reclaim`, credit parked on consumers whose queue is empty is
 * taken back first when another global consumer's queue has messages waiting (else a message
 * arriving at a credit-less consumer would wait until some other message is acked).
 */
export function rebalanceGlobalCredit(ch: Channel, reclaim = false): void {
  if (ch.globalPrefetch <= 0 || ch.state !== 'open') return;
  if (reclaim) reclaimIdleCredit(ch);
  const grants = distributeGlobalCredit([...ch.consumers.values()], ch.globalPrefetch, ch.globalUnacked, ch.creditCursor++);
  for (const [c, n] of grants) {
    c.granted += n;
    ch.background(c.queue.credit(ch.ownerId, c.tag, n, 'add'), 'credit', c.queue);
  }
}

/** qos(global, 0) = unlimited: consumers that took credit from the channel get all they want. */
function liftGlobalLimit(ch: Channel): void {
  for (const c of ch.consumers.values()) {
    if (!c.global || c.noAck) continue;
    c.granted = limits.unlimitedCredit;
    ch.background(c.queue.credit(ch.ownerId, c.tag, limits.unlimitedCredit, 'set'), 'credit', c.queue);
  }
}

function reclaimIdleCredit(ch: Channel): void {
  const global = [...ch.consumers.values()].filter((c) => c.global && !c.noAck);
  const starving = global.some((c) => c.granted === 0 && c.queue.stats().messagesReady > 0);
  if (!starving) return;
  for (const c of global) {
    if (c.granted === 0 || c.queue.stats().messagesReady > 0) continue;
    c.granted = 0;
    ch.background(c.queue.credit(ch.ownerId, c.tag, 0, 'set'), 'credit', c.queue);
  }
}

/** While a channel has global consumers, a slow sweep moves parked credit to where it is needed. */
function ensureCreditSweep(ch: Channel): void {
  if (ch.creditSweep !== null) return;
  ch.creditSweep = setInterval(() => rebalanceGlobalCredit(ch, true), creditSweepIntervalMs);
  ch.creditSweep.unref();
}

export async function cancel(ch: Channel, m: MethodOf<'basic.cancel'>): Promise<void> {
  if (m.consumerTag === ch.replyConsumerTag) {
    if (ch.replyName !== null) ch.ctx.replies.unregister(ch.ownerId);
    ch.replyName = null;
    ch.replyConsumerTag = null;
  }
  const c = ch.consumers.get(m.consumerTag);
  if (c !== undefined) {
    ch.consumers.delete(m.consumerTag);
    if (ch.ctx.queues.exclusiveConsumer.get(c.queue) === ch.ownerId) ch.ctx.queues.exclusiveConsumer.delete(c.queue);
    // The channel is done with the consumer either way (cancel-ok, as RabbitMQ); what it holds returns when the channel closes.
    await c.queue.cancel(ch.ownerId, c.tag).catch((e: unknown) => {
      ch.ctx.logger.warn('consumer cancel not carried out by its queue', { channel: ch.ownerId, queue: c.queueName, error: e instanceof Error ? e.message : String(e) });
    });
  }
  if (!m.nowait) ch.reply({ name: 'basic.cancel-ok', consumerTag: m.consumerTag });
  if (c !== undefined) await autoDeleteIfUnused(ch.ctx, ch.vhost, c.queue);
}

/** An auto-delete queue goes when its last consumer does (it had one: we just removed it). */
export async function autoDeleteIfUnused(ctx: NodeContext, vhost: string, queue: QueueBackend): Promise<void> {
  for (const [q, owner] of ctx.queues.exclusiveConsumer) {
    if (q === queue && !ctx.queues.channels.has(owner)) ctx.queues.exclusiveConsumer.delete(q);
  }
  await ctx.queues.deleteIfUnused(vhost, queue);
}

export async function get(ch: Channel, m: MethodOf<'basic.get'>): Promise<void | ProtocolError> {
  const queueName = m.queue === '' ? ch.lastQueue : m.queue;
  if (queueName === '') return amqpError(404, 'no previously declared queue');
  const record = await queueToRead(ch, queueName);
  if (isModelError(record)) return fromModel(record);
  const queue = ch.ctx.queues.ensure(record);
  ch.touched.add(queue);
  let r: Awaited<ReturnType<QueueBackend['get']>>;
  try {
    r = await queue.get(ch.owner, m.noAck);
  } catch (e) {
    return whenQueueGone(e, ch.vhost, queueName);
  }
  const counters = ch.ctx.counters;
  if (r === null) {
    counters.getEmpty++;
    return ch.reply({ name: 'basic.get-empty', clusterId: '' });
  }
  if (m.noAck) counters.deliveredGetAutoAck++;
  else counters.deliveredGetManualAck++;
  if (r.redelivered) counters.messagesRedelivered++;
  if (ch.state !== 'open') return;
  const tag = ch.unacked.assign(m.noAck ? null : { queue, msgId: r.msgId, consumerTag: null, global: false, trace: undefined });
  ch.sendContent({
    name: 'basic.get-ok', deliveryTag: tag, redelivered: r.redelivered, exchange: r.message.exchange,
    routingKey: r.message.routingKey, messageCount: r.messageCount,
  }, outgoing(ch, r.message, r.deliveryCount, queueName, r.redelivered));
}

// ---- acknowledgements ------------------------------------------------------------------------

function take(ch: Channel, tag: number, multiple: boolean): UnackedEntry[] | ProtocolError {
  const entries = ch.unacked.take(tag, multiple);
  if (entries === null) return amqpError(406, `unknown delivery tag ${tag}`);
  let global = 0;
  for (const e of entries) {
    if (!e.global || e.consumerTag === null) continue;
    global++;
    const c = ch.consumers.get(e.consumerTag);
    if (c !== undefined) c.unacked--;
  }
  if (global > 0) {
    ch.globalUnacked -= global;
    queueMicrotask(() => rebalanceGlobalCredit(ch));
  }
  return entries;
}

export function ack(ch: Channel, tag: number, multiple: boolean): void | ProtocolError {
  const entries = take(ch, tag, multiple);
  if (!Array.isArray(entries)) return entries;
  ch.ctx.counters.messagesAcknowledged += entries.length;
  let traced = false;
  for (const e of entries) traced ||= e.trace !== undefined;
  for (const [q, ids] of byQueue(entries)) {
    const settled = q.settle(ch.ownerId, ids);
    ch.background(settled, 'ack', q);
    if (traced) for (const e of entries) if (e.trace !== undefined && e.queue === q) traceSettle(ch, e.trace, settled);
  }
}

/** A traced message was acked now; its settle is committed when `settled` resolves. */
function traceSettle(ch: Channel, trace: MessageTrace, settled: Promise<void>): void {
  stamp(trace, Stage.acked, traceNowMs());
  settled.then(() => {
    stamp(trace, Stage.settled, traceNowMs());
    ch.ctx.tracer.consumed(trace);
  }, () => undefined);
}

export function reject(ch: Channel, tag: number, multiple: boolean, requeue: boolean): void | ProtocolError {
  const entries = take(ch, tag, multiple);
  if (!Array.isArray(entries)) return entries;
  for (const [q, ids] of byQueue(entries)) ch.background(requeue ? q.requeue(ch.ownerId, ids) : q.discard(ch.ownerId, ids), 'reject', q);
}

/** In a transaction, acks/nacks/rejects wait for commit (and are checked then). */
export function settleTx(ch: Channel, m: AmqpMethod, op: () => void | ProtocolError): MethodResult {
  if (ch.tx === null) return op();
  const added = ch.tx.add(() => {
    const e = op();
    if (e !== undefined) ch.fail(e, m);
  });
  if (!added) return amqpError(406, 'too many operations in one transaction');
}

export function recover(ch: Channel, requeue: boolean, sync: boolean): void | ProtocolError {
  if (!requeue) return amqpError(540, 'requeue=false');
  const entries = ch.unacked.takeAll();
  for (const c of ch.consumers.values()) c.unacked = 0;
  ch.globalUnacked = 0;
  for (const [q, ids] of byQueue(entries)) ch.background(q.requeue(ch.ownerId, ids), 'recover', q);
  if (sync) ch.reply({ name: 'basic.recover-ok' });
  queueMicrotask(() => rebalanceGlobalCredit(ch));
}

// ---- confirms and transactions ---------------------------------------------------------------

export function confirmSelect(ch: Channel, nowait: boolean): void | ProtocolError {
  if (ch.tx !== null) return amqpError(406, 'cannot switch from tx to confirm mode');
  ch.confirms ??= new ConfirmTracker(ch.ctx.counters);
  if (!nowait) ch.reply({ name: 'confirm.select-ok' });
}

export function txSelect(ch: Channel): void | ProtocolError {
  if (ch.confirms !== null) return amqpError(406, 'cannot switch from confirm to tx mode');
  ch.tx ??= new Transaction();
  ch.reply({ name: 'tx.select-ok' });
}

export function txCommit(ch: Channel): void | ProtocolError {
  if (ch.tx === null) return amqpError(406, 'channel is not transactional');
  ch.tx.commit();
  ch.reply({ name: 'tx.commit-ok' });
}

export function txRollback(ch: Channel): void | ProtocolError {
  if (ch.tx === null) return amqpError(406, 'channel is not transactional');
  ch.tx.rollback();
  ch.reply({ name: 'tx.rollback-ok' });
}
