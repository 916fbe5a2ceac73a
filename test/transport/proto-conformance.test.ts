// The wire codecs against proto/*.proto as protobufjs reads the files: the hand-written ones (Frame,
// RpcEnvelope, RaftBatch, Membership) and our mapping onto the loaded one (GossipMessage). For
// random messages, what we encode protobufjs decodes to the same message, what protobufjs encodes
// (defaults left out, as proto3 encoders do) we decode back, fields we do not know (every wire
// type, in every nested message: a newer peer's) are skipped, and our bytes are protobufjs's.
// The files and the code cannot drift apart without one of these failing.

import fc from 'fast-check';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodeRaftBatch, decodeMembership, encodeMembershipBlob, encodeRaftBatch, type RaftBatchOut } from '../../src/cluster/raft-wire.js';
import { decodeEnvelope, encodeEnvelope } from '../../src/cluster/rpc.js';
import { groupId, logIndex, nodeId, term } from '../../src/lib/ids.js';
import { decodeGossip, encodeGossip } from '../../src/membership/gossip-codec.js';
import type { GossipMessage, MemberMeta, MemberUpdate } from '../../src/membership/index.js';
import type { Entry, GroupMessage, HeartbeatItem, HeartbeatResponseItem, Membership } from '../../src/raft/index.js';
import { decodeFrame, encodeFrame, type Frame, type Item } from '../../src/transport/frame.js';
import { withoutDefaults } from '../../src/transport/proto-schema.js';
import { loadProtoRoot } from './proto-codegen.js';

const root = loadProtoRoot();
const plainOptions: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true, objects: true, bytes: Array };

/** The same types, each message with unknown fields of every wire type a newer peer might add. */
const extended = loadProtoRoot();
const extra = new protobuf.Type('Extra').add(new protobuf.Field('a', 1, 'uint64')).add(new protobuf.Field('b', 2, 'string'));
extended.add(extra);
const unknownFields: ReadonlyArray<[string, number, string, boolean, unknown]> = [
  ['xVarint', 1900, 'uint64', false, 2 ** 40 + 3],
  ['xFixed32', 1901, 'fixed32', false, 0xdeadbeef],
  ['xFixed64', 1902, 'fixed64', false, 2 ** 50 + 1],
  ['xDouble', 1903, 'double', false, 1.5],
  ['xString', 1904, 'string', false, 'from a newer peer'],
  ['xBytes', 1905, 'bytes', false, [1, 2, 3]],
  ['xMessage', 1906, 'Extra', false, { a: 7, b: 'nested' }],
  ['xPacked', 1907, 'uint32', true, [1, 300, 70000]],
  ['xSigned', 1908, 'sint64', false, -5],
];
for (const type of allTypes(extended)) {
  if (type.name === 'Extra') continue;
  for (const [name, id, t, repeated] of unknownFields) type.add(new protobuf.Field(name, id, t, repeated ? 'repeated' : undefined));
}
extended.resolveAll();

function allTypes(ns: protobuf.NamespaceBase): protobuf.Type[] {
  const out: protobuf.Type[] = [];
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type) out.push(child);
    if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) out.push(...allTypes(child));
  }
  return out;
}

/** `obj` (a plain message of `type`) with the unknown fields set in it and in every nested message. */
function withUnknowns(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...obj };
  for (const [name, , , , value] of unknownFields) out[name] = value;
  for (const field of type.fieldsArray) {
    const sub = field.resolvedType;
    const v = obj[field.name];
    if (!(sub instanceof protobuf.Type) || v === undefined || v === null || field.map) continue;
    out[field.name] = field.repeated
      ? (v as Array<Record<string, unknown>>).map((x) => withUnknowns(sub, x))
      : withUnknowns(sub, v as Record<string, unknown>);
  }
  return out;
}

