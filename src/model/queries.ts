// Read-only questions the broker asks between commands: lookups, listings, effective queue
// settings, and the access checks for basic.consume / basic.get.

import { checkPermission } from './access.js';
import { errors, type ModelError } from './errors.js';
import { queueSettingsOf, type QueueSettings } from './policies.js';
import { checkExclusiveAccess } from './queues.js';
import type { MetadataState } from './state.js';
import type {
  BindingRecord, ConnectionRef, ExchangeRecord, Permission, PolicyRecord, QueueRecord,
} from './types.js';

export function lookupExchange(state: MetadataState, vhost: string, name: string):
ExchangeRecord | undefined {
  return state.vhosts.get(vhost)?.exchanges.get(name)?.record;
}

export function lookupQueue(state: MetadataState, vhost: string, name: string):
QueueRecord | undefined {
  return state.vhosts.get(vhost)?.queues.get(name)?.record;
}

export function queueSettings(state: MetadataState, vhost: string, name: string):
QueueSettings | undefined {
  const v = state.vhosts.get(vhost);
  const q = v?.queues.get(name);
  return v === undefined || q === undefined ? undefined : queueSettingsOf(v, q.record);
}

/** basic.consume / basic.get / anything that reads a queue: 403, then 404, then 405. */
export function checkQueueAccess(state: MetadataState, user: string | undefined, vhost: string,
  queue: string, connection: ConnectionRef | null, permission: Permission = 'read'):
QueueRecord | ModelError {
  const denied = checkPermission(state, user, vhost, 'queue', queue, permission);
  if (denied !== null) return denied;
  const q = lookupQueue(state, vhost, queue);
  if (q === undefined) return errors.notFound('queue', vhost, queue);
  return checkExclusiveAccess(q, connection) ?? q;
}

export function listVhosts(state: MetadataState): string[] {
  return [...state.vhosts.keys()];
}

export function listExchanges(state: MetadataState, vhost: string): ExchangeRecord[] {
  return [...(state.vhosts.get(vhost)?.exchanges.values() ?? [])].map((x) => x.record);
}

export function listQueues(state: MetadataState, vhost: string): QueueRecord[] {
  return [...(state.vhosts.get(vhost)?.queues.values() ?? [])].map((q) => q.record);
}

export function listBindings(state: MetadataState, vhost: string): BindingRecord[] {
  return [...(state.vhosts.get(vhost)?.bindings.values() ?? [])];
}

export function listPolicies(state: MetadataState, vhost: string): PolicyRecord[] {
  return [...(state.vhosts.get(vhost)?.policies.values() ?? [])];
}

/** Bindings whose destination is the queue (management listings, queue info). */
export function bindingsOfQueue(state: MetadataState, vhost: string, queue: string): BindingRecord[] {
  return [...(state.vhosts.get(vhost)?.queues.get(queue)?.incoming ?? [])];
}
