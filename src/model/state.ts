// The metadata state: every vhost with its exchanges (and their routing indexes), queues,
// bindings, policies and permissions, plus the users. Commands mutate it in place through
// apply.ts; everything else only reads it.

import { assert } from '../lib/assert.js';
import { CustomRouter } from './custom-exchanges.js';
import { DirectRouter } from './direct.js';
import { FanoutRouter } from './fanout.js';
import { HeadersRouter } from './headers.js';
import type { ExchangeRouter } from './router.js';
import { TopicRouter } from './topic.js';
import type {
  BindingRecord, ConnectionRef, ExchangeRecord, ExchangeType, PermissionRecord, PolicyRecord, QueueRecord,
  TopicPermissionRecord, UserRecord, VhostLimits,
} from './types.js';

export interface ExchangeState {
  record: ExchangeRecord;
  readonly router: ExchangeRouter;
  /** Bindings with this exchange as source (the router indexes the same set). */
  readonly outgoing: Set<BindingRecord>;
  /** Bindings with this exchange as destination (exchange-to-exchange). */
  readonly incoming: Set<BindingRecord>;
}

export interface QueueState {
  record: QueueRecord;
  /** Bindings with this queue as destination. */
  readonly incoming: Set<BindingRecord>;
}

export interface VhostState {
  readonly name: string;
  readonly exchanges: Map<string, ExchangeState>;
  readonly queues: Map<string, QueueState>;
  /** Every binding of the vhost by identity key (see bindingKey). */
  readonly bindings: Map<string, BindingRecord>;
  readonly policies: Map<string, PolicyRecord>;
  /** By user name. */
  readonly permissions: Map<string, PermissionRecord>;
  /** By user name, then exchange name. */
  readonly topicPermissions: Map<string, Map<string, TopicPermissionRecord>>;
  limits: VhostLimits;
  /** Names of exclusive queues by owning connection (connectionKey), for connection close. */
  readonly exclusiveQueues: Map<string, Set<string>>;
}

export interface MetadataState {
  readonly vhosts: Map<string, VhostState>;
  readonly users: Map<string, UserRecord>;
}

export interface MetadataInit {
  /** Users created with the state (RabbitMQ's guest/guest: the edge hashes 'guest'). */
  readonly users?: readonly UserRecord[];
  /** Vhosts created with the state (default ['/']); the initial users get '.*' on each. */
  readonly vhosts?: readonly string[];
}

export const defaultVhost = '/';

/** Pre-declared per vhost, durable, as in RabbitMQ. */
const predeclared: ReadonlyArray<readonly [string, ExchangeType, boolean]> = [
  ['', 'direct', false],
  ['amq.direct', 'direct', false],
  ['amq.fanout', 'fanout', false],
  ['amq.topic', 'topic', false],
  ['amq.headers', 'headers', false],
  ['amq.match', 'headers', false],
  ['amq.rabbitmq.trace', 'topic', true],
];

export function createMetadataState(init: MetadataInit = {}): MetadataState {
  const state: MetadataState = { vhosts: new Map(), users: new Map() };
  for (const user of init.users ?? []) state.users.set(user.name, user);
  for (const name of init.vhosts ?? [defaultVhost]) {
    const vhost = createVhost(name);
    state.vhosts.set(name, vhost);
    for (const user of init.users ?? []) {
      vhost.permissions.set(user.name,
        { user: user.name, vhost: name, configure: '.*', write: '.*', read: '.*' });
    }
  }
  return state;
}

/** A vhost with nothing in it, not even the pre-declared exchanges (snapshot restore). */
export function emptyVhost(name: string): VhostState {
  return {
    name, exchanges: new Map(), queues: new Map(), bindings: new Map(), policies: new Map(),
    permissions: new Map(), topicPermissions: new Map(), exclusiveQueues: new Map(),
    limits: { maxQueues: null, maxConnections: null },
  };
}

export function createVhost(name: string): VhostState {
  const vhost = emptyVhost(name);
  for (const [xName, type, internal] of predeclared) {
    putExchange(vhost, {
      vhost: name, name: xName, type, durable: true, autoDelete: false, internal, arguments: {},
    });
  }
  return vhost;
}

export function createRouter(record: ExchangeRecord): ExchangeRouter {
  switch (record.type) {
    case 'direct': return new DirectRouter();
    case 'fanout': return new FanoutRouter();
    case 'topic': return new TopicRouter();
    case 'headers': return new HeadersRouter();
    default: return new CustomRouter(record);
  }
}

export function putExchange(vhost: VhostState, record: ExchangeRecord): ExchangeState {
  assert(!vhost.exchanges.has(record.name), 'exchange already present');
  const x: ExchangeState = {
    record, router: createRouter(record), outgoing: new Set(), incoming: new Set(),
  };
  vhost.exchanges.set(record.name, x);
  return x;
}

export function putQueue(vhost: VhostState, record: QueueRecord): QueueState {
  assert(!vhost.queues.has(record.name), 'queue already present');
  const q: QueueState = { record, incoming: new Set() };
  vhost.queues.set(record.name, q);
  if (record.exclusiveOwner !== null) {
    const key = connectionKey(record.exclusiveOwner);
    const names = vhost.exclusiveQueues.get(key);
    if (names === undefined) vhost.exclusiveQueues.set(key, new Set([record.name]));
    else names.add(record.name);
  }
  return q;
}

/** Takes a queue out of the vhost's maps (bindings are the caller's business). */
export function dropQueue(vhost: VhostState, q: QueueState): void {
  assert(vhost.queues.get(q.record.name) === q, 'removing a queue not in the vhost');
  vhost.queues.delete(q.record.name);
  const owner = q.record.exclusiveOwner;
  if (owner === null) return;
  const key = connectionKey(owner);
  const names = vhost.exclusiveQueues.get(key);
  assert(names !== undefined && names.delete(q.record.name), 'exclusive index out of step');
  if (names.size === 0) vhost.exclusiveQueues.delete(key);
}

export function connectionKey(c: ConnectionRef): string {
  return `${c.nodeId}\u0000${c.connectionId}`;
}

/** Identity of a binding: RabbitMQ's {source, destination, key, args}. */
export function bindingKey(b: Omit<BindingRecord, 'vhost'>): string {
  return `${b.source}\u0000${b.destinationKind}\u0000${b.destination}\u0000${b.routingKey}`
    + `\u0000${canonicalJson(b.arguments)}`;
}

/** JSON with sorted table keys, so equal tables give equal strings. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const t = v as Record<string, unknown>;
    return `{${Object.keys(t).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(t[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function isReservedName(name: string): boolean {
  return name.startsWith('amq.');
}

/** RabbitMQ strips CR and LF from names (rabbit_channel strip_cr_lf). */
export function stripCrLf(name: string): string {
  return name.includes('\r') || name.includes('\n') ? name.replace(/[\r\n]/g, '') : name;
}
