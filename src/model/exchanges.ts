// exchange.declare (passive too) and exchange.delete with RabbitMQ's checks in its order:
// type, default exchange, permissions, reserved 'amq.' names, equivalence, alternate-exchange.

import { checkAnyPermission, checkPermission } from './access.js';
import { isKnownExchangeType, validateCustomDeclare } from './custom-exchanges.js';
import { removeExchange } from './bindings.js';
import { errors, type ModelError } from './errors.js';
import type { ArgTable } from './field-values.js';
import { argEquivalent, describeRaw, describeStored, hasKey, normalizeTable, typeNameOf } from './field-values.js';
import { limits } from './limits.js';
import { ok } from './results.js';
import type { ExchangeState, MetadataState } from './state.js';
import { isReservedName, putExchange, stripCrLf } from './state.js';
import type { DeclareExchange, DeleteExchange, ExchangeRecord, MetadataOk } from './types.js';

/** Exchange arguments RabbitMQ compares on redeclare. */
const equivalenceArgs = ['alternate-exchange'];

export function declareExchange(state: MetadataState, c: DeclareExchange): MetadataOk | ModelError {
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  const name = stripCrLf(c.name);
  if (c.passive) {
    if (name === '') return errors.defaultExchange();
    const refused = checkAnyPermission(state, c.user, c.vhost, 'exchange', name);
    if (refused !== null) return refused;
    const found = vhost.exchanges.get(name);
    return found === undefined ? errors.notFound('exchange', c.vhost, name)
      : ok({ exchange: found.record });
  }
  if (!isKnownExchangeType(c.type)) return errors.invalidExchangeType(c.type);
  if (name === '') return errors.defaultExchange();
  const denied = checkPermission(state, c.user, c.vhost, 'exchange', name, 'configure');
  if (denied !== null) return denied;
  const existing = vhost.exchanges.get(name);
  if (existing !== undefined) {
    const inequivalent = checkEquivalence(existing, c);
    return inequivalent ?? ok({ exchange: existing.record });
  }
  if (isReservedName(name)) return errors.reservedName('exchange', name);
  const aeProblem = checkAlternateExchange(state, c, name);
  if (aeProblem !== null) return aeProblem;
  if (vhost.exchanges.size >= limits.exchangesPerVhostMax) {
    return errors.limitReached(`exchange count in vhost '${c.vhost}'`, limits.exchangesPerVhostMax);
  }
  const record: ExchangeRecord = {
    vhost: c.vhost, name, type: c.type, durable: c.durable,
    autoDelete: c.autoDelete, internal: c.internal, arguments: normalizeTable(c.arguments),
  };
  const refused = validateCustomDeclare(record);
  if (refused !== null) return refused;
  putExchange(vhost, record);
  return ok({ created: true, exchange: record });
}

function checkAlternateExchange(state: MetadataState, c: DeclareExchange, name: string):
ModelError | null {
  if (!hasKey(c.arguments, 'alternate-exchange')) return null;
  const raw = c.arguments['alternate-exchange'];
  const type = typeNameOf(raw);
  if (type !== 'longstr' && type !== 'binary') {
    return errors.invalidArgType('exchange', c.vhost, name, 'alternate-exchange', type);
  }
  const ae = String(normalizeTable({ ae: raw })['ae']);
  return checkPermission(state, c.user, c.vhost, 'exchange', name, 'read')
    ?? checkPermission(state, c.user, c.vhost, 'exchange', ae, 'write');
}

function checkEquivalence(x: ExchangeState, c: DeclareExchange): ModelError | null {
  const r = x.record;
  const fields: Array<[string, string, string]> = [
    ['type', c.type, r.type],
    ['durable', String(c.durable), String(r.durable)],
    ['auto_delete', String(c.autoDelete), String(r.autoDelete)],
    ['internal', String(c.internal), String(r.internal)],
  ];
  for (const [arg, received, current] of fields) {
    if (received !== current) {
      return errors.inequivalent('exchange', r.vhost, r.name, arg, `'${received}'`, `'${current}'`);
    }
  }
  return checkArgsEquivalence(r.arguments, c.arguments, equivalenceArgs,
    (arg, received, current) => errors.inequivalent('exchange', r.vhost, r.name, arg, received, current));
}

/** RabbitMQ's assert_args_equivalence over `keys`; `fail` builds the 406. */
export function checkArgsEquivalence(stored: ArgTable, received: Readonly<Record<string, unknown>>,
  keys: readonly string[], fail: (arg: string, received: string, current: string) => ModelError,
  isAbsent: (key: string, value: unknown) => boolean = () => false): ModelError | null {
  for (const key of keys) {
    const had = hasKey(stored, key) && !isAbsent(key, stored[key]) ? stored[key] : undefined;
    const got = hasKey(received, key) && !isAbsent(key, received[key]) ? received[key] : undefined;
    if (had === undefined && got === undefined) continue;
    if (had !== undefined && got !== undefined && argEquivalent(got, had)) continue;
    return fail(key, describeRaw(got), describeStored(had));
  }
  return null;
}

export function deleteExchange(state: MetadataState, c: DeleteExchange): MetadataOk | ModelError {
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  const name = stripCrLf(c.name);
  if (name === '') return errors.defaultExchange();
  if (isReservedName(name)) return errors.systemExchangeDeletion(c.vhost, name);
  const denied = checkPermission(state, c.user, c.vhost, 'exchange', name, 'configure');
  if (denied !== null) return denied;
  const x = vhost.exchanges.get(name);
  if (x === undefined) return ok({});
  if (c.ifUnused && x.outgoing.size > 0) return errors.inUse('exchange', c.vhost, name);
  const deleted: ExchangeRecord[] = [];
  removeExchange(vhost, x, deleted);
  return ok({ deletedExchanges: deleted });
}
