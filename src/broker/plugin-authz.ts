// Authorization by the plugin auth backend that admitted a connection (when it has authorize):
// vhost access at connection.open, and before each method the resource and topic checks
// RabbitMQ makes (configure on declare/delete, write/read on bind, write on publish, read on
// consume/get/purge), with RabbitMQ's refusal texts. Positive answers are cached per connection,
// so a steady publish loop asks the backend once; the model is then told the command is trusted.

import { lookupExchange } from '../model/index.js';
import type { AmqpMethod } from '../amqp/index.js';
import type { Channel } from './channel.js';
import type { Connection } from './connection.js';
import { amqpError, type ProtocolError } from './errors.js';
import type { AuthzRequest } from './plugin-api.js';

type Resource = 'exchange' | 'queue';
type Permission = 'configure' | 'write' | 'read';
type Check = { resource: Resource; name: string; permission: Permission } | { topic: string; routingKey: string; permission: 'write' | 'read' };

const cachedAnswersMax = 256;

function ask(conn: Connection, vhost: string, check: Check | null): Promise<boolean> | boolean {
  const a = conn.admission!;
  const base = { user: conn.user, tags: a.tags, vhost, ip: conn.remote.slice(0, conn.remote.lastIndexOf(':')) };
  const request: AuthzRequest = check === null ? { ...base, kind: 'vhost' }
    : 'topic' in check ? { ...base, kind: 'topic', resource: 'topic', name: check.topic, permission: check.permission, routingKey: check.routingKey }
      : { ...base, kind: 'resource', resource: check.resource, name: resourceName(check), permission: check.permission };
  const key = JSON.stringify(request);
  if (conn.authzAllowed.has(key)) return true;
  return conn.ctx.plugins!.authorize(a, request).then((yes) => {
    if (yes) {
      if (conn.authzAllowed.size >= cachedAnswersMax) conn.authzAllowed.clear();
      conn.authzAllowed.add(key);
    }
    return yes;
  });
}

export async function authorizeVhost(conn: Connection, vhost: string): Promise<ProtocolError | null> {
  const refused = amqpError(530, `access to vhost '${vhost}' refused for user '${conn.user}'`);
  if (!conn.ctx.metadata.state.vhosts.has(vhost)) return refused;
  return (await ask(conn, vhost, null)) ? null : refused;
}

/** The default exchange is 'amq.default' in permission checks, as in RabbitMQ. */
function resourceName(c: { resource: Resource; name: string }): string {
  return c.resource === 'exchange' && c.name === '' ? 'amq.default' : c.name;
}

function refusal(ch: Channel, c: Check): ProtocolError {
  if ('topic' in c) return amqpError(403, `${c.permission} access to topic '${c.routingKey}' in exchange '${c.topic}' in vhost '${ch.vhost}' refused for user '${ch.user}'`);
  return amqpError(403, `${c.permission} access to ${c.resource} '${resourceName(c)}' in vhost '${ch.vhost}' refused for user '${ch.user}'`);
}

/** The checks in order; null when all are cached yes, else a promise of the first refusal (or null). */
function checkAll(ch: Channel, checks: readonly Check[]): Promise<ProtocolError | null> | null {
  const pending: Array<{ c: Check; answer: Promise<boolean> }> = [];
  for (const c of checks) {
    const answer = ask(ch.conn, ch.vhost, c);
    if (answer === true) continue;
    pending.push({ c, answer: answer === false ? Promise.resolve(false) : answer });
  }
  if (pending.length === 0) return null;
  return (async () => {
    for (const p of pending) if (!(await p.answer)) return refusal(ch, p.c);
    return null;
  })();
}

function topicCheck(ch: Channel, exchange: string, routingKey: string, permission: 'write' | 'read'): Check[] {
  const x = lookupExchange(ch.ctx.metadata.state, ch.vhost, exchange);
  return x?.type === 'topic' ? [{ topic: exchange, routingKey, permission }] : [];
}

/** What a method needs allowed before it runs (RabbitMQ's rabbit_channel checks). */
function checksOf(ch: Channel, m: AmqpMethod): Check[] {
  const q = (name: string, permission: Permission): Check => ({ resource: 'queue', name: name === '' ? ch.lastQueue : name, permission });
  const x = (name: string, permission: Permission): Check => ({ resource: 'exchange', name, permission });
  switch (m.name) {
    case 'exchange.declare': return m.passive ? [] : [x(m.exchange, 'configure')];
    case 'exchange.delete': return [x(m.exchange, 'configure')];
    case 'exchange.bind': case 'exchange.unbind': return [x(m.destination, 'write'), x(m.source, 'read')];
    case 'queue.declare': return m.passive || m.queue === '' ? [] : [q(m.queue, 'configure')];
    case 'queue.delete': return [q(m.queue, 'configure')];
    case 'queue.purge': return [q(m.queue, 'read')];
    case 'queue.bind': case 'queue.unbind':
      return [q(m.queue, 'write'), x(m.exchange, 'read'), ...topicCheck(ch, m.exchange, m.routingKey, 'read')];
    case 'basic.consume': case 'basic.get': return m.queue.startsWith('amq.rabbitmq.reply-to') ? [] : [q(m.queue, 'read')];
    default: return [];
  }
}

/** Before a channel method of a connection whose backend authorizes: null (go on) or the refusal. */
export function authorizeMethod(ch: Channel, m: AmqpMethod): Promise<ProtocolError | null> | null {
  if (ch.conn.admission?.backend.authorize === undefined) return null;
  return checkAll(ch, checksOf(ch, m));
}

/** Before a publish: write on the exchange, and on the routing key for a topic exchange. */
export function authorizePublish(ch: Channel, exchange: string, routingKey: string): Promise<ProtocolError | null> | null {
  if (ch.conn.admission?.backend.authorize === undefined) return null;
  return checkAll(ch, [{ resource: 'exchange', name: exchange, permission: 'write' }, ...topicCheck(ch, exchange, routingKey, 'write')]);
}
