// Snapshot and restore of the whole metadata state as plain JSON-safe data (the metadata Raft
// group snapshots it). Indexes (routers, incoming/outgoing sets) are rebuilt on restore.

import { assert } from '../lib/assert.js';
import { addBinding } from './bindings.js';
import type { MetadataState } from './state.js';
import { putTopicPermission } from './access.js';
import { emptyVhost, putExchange, putQueue } from './state.js';
import type {
  BindingRecord, ExchangeRecord, PermissionRecord, PolicyRecord, QueueRecord,
  TopicPermissionRecord, UserRecord, VhostLimits,
} from './types.js';

export const snapshotVersion = 1;

export interface VhostSnapshot {
  readonly name: string;
  readonly exchanges: readonly ExchangeRecord[];
  readonly queues: readonly QueueRecord[];
  readonly bindings: readonly BindingRecord[];
  readonly policies: readonly PolicyRecord[];
  readonly permissions: readonly PermissionRecord[];
  /** Absent in snapshots taken before topic permissions existed. */
  readonly topicPermissions?: readonly TopicPermissionRecord[];
  readonly limits?: VhostLimits;
}

export interface MetadataSnapshot {
  readonly version: number;
  readonly users: readonly UserRecord[];
  readonly vhosts: readonly VhostSnapshot[];
}

export function snapshotMetadata(state: MetadataState): MetadataSnapshot {
  const vhosts: VhostSnapshot[] = [];
  for (const v of state.vhosts.values()) {
    vhosts.push({
      name: v.name,
      exchanges: [...v.exchanges.values()].map((x) => x.record),
      queues: [...v.queues.values()].map((q) => q.record),
      bindings: [...v.bindings.values()],
      policies: [...v.policies.values()],
      permissions: [...v.permissions.values()],
      topicPermissions: [...v.topicPermissions.values()].flatMap((m) => [...m.values()]),
      limits: v.limits,
    });
  }
  return { version: snapshotVersion, users: [...state.users.values()], vhosts };
}

export function restoreMetadata(snapshot: MetadataSnapshot): MetadataState {
  assert(snapshot.version === snapshotVersion, `unknown metadata snapshot version ${snapshot.version}`);
  const state: MetadataState = { vhosts: new Map(), users: new Map() };
  for (const u of snapshot.users) state.users.set(u.name, u);
  for (const s of snapshot.vhosts) {
    const v = emptyVhost(s.name);
    state.vhosts.set(s.name, v);
    for (const x of s.exchanges) putExchange(v, x);
    for (const q of s.queues) putQueue(v, q);
    for (const b of s.bindings) assert(addBinding(v, b), 'duplicate binding in snapshot');
    for (const p of s.policies) v.policies.set(p.name, p);
    for (const p of s.permissions) v.permissions.set(p.user, p);
    for (const t of s.topicPermissions ?? []) putTopicPermission(v, t);
    if (s.limits !== undefined) v.limits = s.limits;
  }
  return state;
}