/** Plain data for comparison: bytes as number arrays, no null or undefined members. */
function canon(x: unknown): unknown {
  if (x instanceof Uint8Array) return Array.from(x);
  if (Array.isArray(x)) return x.map(canon);
  if (x !== null && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (v !== null && v !== undefined) out[k] = canon(v);
    return out;
  }
  return x;
}

interface Case<T> {
  readonly name: string;
  readonly arb: fc.Arbitrary<T>;
  readonly encode: (v: T) => Uint8Array;
  readonly decode: (b: Uint8Array) => unknown;
  /** The value as protobufjs's plain object (enum names, every field, defaults included). */
  readonly proto: (v: T) => Record<string, unknown>;
  /** What our decoder gives back for `v`. */
  readonly decoded: (v: T) => unknown;
}

/** Runs the four checks of the file header for one message type. */
function conforms<T>(c: Case<T>): void {
  describe(c.name, () => {
    const type = root.lookupType(c.name);
    const ext = extended.lookupType(c.name);
    it('our encoding decodes in protobufjs to the same message', () => {
      fc.assert(fc.property(c.arb, (v) => {
        expect(canon(type.toObject(type.decode(c.encode(v)), plainOptions))).toEqual(canon(c.proto(v)));
      }));
    });
    it('protobufjs\'s encoding (defaults left out) decodes in ours to the same message', () => {
      fc.assert(fc.property(c.arb, (v) => {
        const msg = type.fromObject(withoutDefaults(type, c.proto(v)));
        expect(type.verify(msg)).toBeNull();
        expect(canon(c.decode(type.encode(msg).finish()))).toEqual(canon(c.decoded(v)));
      }));
    });
    it('fields it does not know, of every wire type and in every nested message, are skipped', () => {
      fc.assert(fc.property(c.arb, (v) => {
        const bytes = ext.encode(ext.fromObject(withUnknowns(ext, withoutDefaults(ext, c.proto(v))))).finish();
        expect(canon(c.decode(bytes))).toEqual(canon(c.decoded(v)));
      }));
    });
    it('writes what protobufjs writes, byte for byte (fields in number order, defaults left out)', () => {
      fc.assert(fc.property(c.arb, (v) => {
        expect(Array.from(c.encode(v))).toEqual(Array.from(type.encode(type.fromObject(withoutDefaults(type, c.proto(v)))).finish()));
      }));
    });
  });
}

// ---- arbitraries ----

