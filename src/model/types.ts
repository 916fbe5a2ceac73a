// The metadata model's vocabulary: records (vhosts, users, exchanges, queues, bindings, policies),
// the commands that change them, and the results they give back. Records are plain data.

import type { NodeId } from '../lib/ids.js';
import type { ModelError } from './errors.js';
import type { ArgTable, FieldTable } from './field-values.js';

export type { ArgValue, ArgTable, FieldTable } from './field-values.js';

/** A built-in type, or one a plugin registered (custom-exchanges.ts). */
export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers' | (string & {});

/** A connection that owns exclusive queues: unique per node; the node says where it lives. */
export interface ConnectionRef {
  readonly connectionId: string;
  readonly nodeId: NodeId;
}

/**
 * 'replicated': durable, non-exclusive, non-auto-delete (x-queue-type quorum, classic or absent);
 * a Raft group over `replicas`. 'local': everything else (exclusive, auto-delete or transient);
 * lives on `homeNode` and dies with it.
 */
export type QueueKind = 'replicated' | 'local';

export interface ExchangeRecord {
  readonly vhost: string;
  readonly name: string;
  readonly type: ExchangeType;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  /** Declared arguments, normalised to plain data (see field-values.ts). */
  readonly arguments: ArgTable;
}

export interface QueueRecord {
  readonly vhost: string;
  readonly name: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  /** The owning connection of an exclusive queue; null for shared queues. */
  readonly exclusiveOwner: ConnectionRef | null;
  readonly arguments: ArgTable;
  readonly kind: QueueKind;
  /** Node the queue was declared on (a local queue lives there). */
  readonly homeNode: NodeId;
  /** Replica set of a replicated queue (first = preferred leader); [homeNode] for local ones. */
  readonly replicas: readonly NodeId[];
}

export type DestinationKind = 'queue' | 'exchange';

export interface BindingRecord {
  readonly vhost: string;
  readonly source: string;
  readonly destinationKind: DestinationKind;
  readonly destination: string;
  readonly routingKey: string;
  readonly arguments: ArgTable;
}

export interface UserRecord {
  readonly name: string;
  /** Opaque salted hash made by the edge; the model only compares what it is given. */
  readonly passwordHash: string;
  readonly tags: readonly string[];
  /** RabbitMQ user limits; absent = none. */
  readonly limits?: UserLimits;
}

/** RabbitMQ user limits; null (or a negative number in the command) = no limit. */
export interface UserLimits {
  readonly maxConnections: number | null;
  readonly maxChannels: number | null;
}

/** Regexes over resource names, as in RabbitMQ ('' permits nothing, '.*' everything). */
export interface PermissionRecord {
  readonly user: string;
  readonly vhost: string;
  readonly configure: string;
  readonly write: string;
  readonly read: string;
}

/** Topic authorisation (RabbitMQ topic permissions): regexes over routing keys for one topic
 *  exchange; '' permits only the empty key; {username} and {vhost} are expanded. A user without
 *  a record for an exchange is not restricted on it. */
export interface TopicPermissionRecord {
  readonly user: string;
  readonly vhost: string;
  readonly exchange: string;
  readonly write: string;
  readonly read: string;
}

export type PolicyApplyTo = 'queues' | 'exchanges' | 'all';

export interface PolicyRecord {
  readonly vhost: string;
  readonly name: string;
  /** Regex matched against queue/exchange names. */
  readonly pattern: string;
  readonly applyTo: PolicyApplyTo;
  /** Of all matching policies, only the one with the highest priority applies (ties: name order). */
  readonly priority: number;
  /** Keys as in RabbitMQ: message-ttl, expires, max-length, max-length-bytes, overflow,
   *  dead-letter-exchange, dead-letter-routing-key, delivery-limit, alternate-exchange, ... */
  readonly definition: ArgTable;
}

export type Permission = 'configure' | 'write' | 'read';

/** Who asks. When `user` is absent the command is trusted (management, recovery) and no
 *  permission is checked. */
export interface Actor {
  readonly user?: string | undefined;
}

// ---------------------------------------------------------------------------------------------
// Commands. Every command is plain data so it can travel through the metadata Raft log.

export interface DeclareExchange extends Actor {
  readonly kind: 'declareExchange';
  readonly vhost: string;
  readonly name: string;
  readonly type: string;
  readonly passive: boolean;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: FieldTable;
}

export interface DeleteExchange extends Actor {
  readonly kind: 'deleteExchange';
  readonly vhost: string;
  readonly name: string;
  readonly ifUnused: boolean;
}

export interface BindExchange extends Actor {
  readonly kind: 'bindExchange' | 'unbindExchange';
  readonly vhost: string;
  readonly source: string;
  readonly destination: string;
  readonly routingKey: string;
  readonly arguments: FieldTable;
}

export interface DeclareQueue extends Actor {
  readonly kind: 'declareQueue';
  readonly vhost: string;
  /** Final name: for a server-named queue the edge picks `amq.gen-...` and sets serverNamed. */
  readonly name: string;
  readonly serverNamed?: boolean | undefined;
  readonly passive: boolean;
  readonly durable: boolean;
  readonly exclusive: boolean;
  readonly autoDelete: boolean;
  readonly arguments: FieldTable;
  /** The declaring connection (owner of an exclusive queue; its node is the home node). */
  readonly connection: ConnectionRef;
  /** Replica set for a new replicated queue, chosen by placement; default [connection.nodeId]. */
  readonly replicas?: readonly NodeId[] | undefined;
}

