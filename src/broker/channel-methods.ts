// Dispatch of a channel's methods, and the metadata ones (exchange.*, queue.*): each becomes a
// command for the metadata client, whose error values close the channel with RabbitMQ's texts.

import { randomBytes } from 'node:crypto';
import { OperatingErrorCode, isOperatingError } from '../lib/errors.js';
import { lookupQueue, type MetadataOk } from '../model/index.js';
import type { Channel, MethodResult } from './channel.js';
import * as basic from './channel-basic.js';
import { replyToPrefix, replyToQueue } from './direct-reply-to.js';
import { amqpError, amqpErrorText, fromModel, whenQueueGone, type ProtocolError } from './errors.js';
import { vhostAdmin } from './plugin-admin.js';
import type { QueueBackend, QueueStats } from './queue-backend.js';
import type { AmqpMethod, MethodOf } from '../amqp/index.js';
import { authorizeMethod } from './plugin-authz.js';

export function dispatchMethod(ch: Channel, m: AmqpMethod): MethodResult {
  const gate = authorizeMethod(ch, m);
  if (gate !== null) return gate.then((refused) => refused ?? runMethod(ch, m));
  return runMethod(ch, m);
}

function runMethod(ch: Channel, m: AmqpMethod): MethodResult {
  switch (m.name) {
    case 'channel.open': return amqpError(504, `second 'channel.open' seen on channel ${ch.number}`);
    case 'channel.close': return ch.clientClose();
    case 'channel.close-ok': return;
    case 'channel.flow':
      if (!m.active) return amqpError(540, 'active=false');
      return ch.reply({ name: 'channel.flow-ok', active: true });
    case 'access.request': return ch.reply({ name: 'access.request-ok', ticket: 1 });
    case 'exchange.declare': return exchangeDeclare(ch, m);
    case 'exchange.delete': return simple(ch, m.nowait, { name: 'exchange.delete-ok' },
      { kind: 'deleteExchange', vhost: ch.vhost, name: m.exchange, ifUnused: m.ifUnused, user: ch.actor });
    case 'exchange.bind':
    case 'exchange.unbind': return simple(ch, m.nowait, { name: m.name === 'exchange.bind' ? 'exchange.bind-ok' : 'exchange.unbind-ok' },
      { kind: m.name === 'exchange.bind' ? 'bindExchange' : 'unbindExchange', vhost: ch.vhost, source: m.source, destination: m.destination, routingKey: m.routingKey, arguments: m.arguments, user: ch.actor });
    case 'queue.declare': return queueDeclare(ch, m);
    case 'queue.bind':
    case 'queue.unbind': return queueBind(ch, m);
    case 'queue.purge': return queuePurge(ch, m);
    case 'queue.delete': return queueDelete(ch, m);
    case 'basic.qos': return basic.qos(ch, m);
    case 'basic.consume': return basic.consume(ch, m);
    case 'basic.cancel': return basic.cancel(ch, m);
    case 'basic.get': return basic.get(ch, m);
    case 'basic.ack': return basic.settleTx(ch, m, () => basic.ack(ch, m.deliveryTag, m.multiple));
    case 'basic.reject': return basic.settleTx(ch, m, () => basic.reject(ch, m.deliveryTag, false, m.requeue));
    case 'basic.nack': return basic.settleTx(ch, m, () => basic.reject(ch, m.deliveryTag, m.multiple, m.requeue));
    case 'basic.recover':
    case 'basic.recover-async': return basic.recover(ch, m.requeue, m.name === 'basic.recover');
    case 'confirm.select': return basic.confirmSelect(ch, m.nowait);
    case 'tx.select': return basic.txSelect(ch);
    case 'tx.commit': return basic.txCommit(ch);
    case 'tx.rollback': return basic.txRollback(ch);
    default: return amqpError(503, `method '${m.name}' is not valid from a client on channel ${ch.number}`);
  }
}

type Command = Parameters<Channel['ctx']['metadata']['apply']>[0];

