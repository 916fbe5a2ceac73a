// Users, vhosts and permissions: the management commands and the checks the broker makes
// (vhost access at connection.open, configure/write/read on resources). Permissions are regexes
// over resource names as in RabbitMQ: '' permits nothing; the default exchange is 'amq.default'.

import { errors, modelError, ReplyCode, type ModelError, type ResourceKind } from './errors.js';
import { limits } from './limits.js';
import type { MetadataState, VhostState } from './state.js';
import { createVhost } from './state.js';
import type {
  AddUser, AddVhost, ClearPermissions, ClearTopicPermissions, DeleteUser, DeleteVhost,
  ExchangeRecord, MetadataOk, Permission, QueueRecord, SetPermissions, SetTopicPermissions,
  SetUserLimits, SetVhostLimits,
  TopicPermissionRecord, UserRecord,
} from './types.js';
import { ok } from './results.js';

const regexCache = new Map<string, RegExp | null>();

/** Compiled regex for a pattern, or null when it does not compile. Bounded cache. */
export function compiledRegex(pattern: string): RegExp | null {
  const hit = regexCache.get(pattern);
  if (hit !== undefined) return hit;
  if (regexCache.size >= limits.regexCacheEntriesMax) regexCache.clear();
  let re: RegExp | null;
  try {
    re = new RegExp(pattern);
  } catch {
    re = null;
  }
  regexCache.set(pattern, re);
  return re;
}

export function patternMatches(pattern: string, name: string): boolean {
  if (pattern === '') return false;
  const re = compiledRegex(pattern);
  return re !== null && re.test(name);
}

/** null when `user` may do `permission` on the resource; the 403 otherwise. No user: trusted. */
export function checkPermission(state: MetadataState, user: string | undefined, vhost: string,
  kind: ResourceKind, name: string, permission: Permission): ModelError | null {
  if (user === undefined) return null;
  const resource = kind === 'exchange' && name === '' ? 'amq.default' : name;
  const record = state.vhosts.get(vhost)?.permissions.get(user);
  if (record !== undefined && patternMatches(record[permission], resource)) return null;
  return errors.accessRefused(permission, kind, vhost, resource, user);
}

/**
 * Passive declares need any one permission on the resource (RabbitMQ, rabbitmq-server#16085):
 * read, write, then configure, so a refusal reads as a regular declare's.
 */
export function checkAnyPermission(state: MetadataState, user: string | undefined, vhost: string,
  kind: ResourceKind, name: string): ModelError | null {
  let denied: ModelError | null = null;
  for (const permission of ['read', 'write', 'configure'] as const) {
    denied = checkPermission(state, user, vhost, kind, name, permission);
    if (denied === null) return null;
  }
  return denied;
}

/** connection.open: the vhost must exist and the user must have permissions in it (530). */
export function checkVhostAccess(state: MetadataState, user: string, vhost: string):
ModelError | null {
  const v = state.vhosts.get(vhost);
  if (v === undefined || !state.users.has(user) || !v.permissions.has(user)) {
    return errors.vhostAccessRefused(vhost, user);
  }
  return null;
}

export function findUser(state: MetadataState, name: string): UserRecord | undefined {
  return state.users.get(name);
}

/** Creates the user or replaces its password hash and tags (idempotent for log replays). */
export function addUser(state: MetadataState, c: AddUser): MetadataOk | ModelError {
  const existing = state.users.get(c.name);
  if (existing === undefined && state.users.size >= limits.usersMax) return errors.limitReached('user', limits.usersMax);
  // A new password or tags keep the user's limits.
  state.users.set(c.name, {
    name: c.name, passwordHash: c.passwordHash, tags: [...c.tags], ...(existing?.limits !== undefined ? { limits: existing.limits } : {}),
  });
  const exists = existing !== undefined;
  return ok({ created: !exists });
}

