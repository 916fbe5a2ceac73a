// queue.bind/unbind and exchange.bind/unbind: RabbitMQ's binding_action checks (permissions,
// default exchange, existence, exclusive owner, per-type binding validation), then the change.

import { checkPermission, checkTopicAccess } from './access.js';
import { addBinding, findBinding, removeBinding } from './bindings.js';
import { validateCustomBinding } from './custom-exchanges.js';
import { errors, type ModelError } from './errors.js';
import { normalizeTable } from './field-values.js';
import { validateHeadersBinding } from './headers.js';
import { limits } from './limits.js';
import { checkExclusiveAccess } from './queues.js';
import { ok } from './results.js';
import type { MetadataState } from './state.js';
import { stripCrLf } from './state.js';
import { validateTopicBindingKey } from './topic.js';
import type {
  BindExchange, BindingRecord, BindQueue, DestinationKind, ExchangeRecord, MetadataOk,
} from './types.js';

/** Prefix of direct reply-to pseudo queues (SURFACE.md section 9). */
export const replyToPrefix = 'amq.rabbitmq.reply-to';

export function isReplyToName(name: string): boolean {
  return name === replyToPrefix || name.startsWith(`${replyToPrefix}.`);
}

interface BindRequest {
  readonly user: string | undefined;
  readonly vhost: string;
  readonly source: string;
  readonly destinationKind: DestinationKind;
  readonly destination: string;
  readonly routingKey: string;
  readonly arguments: Readonly<Record<string, unknown>>;
  readonly unbind: boolean;
  readonly connection: BindQueue['connection'];
}

export function bindQueue(state: MetadataState, c: BindQueue): MetadataOk | ModelError {
  return applyBinding(state, {
    user: c.user, vhost: c.vhost, source: c.exchange, destinationKind: 'queue',
    destination: c.queue, routingKey: c.routingKey, arguments: c.arguments,
    unbind: c.kind === 'unbindQueue', connection: c.connection,
  });
}

export function bindExchange(state: MetadataState, c: BindExchange): MetadataOk | ModelError {
  return applyBinding(state, {
    user: c.user, vhost: c.vhost, source: c.source, destinationKind: 'exchange',
    destination: c.destination, routingKey: c.routingKey, arguments: c.arguments,
    unbind: c.kind === 'unbindExchange', connection: null,
  });
}

function applyBinding(state: MetadataState, r: BindRequest): MetadataOk | ModelError {
  const vhost = state.vhosts.get(r.vhost);
  if (vhost === undefined) return errors.vhostNotFound(r.vhost);
  const source = stripCrLf(r.source);
  const destination = stripCrLf(r.destination);
  const problem = checkBindingAccess(state, r, source, destination);
  if (problem !== null) return problem;
  const x = vhost.exchanges.get(source);
  if (x === undefined) return errors.notFound('exchange', r.vhost, source);
  const topicDenied = checkTopicAccess(state, r.user, r.vhost, x.record, r.routingKey, 'read');
  if (topicDenied !== null) return topicDenied;
  if (r.destinationKind === 'queue') {
    const q = vhost.queues.get(destination);
    if (q === undefined) return errors.notFound('queue', r.vhost, destination);
    const locked = checkExclusiveAccess(q.record, r.connection);
    if (locked !== null) return locked;
  } else if (!vhost.exchanges.has(destination)) {
    return errors.notFound('exchange', r.vhost, destination);
  }
  const binding: BindingRecord = {
    vhost: r.vhost, source, destinationKind: r.destinationKind, destination,
    routingKey: r.routingKey, arguments: normalizeTable(r.arguments),
  };
  if (r.unbind) {
    const stored = findBinding(vhost, binding);
    const deleted: ExchangeRecord[] = [];
    if (stored !== undefined) removeBinding(vhost, stored, deleted);
    return ok({ deletedExchanges: deleted });
  }
  const invalid = x.record.type === 'topic' ? validateTopicBindingKey(r.routingKey)
    : x.record.type === 'headers' ? validateHeadersBinding(r.arguments) : validateCustomBinding(binding, x.record);
  if (invalid !== null) return invalid;
  if (findBinding(vhost, binding) !== undefined) return ok({});
  if (x.outgoing.size >= limits.bindingsPerExchangeMax) {
    return errors.limitReached(`binding count of exchange '${source}'`, limits.bindingsPerExchangeMax);
  }
  addBinding(vhost, binding);
  return ok({ created: true });
}

function checkBindingAccess(state: MetadataState, r: BindRequest, source: string,
  destination: string): ModelError | null {
  if (r.destinationKind === 'queue' && isReplyToName(destination)) {
    return errors.bindReplyTo(r.vhost, destination);
  }
  const denied = checkPermission(state, r.user, r.vhost, r.destinationKind, destination, 'write');
  if (denied !== null) return denied;
  if (source === '' || (r.destinationKind === 'exchange' && destination === '')) {
    return errors.defaultExchange();
  }
  return checkPermission(state, r.user, r.vhost, 'exchange', source, 'read');
}
