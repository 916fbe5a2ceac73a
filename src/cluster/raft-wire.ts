// Encoder and decoder for proto/raft.proto: the Raft messages one node sends another in one Ready
// cycle travel as one RaftBatch per peer on the transport's raft lane. `from`/`to` are not on the
// wire (the transport authenticated the sender; the receiver is this node).

import { assert } from '../lib/assert.js';
import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';
import { EntryType } from '../raft/index.js';
import type {
  Entry, GroupMessage, HeartbeatItem, HeartbeatResponseItem, Membership, Message, SnapshotMeta,
} from '../raft/index.js';
import { ProtoDecodeError, ProtoReader, ProtoWriter, decodeString } from '../transport/index.js';

/** The messages for one peer from one cycle (heartbeats of both directions at most once each). */
export interface RaftBatchOut {
  readonly messages: readonly GroupMessage[];
  readonly heartbeats: readonly HeartbeatItem[];
  readonly heartbeatResponses: readonly HeartbeatResponseItem[];
}

const empty = new Uint8Array(0);
const utf8 = new TextEncoder();

// An append to two followers carries the same Entry objects: their encoding is made once.
const entryCache = new WeakMap<Entry, Uint8Array>();

function encodeEntry(e: Entry): Uint8Array {
  let bytes = entryCache.get(e);
  if (bytes !== undefined) return bytes;
  const w = new ProtoWriter(e.data.length + 24);
  w.uint(1, e.index).uint(2, e.term).uint(3, e.type);
  if (e.data.length > 0) w.bytes(4, e.data);
  bytes = w.finish();
  entryCache.set(e, bytes);
  return bytes;
}

function encodeMembership(m: Membership): Uint8Array {
  const w = new ProtoWriter(64);
  for (const v of m.voters) w.bytes(1, utf8.encode(v));
  for (const l of m.learners) w.bytes(2, utf8.encode(l));
  return w.finish();
}

function encodeSnapshotMeta(m: SnapshotMeta): Uint8Array {
  return new ProtoWriter(96).uint(1, m.index).uint(2, m.term).bytes(3, encodeMembership(m.membership)).finish();
}

const bool = (b: boolean): number => (b ? 1 : 0);

/** The oneof body of a GroupMessage: [field number, encoded body]. */
function encodeBody(m: GroupMessage): [number, Uint8Array] {
  switch (m.type) {
    case 'append': {
      let size = 16;
      for (const e of m.entries) size += e.data.length + 28;
      const w = new ProtoWriter(size).uint(1, m.prevIndex).uint(2, m.prevTerm);
      for (const e of m.entries) w.bytes(3, encodeEntry(e));
      return [3, w.uint(4, m.commit).finish()];
    }
    case 'append-response':
      return [4, new ProtoWriter(32).uint(1, bool(m.reject)).uint(2, m.index).uint(3, m.hintIndex).uint(4, m.hintTerm).finish()];
    case 'vote':
      return [5, new ProtoWriter(32).uint(1, bool(m.pre)).uint(2, m.lastIndex).uint(3, m.lastTerm).uint(4, bool(m.transfer)).finish()];
    case 'vote-response':
      return [6, new ProtoWriter(8).uint(1, bool(m.pre)).uint(2, bool(m.reject)).finish()];
    case 'snapshot': {
      const w = new ProtoWriter(m.data.length + 128).bytes(1, encodeSnapshotMeta(m.meta)).uint(2, m.offset);
      if (m.data.length > 0) w.bytes(3, m.data);
      return [7, w.uint(4, bool(m.done)).finish()];
    }
    case 'snapshot-response':
      return [8, new ProtoWriter(24).uint(1, m.index).uint(2, m.nextOffset).finish()];
    case 'timeout-now':
      return [9, empty];
  }
}

/** Encodes one RaftBatch. */
export function encodeRaftBatch(b: RaftBatchOut): Uint8Array {
  let size = 64;
  const bodies: Array<[GroupMessage, number, Uint8Array]> = [];
  for (const m of b.messages) {
    const [field, body] = encodeBody(m);
    bodies.push([m, field, body]);
    size += body.length + m.group.length + 24;
  }
  size += (b.heartbeats.length + b.heartbeatResponses.length) * 40;
  const out = new ProtoWriter(size);
  for (const [m, field, body] of bodies) {
    const w = new ProtoWriter(body.length + m.group.length + 24);
    w.string(1, m.group).uint(2, m.term).bytes(field, body);
    out.bytes(1, w.finish());
  }
  for (const h of b.heartbeats) {
    out.bytes(2, new ProtoWriter(64).string(1, h.group).uint(2, h.term).uint(3, h.commit).uint(4, h.ctx).finish());
  }
  for (const h of b.heartbeatResponses) {
    out.bytes(3, new ProtoWriter(64).string(1, h.group).uint(2, h.term).uint(3, h.ctx).finish());
  }
  return out.finish();
}

/** Decodes one RaftBatch into core messages addressed from `from` to `to`. Throws ProtoDecodeError. */
export function decodeRaftBatch(payload: Uint8Array, from: NodeId, to: NodeId): Message[] {
  const out: Message[] = [];
  const heartbeats: HeartbeatItem[] = [];
  const responses: HeartbeatResponseItem[] = [];
  const r = new ProtoReader(payload);
  while (!r.done()) {
    const f = r.next();
    if (f.wire !== 2) continue;
    if (f.field === 1) {
      const m = decodeGroupMessage(f.value, from, to);
      if (m !== undefined) out.push(m);
    }
    else if (f.field === 2) heartbeats.push(decodeHeartbeatItem(f.value));
    else if (f.field === 3) responses.push(decodeHeartbeatResponseItem(f.value));
  }
  if (heartbeats.length > 0) out.push({ type: 'heartbeat', from, to, items: heartbeats });
  if (responses.length > 0) out.push({ type: 'heartbeat-response', from, to, items: responses });
  return out;
}