export function deleteUser(state: MetadataState, c: DeleteUser): MetadataOk | ModelError {
  if (!state.users.delete(c.name)) return errors.userNotFound(c.name);
  for (const vhost of state.vhosts.values()) {
    vhost.permissions.delete(c.name);
    vhost.topicPermissions.delete(c.name);
  }
  return ok({});
}

export function setPermissions(state: MetadataState, c: SetPermissions): MetadataOk | ModelError {
  if (!state.users.has(c.user)) return errors.userNotFound(c.user);
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  for (const pattern of [c.configure, c.write, c.read]) {
    if (compiledRegex(pattern) === null) {
      return errors.invalidDefinition(`invalid regular expression '${pattern}'`);
    }
  }
  const created = !vhost.permissions.has(c.user);
  vhost.permissions.set(c.user, {
    user: c.user, vhost: c.vhost, configure: c.configure, write: c.write, read: c.read,
  });
  return ok({ created });
}

export function clearPermissions(state: MetadataState, c: ClearPermissions): MetadataOk | ModelError {
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  vhost.permissions.delete(c.user);
  return ok({});
}

export function putTopicPermission(vhost: VhostState, record: TopicPermissionRecord): void {
  let byExchange = vhost.topicPermissions.get(record.user);
  if (byExchange === undefined) {
    byExchange = new Map();
    vhost.topicPermissions.set(record.user, byExchange);
  }
  byExchange.set(record.exchange, record);
}

export function setTopicPermissions(state: MetadataState, c: SetTopicPermissions):
MetadataOk | ModelError {
  if (!state.users.has(c.user)) return errors.userNotFound(c.user);
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  for (const pattern of [c.write, c.read]) {
    if (compiledRegex(expandTopicPattern(pattern, c.user, c.vhost)) === null) {
      return errors.invalidDefinition(`invalid regular expression '${pattern}'`);
    }
  }
  const created = vhost.topicPermissions.get(c.user)?.has(c.exchange) !== true;
  putTopicPermission(vhost, {
    user: c.user, vhost: c.vhost, exchange: c.exchange, write: c.write, read: c.read,
  });
  return ok({ created });
}

export function clearTopicPermissions(state: MetadataState, c: ClearTopicPermissions):
MetadataOk | ModelError {
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  const byExchange = vhost.topicPermissions.get(c.user);
  if (c.exchange === undefined) vhost.topicPermissions.delete(c.user);
  else if (byExchange !== undefined) {
    byExchange.delete(c.exchange);
    if (byExchange.size === 0) vhost.topicPermissions.delete(c.user);
  }
  return ok({});
}

// RabbitMQ expands {username} and {vhost} (regex-escaped) in topic permission patterns.
function expandTopicPattern(pattern: string, user: string, vhost: string): string {
  if (!pattern.includes('{')) return pattern;
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return pattern.replaceAll('{username}', esc(user)).replaceAll('{vhost}', esc(vhost));
}

/**
 * basic.publish on a topic exchange: write topic permission for every routing key the message
 * carries (its key, then CC and BCC), as RabbitMQ checks mc:routing_keys.
 */
export function checkPublishTopics(state: MetadataState, user: string | undefined, vhost: string,
  exchange: ExchangeRecord, routingKeys: readonly string[]): ModelError | null {
  for (const key of routingKeys) {
    const denied = checkTopicAccess(state, user, vhost, exchange, key, 'write');
    if (denied !== null) return denied;
  }
  return null;
}

/**
 * Topic authorisation on a topic exchange: publish checks 'write' with the routing key, bind and
 * unbind check 'read' with the binding key. Other exchange types and unrestricted users pass.
 */
export function checkTopicAccess(state: MetadataState, user: string | undefined, vhost: string,
  exchange: ExchangeRecord, routingKey: string, permission: 'write' | 'read'): ModelError | null {
  if (user === undefined || exchange.type !== 'topic') return null;
  const record = state.vhosts.get(vhost)?.topicPermissions.get(user)?.get(exchange.name);
  if (record === undefined) return null;
  // An empty pattern permits only the empty key (RabbitMQ rewrites it to ^$).
  const pattern = record[permission] === '' ? '^$' : expandTopicPattern(record[permission], user, vhost);
  const re = compiledRegex(pattern);
  if (re !== null && re.test(routingKey)) return null;
  return errors.topicAccessRefused(permission, routingKey, vhost, exchange.name, user);
}

