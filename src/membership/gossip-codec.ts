// Gossip messages on the wire (proto/cluster.proto GossipMessage, MemberUpdate, MemberMeta).
// Malformed input throws ProtoDecodeError; the gossip service drops such a message and logs it.

import { nodeId } from '../lib/ids.js';
import { ProtoDecodeError, ProtoReader, ProtoWriter, decodeString } from '../transport/index.js';
import type { GossipKind, GossipMessage, MemberMeta, MemberStatus, MemberUpdate } from './swim.js';

const kindWire: Record<GossipKind, number> = { ping: 1, ack: 2, 'ping-req': 3, sync: 4 };
const statusWire: Record<MemberStatus, number> = { alive: 1, suspect: 2, dead: 3 };
const kindByWire = new Map(Object.entries(kindWire).map(([k, v]) => [v, k as GossipKind]));
const statusByWire = new Map(Object.entries(statusWire).map(([k, v]) => [v, k as MemberStatus]));

function encodeMeta(meta: MemberMeta): Uint8Array {
  const w = new ProtoWriter(128)
    .string(1, meta.amqpAddress).string(2, meta.clusterAddress).uint(3, meta.load).string(4, meta.version);
  for (const key of Object.keys(meta.leaders).sort()) {
    w.bytes(5, new ProtoWriter(64).string(1, key).string(2, meta.leaders[key]!).finish());
  }
  return w.finish();
}

function encodeUpdate(u: MemberUpdate): Uint8Array {
  const w = new ProtoWriter(64).string(1, u.nodeId).uint(2, statusWire[u.status]).uint(3, u.incarnation);
  if (u.meta !== undefined) w.bytes(4, encodeMeta(u.meta));
  return w.finish();
}

export function encodeGossip(m: GossipMessage): Uint8Array {
  const w = new ProtoWriter(256)
    .uint(1, kindWire[m.kind]).uint(2, m.seq).string(3, m.from).uint(4, m.fromIncarnation);
  if (m.target !== undefined) w.string(5, m.target);
  for (const u of m.updates) w.bytes(6, encodeUpdate(u));
  return w.finish();
}

function decodeMeta(buf: Uint8Array): MemberMeta {
  const meta = { amqpAddress: '', clusterAddress: '', load: 0, version: '', leaders: {} as Record<string, string> };
  const r = new ProtoReader(buf);
  while (!r.done()) {
    const f = r.next();
    if (f.wire === 2 && f.field === 1) meta.amqpAddress = decodeString(f.value);
    else if (f.wire === 2 && f.field === 2) meta.clusterAddress = decodeString(f.value);
    else if (f.wire === 0 && f.field === 3) meta.load = f.value;
    else if (f.wire === 2 && f.field === 4) meta.version = decodeString(f.value);
    else if (f.wire === 2 && f.field === 5) {
      const e = new ProtoReader(f.value);
      let key = '';
      let value = '';
      while (!e.done()) {
        const g = e.next();
        if (g.wire === 2 && g.field === 1) key = decodeString(g.value);
        else if (g.wire === 2 && g.field === 2) value = decodeString(g.value);
      }
      // defineProperty: a group named __proto__ must stay a plain entry, not a prototype swap.
      Object.defineProperty(meta.leaders, key, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  return meta;
}

/** The update, or undefined for a status this version does not know (a newer peer's). */
function decodeUpdate(buf: Uint8Array): MemberUpdate | undefined {
  let id = '';
  let statusWireValue = 0;
  let incarnation = 0;
  let meta: MemberMeta | undefined;
  const r = new ProtoReader(buf);
  while (!r.done()) {
    const f = r.next();
    if (f.wire === 2 && f.field === 1) id = decodeString(f.value);
    else if (f.wire === 0 && f.field === 2) statusWireValue = f.value;
    else if (f.wire === 0 && f.field === 3) incarnation = f.value;
    else if (f.wire === 2 && f.field === 4) meta = decodeMeta(f.value);
  }
  if (id === '' || statusWireValue === 0) throw new ProtoDecodeError('member update without node id or status');
  const status = statusByWire.get(statusWireValue);
  return status === undefined ? undefined : { nodeId: nodeId(id), status, incarnation, meta };
}

export function decodeGossip(buf: Uint8Array): GossipMessage {
  let kind: GossipKind | undefined;
  let seq = 0;
  let from = '';
  let fromIncarnation = 0;
  let target: string | undefined;
  const updates: MemberUpdate[] = [];
  const r = new ProtoReader(buf);
  while (!r.done()) {
    const f = r.next();
    if (f.wire === 0 && f.field === 1) kind = kindByWire.get(f.value);
    else if (f.wire === 0 && f.field === 2) seq = f.value;
    else if (f.wire === 2 && f.field === 3) from = decodeString(f.value);
    else if (f.wire === 0 && f.field === 4) fromIncarnation = f.value;
    else if (f.wire === 2 && f.field === 5) target = decodeString(f.value);
    else if (f.wire === 2 && f.field === 6) {
      const u = decodeUpdate(f.value);
      if (u !== undefined) updates.push(u);
    }
  }
  if (kind === undefined || from === '') throw new ProtoDecodeError('gossip message without kind or sender');
  return { kind, seq, from: nodeId(from), fromIncarnation, target: target === undefined ? undefined : nodeId(target), updates };
}
