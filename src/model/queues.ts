// queue.declare (passive too), queue.delete, queue.purge checks, and the cleanup of a closed
// connection's exclusive queues, with RabbitMQ's checks in its order and its reply texts.

import { assert } from '../lib/assert.js';
import type { NodeId } from '../lib/ids.js';
import { checkAnyPermission, checkPermission } from './access.js';
import { removeQueue } from './bindings.js';
import { errors, type ModelError } from './errors.js';
import { hasKey, normalizeTable, readString, typeNameOf } from './field-values.js';
import { checkArgsEquivalence } from './exchanges.js';
import { limits } from './limits.js';
import { isAbsentQueueArg, queueEquivalenceArgs, validateQueueArgs } from './queue-args.js';
import { ok } from './results.js';
import type { MetadataState, QueueState, VhostState } from './state.js';
import { connectionKey, isReservedName, putQueue, stripCrLf } from './state.js';
import type {
  ConnectionRef, DeclareQueue, DeleteExclusiveQueues, DeleteQueue, ExchangeRecord, MetadataOk,
  DeleteNodeQueues, PurgeQueue, QueueRecord, SetQueueReplicas,
} from './types.js';

export function sameConnection(a: ConnectionRef | null, b: ConnectionRef | null): boolean {
  if (a === null || b === null) return a === b;
  return a.connectionId === b.connectionId && a.nodeId === b.nodeId;
}

/** 405 when another connection owns the exclusive queue (RabbitMQ's non-strict check). */
export function checkExclusiveAccess(q: QueueRecord, connection: ConnectionRef | null):
ModelError | null {
  if (q.exclusiveOwner === null || connection === null) return null;
  return sameConnection(q.exclusiveOwner, connection) ? null : errors.locked(q.vhost, q.name);
}

export function declareQueue(state: MetadataState, c: DeclareQueue): MetadataOk | ModelError {
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  const name = stripCrLf(c.name);
  const existing = vhost.queues.get(name);
  if (c.passive) {
    const refused = checkAnyPermission(state, c.user, c.vhost, 'queue', name);
    if (refused !== null) return refused;
    if (existing === undefined) return errors.notFound('queue', c.vhost, name);
    return checkExclusiveAccess(existing.record, c.connection) ?? ok({ queue: existing.record });
  }
  if (isReservedName(name) && c.serverNamed !== true) return errors.reservedName('queue', name);
  const denied = checkPermission(state, c.user, c.vhost, 'queue', name, 'configure');
  if (denied !== null) return denied;
  // RabbitMQ: an exclusive queue is never durable, whatever the flag says.
  const declared = c.exclusive && c.durable ? { ...c, durable: false } : c;
  if (existing !== undefined) return redeclare(existing, declared);
  return declareNew(state, vhost, declared, name);
}

function redeclare(q: QueueState, c: DeclareQueue): MetadataOk | ModelError {
  const r = q.record;
  // Strict exclusive check: the owner must be exactly the declarer (or both none).
  if (!sameConnection(r.exclusiveOwner, c.exclusive ? c.connection : null)) {
    return errors.locked(r.vhost, r.name);
  }
  const fields: Array<[string, boolean, boolean]> = [
    ['durable', c.durable, r.durable], ['auto_delete', c.autoDelete, r.autoDelete],
  ];
  for (const [arg, received, current] of fields) {
    if (received !== current) {
      return errors.inequivalent('queue', r.vhost, r.name, arg, `'${received}'`, `'${current}'`);
    }
  }
  const problem = checkArgsEquivalence(r.arguments, c.arguments, queueEquivalenceArgs,
    (arg, received, current) => errors.inequivalent('queue', r.vhost, r.name, arg, received, current),
    isAbsentQueueArg);
  return problem ?? ok({ queue: r });
}