export function addVhost(state: MetadataState, c: AddVhost): MetadataOk | ModelError {
  if (state.vhosts.has(c.name)) return ok({ created: false });
  if (state.vhosts.size >= limits.vhostsMax) return errors.limitReached('vhost', limits.vhostsMax);
  state.vhosts.set(c.name, createVhost(c.name));
  return ok({ created: true });
}

/** A limit as stored: null for none (null or negative given), NaN when it is not an integer. */
function normLimit(n: number | null): number | null {
  if (n === null || n < 0) return null;
  return Number.isInteger(n) ? n : Number.NaN;
}

export function setUserLimits(state: MetadataState, c: SetUserLimits): MetadataOk | ModelError {
  const user = state.users.get(c.user);
  if (user === undefined) return errors.userNotFound(c.user);
  const maxConnections = normLimit(c.maxConnections);
  const maxChannels = normLimit(c.maxChannels);
  if (Number.isNaN(maxConnections) || Number.isNaN(maxChannels)) {
    return errors.invalidDefinition('user limits must be integers');
  }
  state.users.set(c.user, { ...user, limits: { maxConnections, maxChannels } });
  return ok({});
}

/** connection.open of a user with `openConnections` open already: 530 at its max-connections. */
export function checkUserConnectionLimit(state: MetadataState, user: string, openConnections: number): ModelError | null {
  const max = state.users.get(user)?.limits?.maxConnections ?? null;
  if (max === null || openConnections < max) return null;
  return modelError(ReplyCode.NotAllowed,
    `connection refused for user '${user}': user connection limit (${max}) is reached`);
}

/** channel.open of a user with `openChannels` open already: 530 at its max-channels. */
export function checkUserChannelLimit(state: MetadataState, user: string, openChannels: number): ModelError | null {
  const max = state.users.get(user)?.limits?.maxChannels ?? null;
  if (max === null || openChannels < max) return null;
  return modelError(ReplyCode.NotAllowed,
    `number of channels opened for user '${user}' has reached the maximum allowed user limit of ${max}`);
}

export function setVhostLimits(state: MetadataState, c: SetVhostLimits): MetadataOk | ModelError {
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  const norm = normLimit;
  const maxQueues = norm(c.maxQueues);
  const maxConnections = norm(c.maxConnections);
  if (Number.isNaN(maxQueues) || Number.isNaN(maxConnections)) {
    return errors.invalidDefinition('vhost limits must be integers');
  }
  vhost.limits = { maxQueues, maxConnections };
  return ok({});
}

/** connection.open with `openConnections` already open in the vhost: 530 at max-connections. */
export function checkVhostConnectionLimit(state: MetadataState, user: string, vhost: string,
  openConnections: number): ModelError | null {
  const max = state.vhosts.get(vhost)?.limits.maxConnections ?? null;
  if (max === null || openConnections < max) return null;
  return modelError(ReplyCode.NotAllowed,
    `access to vhost '${vhost}' refused for user '${user}': connection limit (${max}) is reached`);
}

/** Removes the vhost with everything in it; the broker drops the queues it reports. */
export function deleteVhost(state: MetadataState, c: DeleteVhost): MetadataOk | ModelError {
  const vhost = state.vhosts.get(c.name);
  if (vhost === undefined) return errors.vhostNotFound(c.name);
  state.vhosts.delete(c.name);
  return ok({ deletedQueues: queuesOf(vhost), deletedExchanges: exchangesOf(vhost) });
}

function queuesOf(vhost: VhostState): QueueRecord[] {
  return [...vhost.queues.values()].map((q) => q.record);
}

function exchangesOf(vhost: VhostState): ExchangeRecord[] {
  return [...vhost.exchanges.values()].map((x) => x.record);
}
