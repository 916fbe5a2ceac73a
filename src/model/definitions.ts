// RabbitMQ's definitions format (users, vhosts, permissions, topic permissions, policies, exchanges,
// queues, bindings) against the metadata state: `exportDefinitions` writes it, `planDefinitions`
// reads a file and says what would be created, changed and (as desired state) deleted, as the
// metadata commands that do it, or the entries in error, each named. Nothing here applies anything:
// the caller applies the steps in order only when there is no error, so a bad file changes nothing.

import { argEquals, normalizeTable } from './field-values.js';
import type { MetadataState } from './state.js';
import type { ArgTable, ConnectionRef, MetadataCommand, PolicyApplyTo } from './types.js';

export const sha256Algorithm = 'rabbit_password_hashing_sha256';
/** The RabbitMQ version whose definitions format is written. */
export const definitionsFormatVersion = '3.10.8';

export type Definitions = Record<string, unknown>;

export interface PlanStep {
  readonly action: 'create' | 'change' | 'delete';
  /** user, vhost, permission, topic permission, policy, exchange, queue, binding. */
  readonly kind: string;
  /** Who or what, as a person reads it: "queue 'q' in vhost '/'". */
  readonly what: string;
  readonly detail: string;
  readonly command: MetadataCommand;
}

export interface Plan {
  readonly steps: PlanStep[];
  /** Entries that cannot be applied, each named; a plan with errors must not be applied. */
  readonly errors: string[];
  /** Sections read but not applied (global_parameters: RabbitMQ's cluster name and id). */
  readonly ignored: string[];
}

export interface PlanOptions {
  /** 'merge' (POST /api/definitions: create and update, never delete) or 'exact' (ctl apply: desired state). */
  readonly mode: 'merge' | 'exact';
  /** The connection queues are declared by (no queue here is exclusive). */
  readonly connection: ConnectionRef;
}

const isInternalExchange = (name: string): boolean => name === '' || name.startsWith('amq.');

/** The state as RabbitMQ writes definitions (default and amq.* exchanges, exclusive and transient queues left out). */
export function exportDefinitions(state: MetadataState, productVersion: string): Definitions {
  const vhosts = [...state.vhosts.values()];
  return {
    rabbit_version: definitionsFormatVersion, rabbitmq_version: definitionsFormatVersion, product_name: 'espresso', product_version: productVersion,
    users: [...state.users.values()].map((u) => ({ name: u.name, password_hash: u.passwordHash, hashing_algorithm: sha256Algorithm, tags: [...u.tags], limits: {} })),
    vhosts: vhosts.map((v) => ({ name: v.name, limits: [], metadata: { description: '', tags: [] } })),
    permissions: vhosts.flatMap((v) => [...v.permissions.values()].map((p) => ({ user: p.user, vhost: p.vhost, configure: p.configure, write: p.write, read: p.read }))),
    topic_permissions: vhosts.flatMap((v) => [...v.topicPermissions.values()].flatMap((m) => [...m.values()])
      .map((p) => ({ user: p.user, vhost: p.vhost, exchange: p.exchange, write: p.write, read: p.read }))),
    parameters: [],
    global_parameters: [],
    policies: vhosts.flatMap((v) => [...v.policies.values()].map((p) => ({ vhost: p.vhost, name: p.name, pattern: p.pattern, 'apply-to': p.applyTo, definition: p.definition, priority: p.priority }))),
    queues: vhosts.flatMap((v) => [...v.queues.values()].map((q) => q.record).filter((q) => q.durable && q.exclusiveOwner === null)
      .map((q) => ({ name: q.name, vhost: q.vhost, durable: q.durable, auto_delete: q.autoDelete, arguments: q.arguments, type: typeof q.arguments['x-queue-type'] === 'string' ? q.arguments['x-queue-type'] : 'classic' }))),
    exchanges: vhosts.flatMap((v) => [...v.exchanges.values()].map((x) => x.record).filter((x) => !isInternalExchange(x.name))
      .map((x) => ({ name: x.name, vhost: x.vhost, type: x.type, durable: x.durable, auto_delete: x.autoDelete, internal: x.internal, arguments: x.arguments }))),
    bindings: vhosts.flatMap((v) => [...v.bindings.values()].filter((b) => b.source !== '')
      .map((b) => ({ source: b.source, vhost: b.vhost, destination: b.destination, destination_type: b.destinationKind, routing_key: b.routingKey, arguments: b.arguments }))),
  };
}

