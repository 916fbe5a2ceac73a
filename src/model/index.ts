// The metadata model's public API: the pure metadata state machine (vhosts, users, permissions,
// exchanges, bindings, queues and their placement, policies) and routing. Rank 1: no I/O.
//
// Types (types.ts, errors.ts, field-values.ts):
//   MetadataState; records ExchangeRecord, QueueRecord, BindingRecord, UserRecord,
//   PermissionRecord, PolicyRecord; MetadataCommand (union on `kind`); MetadataResult =
//   MetadataOk | ModelError; ModelError {ok:false, replyCode, replyText, scope}; ReplyCode.
//   FieldTable (structural input table), ArgValue/ArgTable (normalised stored values).
// The functions (applyMetadata, route, queries, snapshot) are exported below as they land.

export * from './types.js';
export { ReplyCode, modelError, isModelError, errors, resourceName } from './errors.js';
export type { ModelError, ErrorScope, ResourceKind } from './errors.js';
export {
  normalize, normalizeTable, readInt, readString, readBool, untag, typeNameOf, argEquals,
} from './field-values.js';
