// Routing on the publish path: a walk from the publish exchange over queue and exchange-to-exchange
// bindings with a visited set, each queue at most once, alternate exchanges for exchanges that
// route nowhere, and the default exchange (routing key = queue name). Also the publish checks.

import { checkPermission } from './access.js';
import { errors, type ModelError } from './errors.js';
import type { FieldTable } from './field-values.js';
import { hasKey, readString, typeNameOf, untag } from './field-values.js';
import { limits } from './limits.js';
import { alternateExchangeOf } from './policies.js';
import type { RouteSink, RoutedMessage } from './router.js';
import type { MetadataState, VhostState } from './state.js';
import type { BindingRecord, ExchangeRecord } from './types.js';

// Small lists dedupe by scan; past this size a stamp map takes over (most publishes reach few
// queues). The map keeps its entries across calls, stamped with the call's generation, so a
// fan-out to many queues does not rebuild a hash table per publish. It is cleared at a bound.
const scanMax = 16;
const stampEntriesMax = 1_000_000;

class Collector implements RouteSink {
  out: string[] = [];
  readonly work: string[] = [];
  workLength = 0;
  hits = 0;
  private generation = 0;
  private outStamped = false;
  private workStamped = false;
  private readonly queueStamp = new Map<string, number>();
  private readonly exchangeStamp = new Map<string, number>();

  vhost: VhostState | null = null;

  begin(out: string[], vhost: VhostState): void {
    this.out = out;
    this.vhost = vhost;
    this.workLength = 0;
    this.hits = 0;
    this.outStamped = false;
    this.workStamped = false;
    this.generation++;
    if (this.queueStamp.size > stampEntriesMax) this.queueStamp.clear();
    if (this.exchangeStamp.size > stampEntriesMax) this.exchangeStamp.clear();
  }

  hit(b: BindingRecord): void {
    this.hits++;
    if (b.destinationKind === 'queue') this.addQueue(b.destination);
    else this.visit(b.destination);
  }

  queue(name: string): void {
    if (this.vhost?.queues.has(name) === true) this.addQueue(name);
  }

  addQueue(name: string): void {
    const out = this.out;
    if (out.length < scanMax) {
      if (!out.includes(name)) out.push(name);
      return;
    }
    const gen = this.generation;
    if (!this.outStamped) {
      for (const q of out) this.queueStamp.set(q, gen);
      this.outStamped = true;
    }
    if (this.queueStamp.get(name) === gen) return;
    this.queueStamp.set(name, gen);
    out.push(name);
  }

  visit(exchange: string): void {
    const n = this.workLength;
    const gen = this.generation;
    if (n < scanMax) {
      for (let i = 0; i < n; i++) if (this.work[i] === exchange) return;
    } else {
      if (!this.workStamped) {
        for (let i = 0; i < n; i++) this.exchangeStamp.set(this.work[i] as string, gen);
        this.workStamped = true;
      }
      if (this.exchangeStamp.get(exchange) === gen) return;
      this.exchangeStamp.set(exchange, gen);
    }
    this.work[n] = exchange;
    this.workLength = n + 1;
  }
}

const collector = new Collector();

/**
 * The queues a message published to `exchange` reaches, each once. Treat the result as a set:
 * its order is deterministic for a given history of commands, but a state restored from a
 * snapshot may list the same queues in another order. `extraKeys` are the CC/BCC routing keys (see extraRoutingKeys). A missing vhost or exchange
 * routes nowhere (check with checkPublish first). Direct reply-to names are not queues here:
 * the broker handles them before routing. `message` (properties and body) is what custom exchange
 * types see besides key and headers; one of them failing throws RouteFailure.
 */
export function route(state: MetadataState, vhost: string, exchange: string, routingKey: string,
  headers: FieldTable | null = null, extraKeys: readonly string[] | null = null,
  message: RoutedMessage | null = null): string[] {
  const out: string[] = [];
  const v = state.vhosts.get(vhost);
  if (v === undefined) return out;
  const c = collector;
  c.begin(out, v);
  if (exchange === '') {
    routeDefault(v, routingKey, c);
    if (extraKeys !== null) for (const k of extraKeys) routeDefault(v, k, c);
    return out;
  }
  c.visit(exchange);
  for (let i = 0; i < c.workLength && i < limits.routeExchangesVisitedMax; i++) {
    const x = v.exchanges.get(c.work[i] as string);
    if (x === undefined) continue;
    const before = c.hits;
    x.router.route(routingKey, headers, c, message);
    if (extraKeys !== null) for (const k of extraKeys) x.router.route(k, headers, c, message);
    if (c.hits === before) {
      const ae = alternateExchangeOf(v, x.record);
      if (ae !== null && v.exchanges.has(ae)) c.visit(ae);
    }
  }
  return out;
}

function routeDefault(v: VhostState, key: string, c: Collector): void {
  if (v.queues.has(key)) c.addQueue(key);
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
export function extraRoutingKeys(headers: FieldTable | null | undefined): string[] | null | ModelError {
  if (headers === null || headers === undefined) return null;
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