/** Tags as RabbitMQ writes them: an array, or a comma-separated string (older releases); null when neither. */
export function parseTags(v: unknown): string[] | null {
  if (typeof v === 'string') return v.split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (Array.isArray(v) && v.every((t) => typeof t === 'string')) return v.map((t: string) => t.trim()).filter((t) => t !== '');
  return null;
}

/** A base64 SHA-256 hash as RabbitMQ stores it: 4-byte salt + 32-byte digest = 48 characters; '' = no password. */
export function isSha256Hash(hash: string): boolean {
  return hash === '' || /^[A-Za-z0-9+/]{48}$/.test(hash);
}

type Entry = Record<string, unknown>;

interface Reader {
  readonly errors: string[];
  section(key: string): Entry[] | null;
  str(e: Entry, key: string, where: string, fallback?: string): string;
  bool(e: Entry, key: string, fallback: boolean, where: string): boolean;
  table(e: Entry, key: string, where: string): ArgTable;
}

function reader(defs: Definitions): Reader {
  const errors: string[] = [];
  return {
    errors,
    section: (key) => {
      const v = defs[key];
      if (v === undefined) return null;
      if (!Array.isArray(v) || !v.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e))) {
        errors.push(`'${key}' must be a list of objects`);
        return null;
      }
      return v as Entry[];
    },
    str: (e, key, where, fallback) => {
      const v = e[key] ?? fallback;
      if (typeof v === 'string') return v;
      errors.push(`${where}: '${key}' must be a string, got ${JSON.stringify(v ?? null)}`);
      return '';
    },
    bool: (e, key, fallback, where) => {
      const v = e[key] ?? fallback;
      if (typeof v === 'boolean') return v;
      errors.push(`${where}: '${key}' must be true or false, got ${JSON.stringify(v)}`);
      return fallback;
    },
    table: (e, key, where) => {
      const v = e[key] ?? {};
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return normalizeTable(v as Record<string, unknown>);
      errors.push(`${where}: '${key}' must be an object, got ${JSON.stringify(v)}`);
      return {};
    },
  };
}

function tablesEqual(a: ArgTable, b: ArgTable): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => b[k] !== undefined && argEquals(a[k]!, b[k]!));
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');
}