/** Reads a message's fields into a map of field number -> last value (proto3: last one wins). */
function fields(buf: Uint8Array, repeated?: number): { nums: Map<number, number>; bytes: Map<number, Uint8Array>; list: Uint8Array[] } {
  const nums = new Map<number, number>();
  const bytes = new Map<number, Uint8Array>();
  const list: Uint8Array[] = [];
  const r = new ProtoReader(buf);
  while (!r.done()) {
    const f = r.next();
    if (f.field === 0) break; // end reached after a skipped fixed field
    if (f.wire === 0) nums.set(f.field, f.value);
    else if (f.field === repeated) list.push(f.value);
    else bytes.set(f.field, f.value);
  }
  return { nums, bytes, list };
}

const str = (b: Uint8Array | undefined): string => (b === undefined ? '' : decodeString(b));

/** The message, or undefined when its body is of a kind this version does not know (a newer peer's). */
function decodeGroupMessage(buf: Uint8Array, from: NodeId, to: NodeId): GroupMessage | undefined {
  const { nums, bytes } = fields(buf);
  const group = str(bytes.get(1)) as GroupId;
  if (group.length === 0) throw new ProtoDecodeError('group message without a group');
  const base = { group, from, to, term: (nums.get(2) ?? 0) as Term };
  for (const field of [3, 4, 5, 6, 7, 8, 9]) {
    const body = bytes.get(field);
    if (body !== undefined) return decodeBody(field, body, base);
  }
  return undefined;
}

type Base = { group: GroupId; from: NodeId; to: NodeId; term: Term };

function decodeBody(field: number, body: Uint8Array, base: Base): GroupMessage {
  const { nums, bytes, list } = fields(body, field === 3 ? 3 : undefined);
  const n = (k: number): number => nums.get(k) ?? 0;
  const b = (k: number): boolean => n(k) !== 0;
  switch (field) {
    case 3:
      return {
        ...base, type: 'append', prevIndex: n(1) as LogIndex, prevTerm: n(2) as Term,
        entries: list.map(decodeEntry), commit: n(4) as LogIndex,
      };
    case 4:
      return {
        ...base, type: 'append-response', reject: b(1), index: n(2) as LogIndex,
        hintIndex: n(3) as LogIndex, hintTerm: n(4) as Term,
      };
    case 5:
      return { ...base, type: 'vote', pre: b(1), lastIndex: n(2) as LogIndex, lastTerm: n(3) as Term, transfer: b(4) };
    case 6:
      return { ...base, type: 'vote-response', pre: b(1), reject: b(2) };
    case 7: {
      const meta = bytes.get(1);
      if (meta === undefined) throw new ProtoDecodeError('snapshot without meta');
      return { ...base, type: 'snapshot', meta: decodeSnapshotMeta(meta), offset: n(2), data: bytes.get(3) ?? empty, done: b(4) };
    }
    case 8:
      return { ...base, type: 'snapshot-response', index: n(1) as LogIndex, nextOffset: n(2) };
    default:
      assert(field === 9, 'body field');
      return { ...base, type: 'timeout-now' };
  }
}

function decodeEntry(buf: Uint8Array): Entry {
  const { nums, bytes } = fields(buf);
  const type = nums.get(3) ?? 0;
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new ProtoDecodeError(`unknown entry type ${type}`);
  const index = nums.get(1) ?? 0;
  if (index < 1) throw new ProtoDecodeError('entry without an index');
  return { index: index as LogIndex, term: (nums.get(2) ?? 0) as Term, type, data: bytes.get(4) ?? empty };
}

function decodeSnapshotMeta(buf: Uint8Array): SnapshotMeta {
  const { nums, bytes } = fields(buf);
  const m = bytes.get(3);
  return { index: (nums.get(1) ?? 0) as LogIndex, term: (nums.get(2) ?? 0) as Term, membership: m === undefined ? { voters: [], learners: [] } : decodeMembership(m) };
}

/** Membership as protobuf (raft.proto Membership): also the blob the WAL keeps with a snapshot. */
export function encodeMembershipBlob(m: Membership): Uint8Array {
  return encodeMembership(m);
}

export function decodeMembership(buf: Uint8Array): Membership {
  const voters: NodeId[] = [];
  const learners: NodeId[] = [];
  const r = new ProtoReader(buf);
  while (!r.done()) {
    const f = r.next();
    if (f.field === 0) break;
    if (f.wire !== 2) continue;
    if (f.field === 1) voters.push(decodeString(f.value) as NodeId);
    else if (f.field === 2) learners.push(decodeString(f.value) as NodeId);
  }
  return { voters, learners };
}

function decodeHeartbeatItem(buf: Uint8Array): HeartbeatItem {
  const { nums, bytes } = fields(buf);
  return { group: str(bytes.get(1)) as GroupId, term: (nums.get(2) ?? 0) as Term, commit: (nums.get(3) ?? 0) as LogIndex, ctx: nums.get(4) ?? 0 };
}

function decodeHeartbeatResponseItem(buf: Uint8Array): HeartbeatResponseItem {
  const { nums, bytes } = fields(buf);
  return { group: str(bytes.get(1)) as GroupId, term: (nums.get(2) ?? 0) as Term, ctx: nums.get(3) ?? 0 };
}