function declareNew(state: MetadataState, vhost: VhostState, c: DeclareQueue, name: string):
MetadataOk | ModelError {
  // Checked for new queues only, before anything else (RabbitMQ check_vhost_queue_limit).
  const max = vhost.limits.maxQueues;
  if (max !== null && vhost.queues.size >= max) {
    return errors.invalidDefinition(
      `cannot declare queue '${name}': queue limit in vhost '${c.vhost}' (${max}) is reached`);
  }
  const dlxKey = 'x-dead-letter-exchange';
  if (hasKey(c.arguments, dlxKey)) {
    const type = typeNameOf(c.arguments[dlxKey]);
    if (type !== 'longstr' && type !== 'binary') {
      return errors.invalidArgType('queue', c.vhost, name, dlxKey, type);
    }
    const dlx = readString(c.arguments[dlxKey]) ?? '';
    const denied = checkPermission(state, c.user, c.vhost, 'queue', name, 'read')
      ?? checkPermission(state, c.user, c.vhost, 'exchange', dlx, 'write');
    if (denied !== null) return denied;
  }
  const invalid = validateQueueArgs(c.vhost, name, c.arguments, c);
  if (invalid !== null) return invalid;
  if (vhost.queues.size >= limits.queuesPerVhostMax) {
    return errors.limitReached(`queue count in vhost '${c.vhost}'`, limits.queuesPerVhostMax);
  }
  const replicated = c.durable && !c.exclusive && !c.autoDelete;
  const home: NodeId = c.connection.nodeId;
  const replicas: readonly NodeId[] = replicated && c.replicas !== undefined && c.replicas.length > 0
    ? [...c.replicas] : [home];
  const record: QueueRecord = {
    vhost: c.vhost, name, durable: c.durable, autoDelete: c.autoDelete,
    exclusiveOwner: c.exclusive ? { connectionId: c.connection.connectionId, nodeId: home } : null,
    arguments: normalizeTable(c.arguments), kind: replicated ? 'replicated' : 'local',
    homeNode: home, replicas,
  };
  putQueue(vhost, record);
  return ok({ created: true, queue: record });
}

export function deleteQueue(state: MetadataState, c: DeleteQueue): MetadataOk | ModelError {
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  const name = stripCrLf(c.name);
  const denied = checkPermission(state, c.user, c.vhost, 'queue', name, 'configure');
  if (denied !== null) return denied;
  const q = vhost.queues.get(name);
  if (q === undefined) return ok({});
  const locked = checkExclusiveAccess(q.record, c.connection);
  if (locked !== null) return locked;
  if (c.ifUnused && c.consumerCount > 0) return errors.inUse('queue', c.vhost, name);
  if (c.ifEmpty && c.messageCount > 0) return errors.notEmpty(c.vhost, name);
  const deletedExchanges: ExchangeRecord[] = [];
  const record = removeQueue(vhost, q, deletedExchanges);
  return ok({ queue: record, deletedQueues: [record], deletedExchanges });
}

export function purgeQueue(state: MetadataState, c: PurgeQueue): MetadataOk | ModelError {
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  const name = stripCrLf(c.name);
  const denied = checkPermission(state, c.user, c.vhost, 'queue', name, 'read');
  if (denied !== null) return denied;
  const q = vhost.queues.get(name);
  if (q === undefined) return errors.notFound('queue', c.vhost, name);
  return checkExclusiveAccess(q.record, c.connection) ?? ok({ queue: q.record });
}

export function deleteExclusiveQueues(state: MetadataState, c: DeleteExclusiveQueues): MetadataOk {
  const deletedQueues: QueueRecord[] = [];
  const deletedExchanges: ExchangeRecord[] = [];
  const key = connectionKey(c.connection);
  for (const vhost of state.vhosts.values()) {
    const names = vhost.exclusiveQueues.get(key);
    if (names === undefined) continue;
    for (const name of [...names]) {
      const q = vhost.queues.get(name);
      assert(q !== undefined, 'exclusive index names a missing queue');
      deletedQueues.push(removeQueue(vhost, q, deletedExchanges));
    }
  }
  return ok({ deletedQueues, deletedExchanges });
}

/** A node left the cluster for good: its local queues (exclusive, auto-delete, transient) go. */
export function deleteNodeQueues(state: MetadataState, c: DeleteNodeQueues): MetadataOk {
  const deletedQueues: QueueRecord[] = [];
  const deletedExchanges: ExchangeRecord[] = [];
  for (const vhost of state.vhosts.values()) {
    for (const q of [...vhost.queues.values()]) {
      if (q.record.kind === 'local' && q.record.homeNode === c.nodeId) {
        deletedQueues.push(removeQueue(vhost, q, deletedExchanges));
      }
    }
  }
  return ok({ deletedQueues, deletedExchanges });
}

/** Placement moved a replicated queue's replica set (membership changes, rebalancing). */
export function setQueueReplicas(state: MetadataState, c: SetQueueReplicas): MetadataOk | ModelError {
  const q = state.vhosts.get(c.vhost)?.queues.get(c.name);
  if (q === undefined) return errors.notFound('queue', c.vhost, c.name);
  if (q.record.kind !== 'replicated' || c.replicas.length === 0) {
    return errors.invalidDefinition(`queue '${c.name}' in vhost '${c.vhost}' cannot take replicas ${c.replicas.join(',')}`);
  }
  q.record = { ...q.record, replicas: [...c.replicas] };
  return ok({ queue: q.record, changedQueues: [q.record] });
}