/** What applying `defs` to `state` would do, in RabbitMQ's import order, or the entries in error. */
export function planDefinitions(state: MetadataState, defs: Definitions, o: PlanOptions): Plan {
  const r = reader(defs);
  const steps: PlanStep[] = [];
  const ignored: string[] = [];
  const exact = o.mode === 'exact';
  const step = (action: PlanStep['action'], kind: string, what: string, detail: string, command: MetadataCommand): void => {
    steps.push({ action, kind, what, detail, command });
  };
  const gp = defs['global_parameters'];
  if (Array.isArray(gp) && gp.length > 0) ignored.push(`global_parameters (${gp.length}: ${gp.map((p) => String((p as Entry)['name'])).join(', ')})`);
  const params = defs['parameters'];
  if (Array.isArray(params)) {
    for (const p of params as Entry[]) r.errors.push(`parameter '${String(p['name'])}' (component '${String(p['component'])}') in vhost '${String(p['vhost'])}': runtime parameters (federation, shovels) are not supported`);
  }

  // Users.
  const users = r.section('users');
  const wantedUsers = new Set<string>();
  for (const e of users ?? []) {
    const name = r.str(e, 'name', 'a user');
    const where = `user '${name}'`;
    wantedUsers.add(name);
    const hash = r.str(e, 'password_hash', where, '');
    const algorithm = e['hashing_algorithm'] ?? sha256Algorithm;
    if (algorithm !== sha256Algorithm) r.errors.push(`${where}: hashing_algorithm '${String(algorithm)}' is not supported (only ${sha256Algorithm})`);
    else if (!isSha256Hash(hash)) r.errors.push(`${where}: password_hash is not a base64 ${sha256Algorithm} hash`);
    const tags = parseTags(e['tags'] ?? []);
    if (tags === null) r.errors.push(`${where}: 'tags' must be a list of strings or a comma-separated string`);
    const have = state.users.get(name);
    const command: MetadataCommand = { kind: 'addUser', name, passwordHash: hash, tags: tags ?? [] };
    if (have === undefined) step('create', 'user', where, `tags: ${(tags ?? []).join(',') || '(none)'}`, command);
    else if (have.passwordHash !== hash || !sameTags(have.tags, tags ?? [])) {
      step('change', 'user', where, [have.passwordHash !== hash ? 'password' : '', !sameTags(have.tags, tags ?? []) ? `tags ${have.tags.join(',') || '(none)'} -> ${(tags ?? []).join(',') || '(none)'}` : ''].filter((x) => x !== '').join('; '), command);
    }
  }

  // Vhosts.
  const vhosts = r.section('vhosts');
  const wantedVhosts = new Set<string>();
  for (const e of vhosts ?? []) {
    const name = r.str(e, 'name', 'a vhost');
    wantedVhosts.add(name);
    if (!state.vhosts.has(name)) step('create', 'vhost', `vhost '${name}'`, '', { kind: 'addVhost', name });
  }
  const vhostKnown = (v: string): boolean => wantedVhosts.has(v) || (state.vhosts.has(v) && !(exact && vhosts !== null));
  const userKnown = (u: string): boolean => wantedUsers.has(u) || (state.users.has(u) && !(exact && users !== null));

  // Permissions.
  const perms = r.section('permissions');
  const wantedPerms = new Set<string>();
  for (const e of perms ?? []) {
    const user = r.str(e, 'user', 'a permission');
    const vhost = r.str(e, 'vhost', `permission of '${user}'`);
    const where = `permissions of '${user}' in vhost '${vhost}'`;
    const [configure, write, read] = ['configure', 'write', 'read'].map((k) => r.str(e, k, where));
    if (!userKnown(user)) r.errors.push(`${where}: no user '${user}'`);
    if (!vhostKnown(vhost)) r.errors.push(`${where}: no vhost '${vhost}'`);
    wantedPerms.add(`${vhost}\u0000${user}`);
    const have = state.vhosts.get(vhost)?.permissions.get(user);
    const command: MetadataCommand = { kind: 'setPermissions', user, vhost, configure: configure!, write: write!, read: read! };
    const text = `configure '${configure!}' write '${write!}' read '${read!}'`;
    if (have === undefined) step('create', 'permission', where, text, command);
    else if (have.configure !== configure || have.write !== write || have.read !== read) step('change', 'permission', where, text, command);
  }

  // Topic permissions.
  const topicPerms = r.section('topic_permissions');
  const wantedTopic = new Set<string>();
  for (const e of topicPerms ?? []) {
    const user = r.str(e, 'user', 'a topic permission');
    const vhost = r.str(e, 'vhost', `topic permission of '${user}'`);
    const exchange = r.str(e, 'exchange', `topic permission of '${user}' in vhost '${vhost}'`);
    const where = `topic permissions of '${user}' on exchange '${exchange}' in vhost '${vhost}'`;
    const write = r.str(e, 'write', where);
    const read = r.str(e, 'read', where);
    if (!userKnown(user)) r.errors.push(`${where}: no user '${user}'`);
    if (!vhostKnown(vhost)) r.errors.push(`${where}: no vhost '${vhost}'`);
    wantedTopic.add(`${vhost}\u0000${user}\u0000${exchange}`);
    const have = state.vhosts.get(vhost)?.topicPermissions.get(user)?.get(exchange);
    const command: MetadataCommand = { kind: 'setTopicPermissions', user, vhost, exchange, write, read };
    if (have === undefined) step('create', 'topic permission', where, `write '${write}' read '${read}'`, command);
    else if (have.write !== write || have.read !== read) step('change', 'topic permission', where, `write '${write}' read '${read}'`, command);
  }

  // Policies.
  const policies = r.section('policies');
  const wantedPolicies = new Set<string>();
  for (const e of policies ?? []) {
    const name = r.str(e, 'name', 'a policy');
    const vhost = r.str(e, 'vhost', `policy '${name}'`);
    const where = `policy '${name}' in vhost '${vhost}'`;
    const pattern = r.str(e, 'pattern', where);
    const applyTo = r.str(e, 'apply-to', where, 'all');
    const priority = e['priority'] ?? 0;
    if (applyTo !== 'all' && applyTo !== 'queues' && applyTo !== 'exchanges') r.errors.push(`${where}: apply-to '${applyTo}' is not supported (all, queues or exchanges)`);
    if (typeof priority !== 'number' || !Number.isInteger(priority)) r.errors.push(`${where}: 'priority' must be an integer`);
    if (!vhostKnown(vhost)) r.errors.push(`${where}: no vhost '${vhost}'`);
    const definition = r.table(e, 'definition', where);
    wantedPolicies.add(`${vhost}\u0000${name}`);
    const have = state.vhosts.get(vhost)?.policies.get(name);
    const command: MetadataCommand = { kind: 'setPolicy', vhost, name, pattern, applyTo: applyTo as PolicyApplyTo, priority: Number(priority), definition };
    const text = `pattern '${pattern}' apply-to ${applyTo} priority ${String(priority)} ${JSON.stringify(definition)}`;
    if (have === undefined) step('create', 'policy', where, text, command);
    else if (have.pattern !== pattern || have.applyTo !== applyTo || have.priority !== priority || !tablesEqual(have.definition, definition)) step('change', 'policy', where, text, command);
  }

  // Exchanges, queues, bindings: declared as they are in the file; one that exists with other
  // properties cannot be changed in place (RabbitMQ's inequivalent-argument rule): an error.
  const exchanges = r.section('exchanges');
  const wantedExchanges = new Set<string>();
  for (const e of exchanges ?? []) {
    const name = r.str(e, 'name', 'an exchange');
    const vhost = r.str(e, 'vhost', `exchange '${name}'`);
    const where = `exchange '${name}' in vhost '${vhost}'`;
    if (isInternalExchange(name)) continue;
    const type = r.str(e, 'type', where);
    const durable = r.bool(e, 'durable', true, where);
    const autoDelete = r.bool(e, 'auto_delete', false, where);
    const internal = r.bool(e, 'internal', false, where);
    const args = r.table(e, 'arguments', where);
    if (!vhostKnown(vhost)) r.errors.push(`${where}: no vhost '${vhost}'`);
    wantedExchanges.add(`${vhost}\u0000${name}`);
    const have = state.vhosts.get(vhost)?.exchanges.get(name)?.record;
    if (have === undefined) {
      step('create', 'exchange', where, `type ${type}${durable ? '' : ', transient'}`, { kind: 'declareExchange', vhost, name, type, passive: false, durable, autoDelete, internal, arguments: args });
    } else if (have.type !== type || have.durable !== durable || have.autoDelete !== autoDelete || have.internal !== internal || !tablesEqual(have.arguments, args)) {
      r.errors.push(`${where}: exists with other properties (type ${have.type}, durable ${String(have.durable)}); an exchange cannot change in place: delete it first`);
    }
  }
  const queues = r.section('queues');
  const wantedQueues = new Set<string>();
  for (const e of queues ?? []) {
    const name = r.str(e, 'name', 'a queue');
    const vhost = r.str(e, 'vhost', `queue '${name}'`);
    const where = `queue '${name}' in vhost '${vhost}'`;
    const durable = r.bool(e, 'durable', true, where);
    const autoDelete = r.bool(e, 'auto_delete', false, where);
    let args = r.table(e, 'arguments', where);
    const type = e['type'];
    if (typeof type === 'string' && type !== 'classic' && args['x-queue-type'] === undefined) args = { ...args, 'x-queue-type': type };
    if (!vhostKnown(vhost)) r.errors.push(`${where}: no vhost '${vhost}'`);
    wantedQueues.add(`${vhost}\u0000${name}`);
    const have = state.vhosts.get(vhost)?.queues.get(name)?.record;
    if (have === undefined) {
      step('create', 'queue', where, typeof type === 'string' ? `type ${type}` : '', {
        kind: 'declareQueue', vhost, name, passive: false, durable, exclusive: false, autoDelete, arguments: args, connection: o.connection,
      });
    } else if (have.durable !== durable || have.autoDelete !== autoDelete || !tablesEqual(have.arguments, args)) {
      r.errors.push(`${where}: exists with other properties (durable ${String(have.durable)}, arguments ${JSON.stringify(have.arguments)}); a queue cannot change in place: delete it first`);
    }
  }
  const bindings = r.section('bindings');
  const wantedBindings = new Set<string>();
  const bindingKey = (vhost: string, source: string, kind: string, destination: string, key: string, args: ArgTable): string =>
    JSON.stringify([vhost, source, kind, destination, key, Object.entries(args).sort(([a], [b]) => (a < b ? -1 : 1))]);
  const existing = new Set([...state.vhosts.values()].flatMap((v) => [...v.bindings.values()])
    .map((b) => bindingKey(b.vhost, b.source, b.destinationKind, b.destination, b.routingKey, b.arguments)));
  for (const e of bindings ?? []) {
    const vhost = r.str(e, 'vhost', 'a binding');
    const source = r.str(e, 'source', `a binding in vhost '${vhost}'`);
    const destination = r.str(e, 'destination', `a binding of '${source}' in vhost '${vhost}'`);
    const kind = r.str(e, 'destination_type', `the binding of '${source}' to '${destination}'`, 'queue');
    const key = r.str(e, 'routing_key', `the binding of '${source}' to '${destination}'`, '');
    const args = r.table(e, 'arguments', `the binding of '${source}' to '${destination}'`);
    const where = `binding of exchange '${source}' to ${kind} '${destination}' with key '${key}' in vhost '${vhost}'`;
    if (kind !== 'queue' && kind !== 'exchange') r.errors.push(`${where}: destination_type must be queue or exchange`);
    if (!vhostKnown(vhost)) r.errors.push(`${where}: no vhost '${vhost}'`);
    const id = bindingKey(vhost, source, kind, destination, key, args);
    wantedBindings.add(id);
    if (existing.has(id)) continue;
    step('create', 'binding', where, '', kind === 'exchange'
      ? { kind: 'bindExchange', vhost, source, destination, routingKey: key, arguments: args }
      : { kind: 'bindQueue', vhost, queue: destination, exchange: source, routingKey: key, arguments: args, connection: null });
  }

  if (exact) planDeletes(state, steps, {
    users: users === null ? null : wantedUsers, vhosts: vhosts === null ? null : wantedVhosts, perms: perms === null ? null : wantedPerms,
    topic: topicPerms === null ? null : wantedTopic, policies: policies === null ? null : wantedPolicies,
    exchanges: exchanges === null ? null : wantedExchanges, queues: queues === null ? null : wantedQueues,
    bindings: bindings === null ? null : wantedBindings, bindingKey,
  });
  return { steps, errors: r.errors, ignored };
}

