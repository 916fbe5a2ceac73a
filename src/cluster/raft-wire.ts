// Encoder and decoder for proto/raft.proto: the Raft messages one node sends another in one Ready
// cycle travel as one RaftBatch per peer on the transport's raft lane. `from`/`to` are not on the
// wire (the transport authenticated the sender; the receiver is this node).

import { assert } from '../lib/assert.js';
import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';
import { EntryType } from '../raft/index.js';
import type {
  AppendMessage, Entry, GroupMessage, HeartbeatItem, HeartbeatResponseItem, Membership, Message, SnapshotMeta,
} from '../raft/index.js';
import { bytesFieldSize, ProtoDecodeError, ProtoReader, ProtoWriter, decodeString, stringFieldSize, uintFieldSize } from '../transport/index.js';

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

/** The oneof body of a GroupMessage other than an append: [field number, encoded body]. */
function encodeBody(m: Exclude<GroupMessage, AppendMessage>): [number, Uint8Array] {
  switch (m.type) {
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

/** A GroupMessage with its sizes worked out: an append's entries go straight into the batch. */
interface Planned {
  readonly m: GroupMessage;
  readonly field: number;
  /** The body of anything but an append, encoded. */
  readonly body: Uint8Array | null;
  readonly bodySize: number;
  readonly size: number;
}

function plan(m: GroupMessage): Planned {
  let field = 3;
  let body: Uint8Array | null = null;
  let bodySize: number;
  if (m.type === 'append') {
    bodySize = uintFieldSize(1, m.prevIndex) + uintFieldSize(2, m.prevTerm) + uintFieldSize(4, m.commit);
    for (const e of m.entries) bodySize += bytesFieldSize(3, encodeEntry(e).length);
  } else {
    [field, body] = encodeBody(m);
    bodySize = body.length;
  }
  return { m, field, body, bodySize, size: stringFieldSize(1, m.group) + uintFieldSize(2, m.term) + bytesFieldSize(field, bodySize) };
}

function writeGroupMessage(out: ProtoWriter, p: Planned): void {
  const m = p.m;
  out.header(1, p.size).string(1, m.group).uint(2, m.term).header(p.field, p.bodySize);
  if (p.body !== null) {
    out.raw(p.body);
  } else if (m.type === 'append') {
    out.uint(1, m.prevIndex).uint(2, m.prevTerm);
    for (const e of m.entries) out.bytes(3, encodeEntry(e));
    out.uint(4, m.commit);
  }
}

const heartbeatSize = (h: HeartbeatItem): number => stringFieldSize(1, h.group) + uintFieldSize(2, h.term) + uintFieldSize(3, h.commit) + uintFieldSize(4, h.ctx);
const heartbeatResponseSize = (h: HeartbeatResponseItem): number => stringFieldSize(1, h.group) + uintFieldSize(2, h.term) + uintFieldSize(3, h.ctx);

/** Encodes one RaftBatch: sizes first, then every message written once into one exactly sized buffer. */
export function encodeRaftBatch(b: RaftBatchOut): Uint8Array {
  const planned = b.messages.map(plan);
  let size = 0;
  for (const p of planned) size += bytesFieldSize(1, p.size);
  for (const h of b.heartbeats) size += bytesFieldSize(2, heartbeatSize(h));
  for (const h of b.heartbeatResponses) size += bytesFieldSize(3, heartbeatResponseSize(h));
  const out = new ProtoWriter(Math.max(1, size));
  for (const p of planned) writeGroupMessage(out, p);
  for (const h of b.heartbeats) {
    out.header(2, heartbeatSize(h)).string(1, h.group).uint(2, h.term).uint(3, h.commit).uint(4, h.ctx);
  }
  for (const h of b.heartbeatResponses) {
    out.header(3, heartbeatResponseSize(h)).string(1, h.group).uint(2, h.term).uint(3, h.ctx);
  }
  const bytes = out.finish();
  assert(bytes.length === size, 'raft batch size worked out and written must agree');
  return bytes;
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

/**
 * Reads one message: varint fields 1..4 into `nums` (proto3: the last of a field wins), each
 * bytes field to `onBytes`; fields of other numbers and wire types are a newer peer's, skipped.
 * No map per message: thousands of heartbeat items pass here every second.
 */
function readFields(buf: Uint8Array, nums: number[], onBytes?: (field: number, value: Uint8Array) => void): void {
  const r = new ProtoReader(buf);
  while (!r.done()) {
    const f = r.next();
    if (f.field === 0) break; // end reached after a skipped fixed field
    if (f.wire === 0) {
      if (f.field <= 4) nums[f.field] = f.value;
    } else if (onBytes !== undefined) {
      onBytes(f.field, f.value);
    }
  }
}

/** The message, or undefined when its body is of a kind this version does not know (a newer peer's). */
function decodeGroupMessage(buf: Uint8Array, from: NodeId, to: NodeId): GroupMessage | undefined {
  const nums = [0, 0, 0, 0, 0];
  let group = '';
  let bodyField = 0;
  let body: Uint8Array | undefined;
  readFields(buf, nums, (field, value) => {
    if (field === 1) group = decodeString(value);
    else if (field >= 3 && field <= 9) [bodyField, body] = [field, value]; // the oneof: the last one wins
  });
  if (group.length === 0) throw new ProtoDecodeError('group message without a group');
  if (body === undefined) return undefined;
  return decodeBody(bodyField, body, { group: group as GroupId, from, to, term: nums[2]! as Term });
}

type Base = { group: GroupId; from: NodeId; to: NodeId; term: Term };

function decodeBody(field: number, body: Uint8Array, base: Base): GroupMessage {
  const n = [0, 0, 0, 0, 0];
  const entries: Entry[] = [];
  let meta: Uint8Array | undefined;
  let data: Uint8Array = empty;
  readFields(body, n, field === 3 ? (f, v) => { if (f === 3) entries.push(decodeEntry(v)); }
    : field === 7 ? (f, v) => { if (f === 1) meta = v; else if (f === 3) data = v; } : undefined);
  const b = (k: number): boolean => n[k] !== 0;
  switch (field) {
    case 3:
      return { ...base, type: 'append', prevIndex: n[1]! as LogIndex, prevTerm: n[2]! as Term, entries, commit: n[4]! as LogIndex };
    case 4:
      return { ...base, type: 'append-response', reject: b(1), index: n[2]! as LogIndex, hintIndex: n[3]! as LogIndex, hintTerm: n[4]! as Term };
    case 5:
      return { ...base, type: 'vote', pre: b(1), lastIndex: n[2]! as LogIndex, lastTerm: n[3]! as Term, transfer: b(4) };
    case 6:
      return { ...base, type: 'vote-response', pre: b(1), reject: b(2) };
    case 7:
      if (meta === undefined) throw new ProtoDecodeError('snapshot without meta');
      return { ...base, type: 'snapshot', meta: decodeSnapshotMeta(meta), offset: n[2]!, data, done: b(4) };
    case 8:
      return { ...base, type: 'snapshot-response', index: n[1]! as LogIndex, nextOffset: n[2]! };
    default:
      assert(field === 9, 'body field');
      return { ...base, type: 'timeout-now' };
  }
}

function decodeEntry(buf: Uint8Array): Entry {
  const n = [0, 0, 0, 0, 0];
  let data: Uint8Array = empty;
  readFields(buf, n, (f, v) => { if (f === 4) data = v; });
  const type = n[3]!;
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new ProtoDecodeError(`unknown entry type ${type}`);
  if (n[1]! < 1) throw new ProtoDecodeError('entry without an index');
  return { index: n[1]! as LogIndex, term: n[2]! as Term, type, data };
}

function decodeSnapshotMeta(buf: Uint8Array): SnapshotMeta {
  const n = [0, 0, 0, 0, 0];
  let m: Uint8Array | undefined;
  readFields(buf, n, (f, v) => { if (f === 3) m = v; });
  return { index: n[1]! as LogIndex, term: n[2]! as Term, membership: m === undefined ? { voters: [], learners: [] } : decodeMembership(m) };
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
  const n = [0, 0, 0, 0, 0];
  let group = '';
  readFields(buf, n, (f, v) => { if (f === 1) group = decodeString(v); });
  return { group: group as GroupId, term: n[2]! as Term, commit: n[3]! as LogIndex, ctx: n[4]! };
}

function decodeHeartbeatResponseItem(buf: Uint8Array): HeartbeatResponseItem {
  const n = [0, 0, 0, 0, 0];
  let group = '';
  readFields(buf, n, (f, v) => { if (f === 1) group = decodeString(v); });
  return { group: group as GroupId, term: n[2]! as Term, ctx: n[3]! };
}
