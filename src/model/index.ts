// The metadata model's public API: the pure metadata state machine (vhosts, users, permissions,
// exchanges, bindings, queues and their placement, policies) and routing. Rank 1: no I/O.
//
// State and commands
//   createMetadataState(init?: {users?: UserRecord[]; vhosts?: string[]}): MetadataState
//     '/' plus its pre-declared exchanges ("" and amq.*); the given users get '.*' on each vhost
//     (pass guest with the hash the edge computed).
//   applyMetadata(state, command: MetadataCommand): MetadataResult
//     Mutates `state` on success only. MetadataResult = MetadataOk | ModelError where
//     ModelError = {ok:false, replyCode: 403|404|405|406|503|530|541, replyText (RabbitMQ's
//     wording, "NOT_FOUND - no queue 'q' in vhost '/'"), scope: 'channel'|'connection'} and
//     MetadataOk = {ok:true, created, exchange?, queue?, deletedQueues, deletedExchanges,
//     changedQueues}. Commands (field `kind`): declareExchange, deleteExchange, bindExchange,
//     unbindExchange, declareQueue, deleteQueue, bindQueue, unbindQueue, purgeQueue,
//     deleteExclusiveQueues (connection closed), deleteNodeQueues (node removed: its local
//     queues), setQueueReplicas (placement), addUser, deleteUser, setPermissions,
//     clearPermissions, setTopicPermissions, clearTopicPermissions, addVhost,
//     deleteVhost, setVhostLimits (max-queues: 406 on declare; max-connections: see
//     checkVhostConnectionLimit, 530), setPolicy, clearPolicy (see types.ts). Commands with `user` are permission-
//     checked; without it they are trusted. Server-named queues: the edge picks `amq.gen-...`
//     and sets serverNamed. Queue delete takes the queue's consumer and message counts.
//
// Routing (publish path)
//   checkPublish(state, user, vhost, exchange): ExchangeRecord | ModelError   (403/404/403)
//   checkTopicAccess(state, user, vhost, exchangeRecord, routingKey, 'write'): null | 403
//     (after the broker's expiration check, as RabbitMQ orders them)
//   extraRoutingKeys(headers): string[] | null | ModelError                  (CC + BCC)
//   route(state, vhost, exchange, routingKey, headers?, extraKeys?, message?): string[] (queue names,
//     once each; a set: the order may differ after a snapshot restore)
//
// Custom exchange types (plugins): registerExchangeType(name, CustomExchangeType) before the
//   metadata is created; declares and binds are validated by the type (406), routing asks it and
//   throws RouteFailure when it fails. Process-wide; every node must register the same types.
//
// Queries
//   lookupExchange, lookupQueue, queueSettings (effective: x-args + policy), checkQueueAccess
//   (consume/get: 403, 404, 405), checkVhostAccess (530), checkVhostConnectionLimit (530),
//   checkPermission, findUser,
//   listVhosts, listExchanges, listQueues, listBindings, listPolicies, bindingsOfQueue,
//   isReplyToName, requestedReplicaCount(args) (placement input before declaring).
//
// Log entries: serializableCommand(command): MetadataCommand  (tables made JSON-safe and tagged;
//   applying it gives the same result as the original).
//
// Snapshot: snapshotMetadata(state): MetadataSnapshot (plain JSON-safe data);
//   restoreMetadata(snapshot): MetadataState (indexes rebuilt).
//
// Policies: of the matching policies the highest priority one applies. Effective queue settings
// (queueSettings) resolve it against the queue's x-args as RabbitMQ's classic queues do: numeric
// limits (message-ttl, expires, max-length, max-length-bytes, delivery-limit, consumer-timeout)
// take the smaller value; overflow, dead-letter-exchange/-routing-key and alternate-exchange take
// the x-arg when present. x-queue-type quorum defaults delivery-limit to 20 (RabbitMQ 4.x).
// Differences from RabbitMQ, on purpose: durable classic queues are replicated too, so
// quorum-only x-args are accepted without x-queue-type.
//
// Field tables: input tables are structural (`FieldTable`); values may be plain (number, bigint,
// string, Uint8Array/Buffer, boolean, null, arrays, tables) or tagged ({tag|type|'!', value}).
// Stored arguments are normalised (`ArgTable`). Integers compare by value across field types.

export * from './types.js';
export { ReplyCode, modelError, isModelError, errors, resourceName } from './errors.js';
export type { ModelError, ErrorScope, ResourceKind } from './errors.js';
export {
  normalize, normalizeTable, readInt, readString, readBool, untag, typeNameOf, argEquals,
} from './field-values.js';
export { createMetadataState, defaultVhost, createRouter } from './state.js';
export type { MetadataState, MetadataInit } from './state.js';
export { applyMetadata } from './apply.js';
export { route, checkPublish, extraRoutingKeys } from './route.js';
export {
  checkPermission, checkPublishTopics, checkTopicAccess, checkVhostAccess, checkVhostConnectionLimit, findUser,
  checkUserChannelLimit, checkUserConnectionLimit,
} from './access.js';
export {
  lookupExchange, lookupQueue, queueSettings, checkQueueAccess, listVhosts, listExchanges,
  listQueues, listBindings, listPolicies, bindingsOfQueue,
} from './queries.js';
export type { QueueSettings, Overflow } from './policies.js';
export { queueArgSettings, policyFor } from './policies.js';
export { isReplyToName, replyToPrefix } from './binding-commands.js';
export { requestedReplicaCount } from './queue-args.js';
export { serializableCommand } from './wire.js';
export { snapshotMetadata, restoreMetadata, snapshotVersion } from './snapshot.js';
export type { MetadataSnapshot, VhostSnapshot } from './snapshot.js';
export { limits as modelLimits } from './limits.js';
export { exportDefinitions, planDefinitions, parseTags, isSha256Hash, sha256Algorithm, definitionsFormatVersion } from './definitions.js';
export type { Definitions, Plan, PlanStep, PlanOptions } from './definitions.js';
export {
  registerExchangeType, unregisterExchangeType, isKnownExchangeType, customExchangeType, RouteFailure,
  builtinExchangeTypes,
} from './custom-exchanges.js';
export type { CustomExchangeType } from './custom-exchanges.js';
export type { RoutedMessage, ExchangeRouter, RouteSink } from './router.js';