interface Wanted {
  users: Set<string> | null;
  vhosts: Set<string> | null;
  perms: Set<string> | null;
  topic: Set<string> | null;
  policies: Set<string> | null;
  exchanges: Set<string> | null;
  queues: Set<string> | null;
  bindings: Set<string> | null;
  bindingKey: (vhost: string, source: string, kind: string, destination: string, key: string, args: ArgTable) => string;
}

/**
 * Desired state: what the cluster has and the file does not (sections the file leaves out are left
 * alone). Objects inside a vhost that goes are not listed one by one: the vhost takes them.
 * Exclusive and transient queues belong to their clients and are never deleted here.
 */
function planDeletes(state: MetadataState, steps: PlanStep[], w: Wanted): void {
  const add = (kind: string, what: string, command: MetadataCommand): void => {
    steps.push({ action: 'delete', kind, what, detail: '', command });
  };
  const goingVhosts = new Set([...state.vhosts.keys()].filter((v) => w.vhosts !== null && !w.vhosts.has(v)));
  const goingUsers = new Set([...state.users.keys()].filter((u) => w.users !== null && !w.users.has(u)));
  for (const v of state.vhosts.values()) {
    if (goingVhosts.has(v.name)) continue;
    for (const b of v.bindings.values()) {
      if (w.bindings === null || b.source === '' || w.bindings.has(w.bindingKey(b.vhost, b.source, b.destinationKind, b.destination, b.routingKey, b.arguments))) continue;
      const what = `binding of exchange '${b.source}' to ${b.destinationKind} '${b.destination}' with key '${b.routingKey}' in vhost '${b.vhost}'`;
      add('binding', what, b.destinationKind === 'exchange'
        ? { kind: 'unbindExchange', vhost: b.vhost, source: b.source, destination: b.destination, routingKey: b.routingKey, arguments: b.arguments }
        : { kind: 'unbindQueue', vhost: b.vhost, queue: b.destination, exchange: b.source, routingKey: b.routingKey, arguments: b.arguments, connection: null });
    }
    for (const { record: q } of v.queues.values()) {
      if (w.queues === null || !q.durable || q.exclusiveOwner !== null || w.queues.has(`${v.name}\u0000${q.name}`)) continue;
      add('queue', `queue '${q.name}' in vhost '${v.name}'`, {
        kind: 'deleteQueue', vhost: v.name, name: q.name, ifUnused: false, ifEmpty: false, consumerCount: 0, messageCount: 0, connection: null,
      });
    }
    for (const { record: x } of v.exchanges.values()) {
      if (w.exchanges === null || isInternalExchange(x.name) || w.exchanges.has(`${v.name}\u0000${x.name}`)) continue;
      add('exchange', `exchange '${x.name}' in vhost '${v.name}'`, { kind: 'deleteExchange', vhost: v.name, name: x.name, ifUnused: false });
    }
    for (const p of v.policies.values()) {
      if (w.policies === null || w.policies.has(`${v.name}\u0000${p.name}`)) continue;
      add('policy', `policy '${p.name}' in vhost '${v.name}'`, { kind: 'clearPolicy', vhost: v.name, name: p.name });
    }
    for (const [user, byExchange] of v.topicPermissions) {
      for (const exchange of byExchange.keys()) {
        if (w.topic === null || goingUsers.has(user) || w.topic.has(`${v.name}\u0000${user}\u0000${exchange}`)) continue;
        add('topic permission', `topic permissions of '${user}' on exchange '${exchange}' in vhost '${v.name}'`, { kind: 'clearTopicPermissions', user, vhost: v.name, exchange });
      }
    }
    for (const p of v.permissions.values()) {
      if (w.perms === null || goingUsers.has(p.user) || w.perms.has(`${v.name}\u0000${p.user}`)) continue;
      add('permission', `permissions of '${p.user}' in vhost '${v.name}'`, { kind: 'clearPermissions', user: p.user, vhost: v.name });
    }
  }
  for (const v of goingVhosts) add('vhost', `vhost '${v}' (with everything in it)`, { kind: 'deleteVhost', name: v });
  for (const u of goingUsers) add('user', `user '${u}'`, { kind: 'deleteUser', name: u });
}
