// Routing on the publish path: a walk from the publish exchange over queue and exchange-to-exchange
// bindings with a visited set, each queue at most once, alternate exchanges for exchanges that
// route nowhere, and the default exchange (routing key = queue name). Also the publish checks.

import { checkPermission } from './access.js';
import { errors, type ModelError } from './errors.js';
import type { FieldTable } from './field-values.js';
import { hasKey, readString, typeNameOf, untag } from './field-values.js';
import { limits } from './limits.js';
import { alternateExchangeOf } from './policies.js';
import type { RouteSink } from './router.js';
import type { MetadataState, VhostState } from './state.js';
import type { BindingRecord, ExchangeRecord } from './types.js';

// One collector reused across calls: routing is synchronous and not re-entrant.
class Collector implements RouteSink {
  readonly queues = new Set<string>();
  readonly seen = new Set<string>();
  readonly work: string[] = [];
  hits = 0;

  reset(): void {
    this.queues.clear();
    this.seen.clear();
    this.work.length = 0;
    this.hits = 0;
  }

  hit(b: BindingRecord): void {
    this.hits++;
    if (b.destinationKind === 'queue') this.queues.add(b.destination);
    else this.visit(b.destination);
  }

  visit(exchange: string): void {
    if (this.seen.has(exchange)) return;
    this.seen.add(exchange);
    this.work.push(exchange);
  }
}

const collector = new Collector();

/**
 * The queues a message published to `exchange` reaches. `extraKeys` are the CC/BCC routing keys
 * (see extraRoutingKeys). A missing vhost or exchange routes nowhere (check with checkPublish).
 * Direct reply-to names are not queues here: the broker handles them before routing.
 */
export function route(state: MetadataState, vhost: string, exchange: string, routingKey: string,
  headers: FieldTable | null = null, extraKeys: readonly string[] | null = null): string[] {
  const v = state.vhosts.get(vhost);
  if (v === undefined) return [];
  const c = collector;
  c.reset();
  if (exchange === '') {
    routeDefault(v, routingKey, c);
    if (extraKeys !== null) for (const k of extraKeys) routeDefault(v, k, c);
    return Array.from(c.queues);
  }
  c.visit(exchange);
  for (let i = 0; i < c.work.length && i < limits.routeExchangesVisitedMax; i++) {
    const x = v.exchanges.get(c.work[i] as string);
    if (x === undefined) continue;
    const before = c.hits;
    x.router.route(routingKey, headers, c);
    if (extraKeys !== null) for (const k of extraKeys) x.router.route(k, headers, c);
    if (c.hits === before) {
      const ae = alternateExchangeOf(v, x.record);
      if (ae !== null && v.exchanges.has(ae)) c.visit(ae);
    }
  }
  return Array.from(c.queues);
}

function routeDefault(v: VhostState, key: string, c: Collector): void {
  if (v.queues.has(key)) c.queues.add(key);
}

/** basic.publish checks in RabbitMQ's order: write permission (403), exists (404), internal (403). */
export function checkPublish(state: MetadataState, user: string | undefined, vhost: string,
  exchange: string): ExchangeRecord | ModelError {
  const denied = checkPermission(state, user, vhost, 'exchange', exchange, 'write');
  if (denied !== null) return denied;
  const x = state.vhosts.get(vhost)?.exchanges.get(exchange);
  if (x === undefined) return errors.notFound('exchange', vhost, exchange);
  if (x.record.internal) return errors.internalExchange(vhost, exchange);
  return x.record;
}

/**
 * The CC and BCC headers (arrays of strings) as extra routing keys; null when there are none.
 * A wrong type is a 406. The broker strips BCC before delivery.
 */
export function extraRoutingKeys(headers: FieldTable | null): string[] | null | ModelError {
  if (headers === null) return null;
  let keys: string[] | null = null;
  for (const name of ['CC', 'BCC']) {
    if (!hasKey(headers, name)) continue;
    const raw = headers[name];
    const list = untag(raw);
    if (!Array.isArray(list)) return invalidHeader(name, typeNameOf(raw));
    for (const item of list) {
      const s = readString(item);
      if (s === null) return invalidHeader(name, typeNameOf(item));
      (keys ??= []).push(s);
    }
  }
  return keys;
}

function invalidHeader(name: string, type: string): ModelError {
  return errors.bindingInvalid(`invalid message: {unacceptable_type_in_header,"${name}",${type}}`);
}