const u64 = fc.oneof(fc.constant(0), fc.nat({ max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const u32 = fc.oneof(fc.constant(0), fc.nat({ max: 0xffffffff }));
const text = fc.string({ unit: 'grapheme', maxLength: 12 });
const word = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_.'), minLength: 1, maxLength: 10 });
const bytes = fc.uint8Array({ maxLength: 24 });
const someBytes = fc.uint8Array({ minLength: 1, maxLength: 24 });
const enumName = (e: string, n: number): string => root.lookupEnum(e).valuesById[n]!;

// ---- transport Frame ----

const lanes = [1, 2, 3, 4, 5] as const;
type FrameValue = Omit<Frame, 'unknownLaneItems'>;
const frameArb: fc.Arbitrary<FrameValue> = fc.record({
  items: fc.array(fc.record({ lane: fc.constantFrom(...lanes), payload: bytes }), { maxLength: 4 }),
  auth: fc.option(someBytes, { nil: undefined }),
}) as fc.Arbitrary<FrameValue>;

conforms<FrameValue>({
  name: 'espresso.cluster.v1.Frame',
  arb: frameArb,
  encode: (f) => encodeFrame(f.items, f.auth),
  decode: decodeFrame,
  proto: (f) => ({ items: f.items.map((i: Item) => ({ lane: enumName('espresso.cluster.v1.Lane', i.lane), payload: i.payload })), auth: f.auth ?? new Uint8Array(0) }),
  decoded: (f) => ({ ...f, unknownLaneItems: 0 }),
});

// ---- gossip ----

const gossipKinds = ['ping', 'ack', 'ping-req', 'sync'] as const;
const statuses = ['alive', 'suspect', 'dead'] as const;
const metaArb: fc.Arbitrary<MemberMeta> = fc.record({
  amqpAddress: text, clusterAddress: text, load: u32, version: text,
  // Group ids as keys (never integer-like, which JavaScript objects would put first whatever the order).
  leaders: fc.dictionary(word.map((w) => `g-${w}`), word, { maxKeys: 3 }),
});
const updateArb: fc.Arbitrary<MemberUpdate> = fc.record({
  nodeId: word.map(nodeId), status: fc.constantFrom(...statuses), incarnation: u64, meta: fc.option(metaArb, { nil: undefined }),
});
const gossipArb: fc.Arbitrary<GossipMessage> = fc.record({
  kind: fc.constantFrom(...gossipKinds), seq: u32, from: word.map(nodeId), fromIncarnation: u64,
  target: fc.option(word.map(nodeId), { nil: undefined }), updates: fc.array(updateArb, { maxLength: 3 }),
});
const upper = (s: string): string => s.toUpperCase().replace('-', '_');
// Map entries go out sorted by key (ours), so give protobufjs the same order (map order carries no meaning).
const sortedLeaders = (l: Readonly<Record<string, string>>): Record<string, string> => Object.fromEntries(Object.entries(l).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

conforms<GossipMessage>({
  name: 'espresso.cluster.v1.GossipMessage',
  arb: gossipArb,
  encode: encodeGossip,
  decode: decodeGossip,
  proto: (m) => ({
    kind: `KIND_${upper(m.kind)}`, seq: m.seq, from: m.from, fromIncarnation: m.fromIncarnation, target: m.target ?? '',
    updates: m.updates.map((u) => ({
      nodeId: u.nodeId, status: `MEMBER_STATUS_${upper(u.status)}`, incarnation: u.incarnation,
      ...(u.meta !== undefined ? { meta: { ...u.meta, leaders: sortedLeaders(u.meta.leaders) } } : {}),
    })),
  }),
  decoded: (m) => m,
});

// ---- rpc envelope ----

type EnvelopeValue = Parameters<typeof encodeEnvelope>[0];
const envelopeArb: fc.Arbitrary<EnvelopeValue> = fc.record({
  kind: fc.constantFrom<EnvelopeValue['kind']>(1, 2, 3), id: fc.oneof(fc.constant(0), fc.nat({ max: 2 ** 48 })), method: text, payload: bytes,
  errorCode: text, errorMessage: text, errorDetails: text,
});
const envelopeKinds = ['', 'KIND_REQUEST', 'KIND_RESPONSE', 'KIND_NOTIFY'];

conforms<EnvelopeValue>({
  name: 'espresso.cluster.v1.RpcEnvelope',
  arb: envelopeArb,
  encode: encodeEnvelope,
  decode: decodeEnvelope,
  proto: (e) => ({ ...e, kind: envelopeKinds[e.kind] }),
  decoded: (e) => e,
});

// ---- raft ----

const ids = { from: nodeId('peer-a'), to: nodeId('peer-b') };
const membershipArb: fc.Arbitrary<Membership> = fc.record({ voters: fc.array(word.map(nodeId), { maxLength: 3 }), learners: fc.array(word.map(nodeId), { maxLength: 2 }) });
const entryArb: fc.Arbitrary<Entry> = fc.record({
  index: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }).map(logIndex), term: u64.map(term), type: fc.constantFrom(0 as const, 1 as const), data: bytes,
});
const base = { group: word.map(groupId), ...{ from: fc.constant(ids.from), to: fc.constant(ids.to) }, term: u64.map(term) };
const groupMessageArb: fc.Arbitrary<GroupMessage> = fc.oneof(
  fc.record({ ...base, type: fc.constant('append' as const), prevIndex: u64.map(logIndex), prevTerm: u64.map(term), entries: fc.array(entryArb, { maxLength: 3 }), commit: u64.map(logIndex) }),
  fc.record({ ...base, type: fc.constant('append-response' as const), reject: fc.boolean(), index: u64.map(logIndex), hintIndex: u64.map(logIndex), hintTerm: u64.map(term) }),
  fc.record({ ...base, type: fc.constant('vote' as const), pre: fc.boolean(), lastIndex: u64.map(logIndex), lastTerm: u64.map(term), transfer: fc.boolean() }),
  fc.record({ ...base, type: fc.constant('vote-response' as const), pre: fc.boolean(), reject: fc.boolean() }),
  fc.record({
    ...base, type: fc.constant('snapshot' as const), meta: fc.record({ index: u64.map(logIndex), term: u64.map(term), membership: membershipArb }),
    offset: u64, data: bytes, done: fc.boolean(),
  }),
  fc.record({ ...base, type: fc.constant('snapshot-response' as const), index: u64.map(logIndex), nextOffset: u64 }),
  fc.record({ ...base, type: fc.constant('timeout-now' as const) }),
);
const heartbeatArb: fc.Arbitrary<HeartbeatItem> = fc.record({ group: word.map(groupId), term: u64.map(term), commit: u64.map(logIndex), ctx: u64 });
const heartbeatResponseArb: fc.Arbitrary<HeartbeatResponseItem> = fc.record({ group: word.map(groupId), term: u64.map(term), ctx: u64 });
const batchArb: fc.Arbitrary<RaftBatchOut> = fc.record({
  messages: fc.array(groupMessageArb, { maxLength: 4 }), heartbeats: fc.array(heartbeatArb, { maxLength: 3 }), heartbeatResponses: fc.array(heartbeatResponseArb, { maxLength: 3 }),
});

function bodyOf(m: GroupMessage): Record<string, unknown> {
  switch (m.type) {
    case 'append': return { append: { prevIndex: m.prevIndex, prevTerm: m.prevTerm, commit: m.commit, entries: m.entries.map((e) => ({ ...e, type: enumName('espresso.raft.v1.EntryType', e.type) })) } };
    case 'append-response': return { appendResponse: { reject: m.reject, index: m.index, hintIndex: m.hintIndex, hintTerm: m.hintTerm } };
    case 'vote': return { vote: { pre: m.pre, lastIndex: m.lastIndex, lastTerm: m.lastTerm, transfer: m.transfer } };
    case 'vote-response': return { voteResponse: { pre: m.pre, reject: m.reject } };
    case 'snapshot': return { snapshot: { meta: m.meta, offset: m.offset, data: m.data, done: m.done } };
    case 'snapshot-response': return { snapshotResponse: { index: m.index, nextOffset: m.nextOffset } };
    case 'timeout-now': return { timeoutNow: {} };
  }
}

conforms<RaftBatchOut>({
  name: 'espresso.raft.v1.RaftBatch',
  arb: batchArb,
  encode: encodeRaftBatch,
  decode: (b) => decodeRaftBatch(b, ids.from, ids.to),
  proto: (b) => ({
    messages: b.messages.map((m) => ({ group: m.group, term: m.term, ...bodyOf(m) })),
    heartbeats: b.heartbeats, heartbeatResponses: b.heartbeatResponses,
  }),
  // The core's messages, heartbeats of the batch as one message of each kind after the others.
  decoded: (b) => [
    ...b.messages,
    ...(b.heartbeats.length > 0 ? [{ type: 'heartbeat', ...ids, items: b.heartbeats }] : []),
    ...(b.heartbeatResponses.length > 0 ? [{ type: 'heartbeat-response', ...ids, items: b.heartbeatResponses }] : []),
  ],
});

conforms<Membership>({
  name: 'espresso.raft.v1.Membership',
  arb: membershipArb,
  encode: encodeMembershipBlob,
  decode: decodeMembership,
  proto: (m) => ({ ...m }),
  decoded: (m) => m,
});
