// Gossip messages on the wire (proto/cluster.proto GossipMessage, MemberUpdate, MemberMeta), with the
// codec loaded from proto/: a node sends a few a second, where a hand-written codec buys nothing
// (bench/proto-codecs.ts: about 5 us a message either way). Malformed input throws
// ProtoDecodeError; the gossip service drops such a message and logs it.

import { nodeId } from '../lib/ids.js';
import { ProtoDecodeError, protoCodec } from '../transport/index.js';
import type { GossipKind, GossipMessage, MemberMeta, MemberStatus, MemberUpdate } from './swim.js';

/** GossipMessage as protobufjs has it: enums by name, every field present (defaults filled in). */
interface WireGossip {
  kind: string;
  seq: number;
  from: string;
  fromIncarnation: number;
  target: string;
  updates: Array<{ nodeId: string; status: string | number; incarnation: number; meta?: WireMeta | null }>;
}

interface WireMeta {
  amqpAddress: string;
  clusterAddress: string;
  load: number;
  version: string;
  leaders: Record<string, string>;
}

const codec = protoCodec<WireGossip>('espresso.cluster.v1.GossipMessage');

const kindWire: Record<GossipKind, string> = { ping: 'KIND_PING', ack: 'KIND_ACK', 'ping-req': 'KIND_PING_REQ', sync: 'KIND_SYNC' };
const statusWire: Record<MemberStatus, string> = { alive: 'MEMBER_STATUS_ALIVE', suspect: 'MEMBER_STATUS_SUSPECT', dead: 'MEMBER_STATUS_DEAD' };
const kindByWire = new Map(Object.entries(kindWire).map(([k, v]) => [v, k as GossipKind]));
const statusByWire = new Map(Object.entries(statusWire).map(([k, v]) => [v, k as MemberStatus]));

/** Leaders in key order, so that one state always gives the same bytes. */
function sortedLeaders(leaders: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  // defineProperty: a group named __proto__ stays an entry (assignment would swap the prototype and drop it).
  for (const key of Object.keys(leaders).sort()) Object.defineProperty(out, key, { value: leaders[key]!, enumerable: true, writable: true, configurable: true });
  return out;
}

export function encodeGossip(m: GossipMessage): Uint8Array {
  return codec.encode({
    kind: kindWire[m.kind], seq: m.seq, from: m.from, fromIncarnation: m.fromIncarnation, target: m.target ?? '',
    updates: m.updates.map((u) => ({
      nodeId: u.nodeId, status: statusWire[u.status], incarnation: u.incarnation,
      ...(u.meta !== undefined ? { meta: { ...u.meta, leaders: sortedLeaders(u.meta.leaders) } } : {}),
    })),
  });
}

function decodeMeta(w: WireMeta): MemberMeta {
  const leaders: Record<string, string> = {};
  // defineProperty: a group named __proto__ must stay a plain entry, not a prototype swap.
  for (const [key, value] of Object.entries(w.leaders)) Object.defineProperty(leaders, key, { value, enumerable: true, writable: true, configurable: true });
  return { amqpAddress: w.amqpAddress, clusterAddress: w.clusterAddress, load: w.load, version: w.version, leaders };
}

/** The update, or undefined for a status this version does not know (a newer peer's). */
function decodeUpdate(u: WireGossip['updates'][number]): MemberUpdate | undefined {
  if (u.nodeId === '' || u.status === 'MEMBER_STATUS_UNSPECIFIED') throw new ProtoDecodeError('member update without node id or status');
  const status = typeof u.status === 'string' ? statusByWire.get(u.status) : undefined;
  if (status === undefined) return undefined;
  return { nodeId: nodeId(u.nodeId), status, incarnation: u.incarnation, meta: u.meta === undefined || u.meta === null ? undefined : decodeMeta(u.meta) };
}

export function decodeGossip(buf: Uint8Array): GossipMessage {
  const w = codec.decode(buf);
  const kind = kindByWire.get(w.kind);
  if (kind === undefined || w.from === '') throw new ProtoDecodeError('gossip message without kind or sender');
  const updates: MemberUpdate[] = [];
  for (const u of w.updates) {
    const update = decodeUpdate(u);
    if (update !== undefined) updates.push(update);
  }
  return { kind, seq: w.seq, from: nodeId(w.from), fromIncarnation: w.fromIncarnation, target: w.target === '' ? undefined : nodeId(w.target), updates };
}