/** A metadata command whose success is answered by one fixed method. */
async function simple(ch: Channel, nowait: boolean, ok: AmqpMethod, command: Command): Promise<void | ProtocolError> {
  const r = await ch.ctx.metadata.apply(command);
  if (!r.ok) return fromModel(r);
  afterDeletes(ch, r);
  // A plugin exchange type cleans up what it kept for a deleted exchange (plugin-admin.ts).
  const failed = r.deletedExchanges.length === 0 || ch.ctx.plugins === null ? null : await ch.ctx.plugins.exchangesDeleted(r.deletedExchanges, vhostAdmin(ch.ctx, ch.vhost));
  if (failed !== null) return amqpErrorText(541, `INTERNAL_ERROR - ${failed}`, 'channel');
  if (!nowait) ch.reply(ok);
}

function afterDeletes(ch: Channel, r: MetadataOk): void {
  if (r.deletedQueues.length === 0) return;
  ch.ctx.queues.dropDeleted(r.deletedQueues);
  for (const q of r.deletedQueues) ch.ctx.plugins?.emit('queue.deleted', { vhost: q.vhost, name: q.name });
}

async function exchangeDeclare(ch: Channel, m: MethodOf<'exchange.declare'>): Promise<void | ProtocolError> {
  const r = await ch.ctx.metadata.apply({
    kind: 'declareExchange', vhost: ch.vhost, name: m.exchange, type: m.type, passive: m.passive,
    durable: m.durable, autoDelete: m.autoDelete, internal: m.internal, arguments: m.arguments, user: ch.actor,
  });
  if (!r.ok) return fromModel(r);
  // A plugin exchange type may keep queues of its own: made before declare-ok (plugin-admin.ts).
  if (!m.passive && r.exchange !== undefined && ch.ctx.plugins !== null) {
    const failed = await ch.ctx.plugins.exchangeDeclared(r.exchange, vhostAdmin(ch.ctx, ch.vhost));
    if (failed !== null) return amqpErrorText(541, `INTERNAL_ERROR - ${failed}`, 'channel');
  }
  if (!m.nowait) ch.reply({ name: 'exchange.declare-ok' });
}

function resolveQueueName(ch: Channel, name: string, method: AmqpMethod): string | ProtocolError {
  if (name !== '') return name;
  if (ch.lastQueue === '') return amqpError(404, `no previously declared queue`);
  void method;
  return ch.lastQueue;
}

async function queueDeclare(ch: Channel, m: MethodOf<'queue.declare'>): Promise<void | ProtocolError> {
  if (m.queue.startsWith(replyToPrefix) || m.queue === replyToQueue) return declareReplyTo(ch, m);
  const serverNamed = m.queue === '';
  const name = serverNamed ? 'amq.gen-' + randomBytes(16).toString('base64url').slice(0, 22) : m.queue;
  const r = await ch.ctx.metadata.apply({
    kind: 'declareQueue', vhost: ch.vhost, name, serverNamed, passive: m.passive, durable: m.durable,
    exclusive: m.exclusive, autoDelete: m.autoDelete, arguments: m.arguments, connection: ch.connectionRef, user: ch.actor,
  });
  if (!r.ok) return fromModel(r);
  const record = r.queue ?? lookupQueue(ch.ctx.metadata.state, ch.vhost, name);
  if (record === undefined) return amqpError(404, `no queue '${name}' in vhost '${ch.vhost}'`);
  const queue = ch.ctx.queues.ensure(record);
  if (r.created) ch.ctx.plugins?.emit('queue.declared', { vhost: record.vhost, name: record.name, durable: record.durable, arguments: record.arguments });
  let stats = queue.stats();
  if (!r.created) {
    // An existing queue counts as used (x-expires); one that lives on another node is asked for its counts.
    try {
      stats = await touched(queue);
    } catch (e) {
      return whenQueueGone(e, ch.vhost, name);
    }
  }
  ch.lastQueue = record.name;
  if (!m.nowait) ch.reply({ name: 'queue.declare-ok', queue: record.name, messageCount: stats.messagesReady, consumerCount: stats.consumers });
}

