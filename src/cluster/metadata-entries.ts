// What the metadata group's log and snapshots hold, and the JSON payloads of its 'meta.*' calls:
// model commands, node starts, the node registry (join/forget) and the snapshot that carries both.

import { assert } from '../lib/assert.js';
import type { NodeId } from '../lib/ids.js';
import type { MetadataCommand, MetadataResult, MetadataSnapshot } from '../model/index.js';

/** A node of the cluster as the metadata group records it (the node registry). */
export interface ClusterNode {
  readonly id: NodeId;
  /** host:port of its cluster transport, as it advertised it (a node's own --seeds address wins). */
  readonly clusterAddress: string;
  /** host:port of its AMQP listener. */
  readonly amqpAddress: string;
  readonly version: string;
  /** name@version of each plugin that adds exchange types (sorted); every member must load the same. */
  readonly exchangePlugins?: readonly string[];
}

export interface DefaultUser {
  readonly name: string;
  readonly passwordHash: string;
  readonly tags: readonly string[];
}

export type Entry =
  | { t: 'cmd'; o: string; s: number; c: MetadataCommand }
  // info: absent in logs written before the node registry existed.
  | { t: 'start'; node: NodeId; user: DefaultUser; info?: ClusterNode }
  | { t: 'join'; info: ClusterNode }
  | { t: 'forget'; node: NodeId };

export interface SnapshotData {
  v: 1;
  bootstrapped: boolean;
  model: MetadataSnapshot;
  /** The node registry; absent in snapshots written before it existed. */
  nodes?: ClusterNode[];
}

/** RPC method names served by every member (the leader acts; others forward or refuse). */
export const MetaMethod = {
  apply: 'meta.apply',
  start: 'meta.start',
  commit: 'meta.commit',
  join: 'meta.join',
  forget: 'meta.forget',
  applied: 'meta.applied',
} as const;

export interface ApplyAnswer { i: number; r: MetadataResult }
export interface JoinAnswer { bootstrap: NodeId[]; nodes: ClusterNode[] }

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeEntry(e: Entry): Uint8Array {
  return encoder.encode(JSON.stringify(e));
}

export function decodeEntry(data: Uint8Array): Entry {
  const e = JSON.parse(decoder.decode(data)) as Entry;
  assert(e.t === 'cmd' || e.t === 'start' || e.t === 'join' || e.t === 'forget', 'metadata log entry of unknown type');
  return e;
}

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Payloads come from authenticated peers of the same cluster; a malformed one is a peer's bug. */
export function decodeJson<T>(bytes: Uint8Array): T {
  return JSON.parse(decoder.decode(bytes)) as T;
}