export interface DeleteQueue extends Actor {
  readonly kind: 'deleteQueue';
  readonly vhost: string;
  readonly name: string;
  readonly ifUnused: boolean;
  readonly ifEmpty: boolean;
  /** Current counts from the queue itself (the model does not hold messages or consumers). */
  readonly consumerCount: number;
  readonly messageCount: number;
  /** The connection asking; null when the broker itself deletes (auto-delete, x-expires). */
  readonly connection: ConnectionRef | null;
}

export interface BindQueue extends Actor {
  readonly kind: 'bindQueue' | 'unbindQueue';
  readonly vhost: string;
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly arguments: FieldTable;
  readonly connection: ConnectionRef | null;
}

/** queue.purge: checks only (404, 405, 403); the broker empties the queue on success. */
export interface PurgeQueue extends Actor {
  readonly kind: 'purgeQueue';
  readonly vhost: string;
  readonly name: string;
  readonly connection: ConnectionRef | null;
}

/** A connection closed: its exclusive queues go. */
export interface DeleteExclusiveQueues {
  readonly kind: 'deleteExclusiveQueues';
  readonly connection: ConnectionRef;
}

/** A node is gone for good (removed from the cluster): its local queues go. */
export interface DeleteNodeQueues {
  readonly kind: 'deleteNodeQueues';
  readonly nodeId: NodeId;
}

/** Placement changed the replica set of a replicated queue (first = preferred leader). */
export interface SetQueueReplicas {
  readonly kind: 'setQueueReplicas';
  readonly vhost: string;
  readonly name: string;
  readonly replicas: readonly NodeId[];
}

export interface AddUser {
  readonly kind: 'addUser';
  readonly name: string;
  readonly passwordHash: string;
  readonly tags: readonly string[];
}

export interface DeleteUser {
  readonly kind: 'deleteUser';
  readonly name: string;
}

export interface SetPermissions {
  readonly kind: 'setPermissions';
  readonly user: string;
  readonly vhost: string;
  readonly configure: string;
  readonly write: string;
  readonly read: string;
}

export interface ClearPermissions {
  readonly kind: 'clearPermissions';
  readonly user: string;
  readonly vhost: string;
}

export interface SetTopicPermissions {
  readonly kind: 'setTopicPermissions';
  readonly user: string;
  readonly vhost: string;
  readonly exchange: string;
  readonly write: string;
  readonly read: string;
}

/** Without `exchange`, clears the user's topic permissions on every exchange of the vhost. */
export interface ClearTopicPermissions {
  readonly kind: 'clearTopicPermissions';
  readonly user: string;
  readonly vhost: string;
  readonly exchange?: string | undefined;
}

export interface AddVhost {
  readonly kind: 'addVhost';
  readonly name: string;
}

/** RabbitMQ vhost limits; null (or a negative number in the command) = no limit. */
export interface VhostLimits {
  readonly maxQueues: number | null;
  readonly maxConnections: number | null;
}

export interface SetVhostLimits {
  readonly kind: 'setVhostLimits';
  readonly vhost: string;
  readonly maxQueues: number | null;
  readonly maxConnections: number | null;
}

export interface SetUserLimits {
  readonly kind: 'setUserLimits';
  readonly user: string;
  readonly maxConnections: number | null;
  readonly maxChannels: number | null;
}

export interface DeleteVhost {
  readonly kind: 'deleteVhost';
  readonly name: string;
}

export interface SetPolicy {
  readonly kind: 'setPolicy';
  readonly vhost: string;
  readonly name: string;
  readonly pattern: string;
  readonly applyTo: PolicyApplyTo;
  readonly priority: number;
  readonly definition: FieldTable;
}

export interface ClearPolicy {
  readonly kind: 'clearPolicy';
  readonly vhost: string;
  readonly name: string;
}

export type MetadataCommand =
  | DeclareExchange
  | DeleteExchange
  | BindExchange
  | DeclareQueue
  | DeleteQueue
  | BindQueue
  | PurgeQueue
  | DeleteExclusiveQueues
  | DeleteNodeQueues
  | SetQueueReplicas
  | AddUser
  | DeleteUser
  | SetPermissions
  | ClearPermissions
  | SetTopicPermissions
  | ClearTopicPermissions
  | AddVhost
  | DeleteVhost
  | SetVhostLimits
  | SetUserLimits
  | SetPolicy
  | ClearPolicy;

export type MetadataCommandKind = MetadataCommand['kind'];

// ---------------------------------------------------------------------------------------------
// Results.

/**
 * Success. Fields are set when they apply to the command:
 * - `created`: declare made something new (false: it existed and was equivalent).
 * - `exchange` / `queue`: the declared (or passively found, or purged) record.
 * - `deletedQueues`: queues removed by this command (delete, exclusive cleanup, vhost delete):
 *   the broker cancels their consumers and drops their contents.
 * - `deletedExchanges`: exchanges removed, including auto-deleted ones.
 * - `changedQueues`: queues whose effective settings changed (policies).
 */
export interface MetadataOk {
  readonly ok: true;
  readonly created: boolean;
  readonly exchange?: ExchangeRecord;
  readonly queue?: QueueRecord;
  readonly deletedQueues: readonly QueueRecord[];
  readonly deletedExchanges: readonly ExchangeRecord[];
  readonly changedQueues: readonly QueueRecord[];
}

export type MetadataResult = MetadataOk | ModelError;