/**
 * Touches the queue (use, for x-expires) and answers its counters, from where it lives when that
 * is elsewhere; when that node cannot answer now (an election), the counters last heard. A queue
 * deleted there rejects (Closed).
 */
function touched(queue: QueueBackend): Promise<QueueStats> {
  if (queue.refresh === undefined) {
    queue.touch();
    return Promise.resolve(queue.stats());
  }
  return queue.refresh().catch((e: unknown) => {
    if (isOperatingError(e, OperatingErrorCode.Closed)) throw e;
    return queue.stats();
  });
}

/**
 * queue.declare of a reply-to name (passive or not, it creates nothing): declare-ok with 0
 * messages and 1 consumer while the requester's channel listens, asked of its node, else 404.
 */
async function declareReplyTo(ch: Channel, m: MethodOf<'queue.declare'>): Promise<void | ProtocolError> {
  const alive = await ch.ctx.replies.exists(m.queue);
  if (!alive) return amqpError(404, `no queue '${m.queue}' in vhost '${ch.vhost}'`);
  if (!m.nowait) ch.reply({ name: 'queue.declare-ok', queue: m.queue, messageCount: 0, consumerCount: 1 });
}

function queueBind(ch: Channel, m: MethodOf<'queue.bind'> | MethodOf<'queue.unbind'>): MethodResult {
  const queue = resolveQueueName(ch, m.queue, m);
  if (typeof queue !== 'string') return queue;
  // "" key with "" queue binds with the last declared queue's name, as RabbitMQ.
  const routingKey = m.queue === '' && m.routingKey === '' ? queue : m.routingKey;
  const bind = m.name === 'queue.bind';
  return simple(ch, bind ? m.nowait : false, { name: bind ? 'queue.bind-ok' : 'queue.unbind-ok' }, {
    kind: bind ? 'bindQueue' : 'unbindQueue', vhost: ch.vhost, queue, exchange: m.exchange, routingKey,
    arguments: m.arguments, connection: ch.connectionRef, user: ch.actor,
  });
}

async function queuePurge(ch: Channel, m: MethodOf<'queue.purge'>): Promise<void | ProtocolError> {
  const name = resolveQueueName(ch, m.queue, m);
  if (typeof name !== 'string') return name;
  const r = await ch.ctx.metadata.apply({ kind: 'purgeQueue', vhost: ch.vhost, name, connection: ch.connectionRef, user: ch.actor });
  if (!r.ok) return fromModel(r);
  const record = r.queue ?? lookupQueue(ch.ctx.metadata.state, ch.vhost, name);
  let count = 0;
  try {
    if (record !== undefined) count = await ch.ctx.queues.ensure(record).purge();
  } catch (e) {
    return whenQueueGone(e, ch.vhost, name);
  }
  if (!m.nowait) ch.reply({ name: 'queue.purge-ok', messageCount: count });
}

async function queueDelete(ch: Channel, m: MethodOf<'queue.delete'>): Promise<void | ProtocolError> {
  const name = resolveQueueName(ch, m.queue, m);
  if (typeof name !== 'string') return name;
  const record = lookupQueue(ch.ctx.metadata.state, ch.vhost, name);
  const backend = record === undefined ? undefined : ch.ctx.queues.ensure(record);
  // if-unused / if-empty and delete-ok's count need the counts of where the queue lives.
  const stats = backend?.refresh === undefined ? backend?.stats() : await backend.refresh().catch(() => backend.stats());
  const r = await ch.ctx.metadata.apply({
    kind: 'deleteQueue', vhost: ch.vhost, name, ifUnused: m.ifUnused, ifEmpty: m.ifEmpty,
    consumerCount: stats?.consumers ?? 0, messageCount: stats?.messagesReady ?? 0, connection: ch.connectionRef, user: ch.actor,
  });
  if (!r.ok) return fromModel(r);
  const count = ch.ctx.queues.dropDeleted(r.deletedQueues);
  for (const q of r.deletedQueues) ch.ctx.plugins?.emit('queue.deleted', { vhost: q.vhost, name: q.name });
  if (!m.nowait) ch.reply({ name: 'queue.delete-ok', messageCount: count });
}
