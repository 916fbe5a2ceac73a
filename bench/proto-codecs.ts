// What the hand-written wire codecs save over protobufjs loading proto/*.proto: nanoseconds to
// encode and to decode one message of each hot-path kind, ours against protobufjs's (from and to
// the same plain objects our code passes around: fromObject + encode, decode + toObject, as a
// loaded codec would be used), in alternating rounds in one process. The custom binary mesh
// payload (q.call, an enqueue) is measured against protobufjs on a message of the same fields.
// Not a broker benchmark: there is no RabbitMQ counterpart to a codec of our own protocol.
//
//   npm run build && node dist/bench/proto-codecs.js [--rounds 15] [--ms 200]
//   (tsx works too, but its module wrappers add to the small numbers)

import protobuf from 'protobufjs';
import { readBasicProperties } from '../src/amqp/generated-methods.js';
import { Reader } from '../src/amqp/wire.js';
import { decodeCall, encodeCall, type QueueCall } from '../src/cluster/queue-wire.js';
import { decodeRaftBatch, encodeRaftBatch, type RaftBatchOut } from '../src/cluster/raft-wire.js';
import { decodeEnvelope, encodeEnvelope } from '../src/cluster/rpc.js';
import { groupId, logIndex, nodeId, term } from '../src/lib/ids.js';
import { decodeGossip, encodeGossip } from '../src/membership/gossip-codec.js';
import type { GossipMessage } from '../src/membership/index.js';
import { decodeFrame, encodeFrame, type Item } from '../src/transport/frame.js';
import { protoType } from '../src/transport/proto-schema.js';

const args = process.argv.slice(2);
const flag = (name: string, def: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const rounds = flag('--rounds', 15);
const msPerRound = flag('--ms', 200);
const plain: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true, objects: true };

/** ns per call of `f`, run for about `ms`, in batches of `batch` calls. */
function timed(f: () => unknown, batch: number, ms: number): number {
  let ops = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < ms * 1e6) {
    for (let i = 0; i < batch; i++) f();
    ops += batch;
    elapsed = Number(process.hrtime.bigint() - start);
  }
  return elapsed / ops;
}

/** Calls per ~1 ms of `f` (after warming it up), so that the clock is read rarely. */
function batchOf(f: () => unknown): number {
  const start = process.hrtime.bigint();
  let n = 0;
  while (Number(process.hrtime.bigint() - start) < 50e6) { f(); n++; }
  return Math.max(1, Math.round(n / 50));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * `a` and `b` timed in alternation, round after round, so both see the same machine (it is shared):
 * the median ns per call of each, and the median of the per-round ratios b / a.
 */
function pair(a: () => unknown, b: () => unknown): { a: number; b: number; ratio: number } {
  const [ba, bb] = [batchOf(a), batchOf(b)];
  const as: number[] = [];
  const bs: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const x = timed(a, ba, msPerRound / 2);
    const y = timed(b, bb, msPerRound / 2);
    as.push(x);
    bs.push(y);
    ratios.push(y / x);
  }
  return { a: median(as), b: median(bs), ratio: median(ratios) };
}

interface Row { name: string; bytes: number; enc: { a: number; b: number; ratio: number }; dec: { a: number; b: number; ratio: number } }

/** `after`: what our decoder does beyond reading fields, done to protobufjs's result too (same work). */
function measure<T>(name: string, value: T, ours: { enc: (v: T) => Uint8Array; dec: (b: Uint8Array) => unknown }, type: protobuf.Type, toProto: (v: T) => Record<string, unknown>,
  after: (decoded: Record<string, unknown>) => unknown = (d) => d): Row {
  const bytes = ours.enc(value);
  const pbBytes = type.encode(type.fromObject(toProto(value))).finish();
  const sink: unknown[] = [];
  return {
    name,
    bytes: bytes.length,
    enc: pair(() => sink[0] = ours.enc(value), () => sink[0] = type.encode(type.fromObject(toProto(value))).finish()),
    dec: pair(() => sink[0] = ours.dec(bytes), () => sink[0] = after(type.toObject(type.decode(pbBytes), plain))),
  };
}

const kib = new Uint8Array(1024).fill(7);
const from = nodeId('n1');
const to = nodeId('n2');

// A busy queue's replication: one append of 16 entries of 1 KiB.
const append: RaftBatchOut = {
  messages: [{
    type: 'append', group: groupId('q/%2F/orders'), from, to, term: term(7), prevIndex: logIndex(1000), prevTerm: term(7), commit: logIndex(998),
    entries: Array.from({ length: 16 }, (_, i) => ({ index: logIndex(1001 + i), term: term(7), type: 0 as const, data: kib.slice() })),
  }],
  heartbeats: [], heartbeatResponses: [],
};
// An idle cluster: one coalesced heartbeat for 100 groups.
const heartbeats: RaftBatchOut = {
  messages: [], heartbeatResponses: [],
  heartbeats: Array.from({ length: 100 }, (_, i) => ({ group: groupId(`q/%2F/queue-${i}`), term: term(3), commit: logIndex(5000 + i), ctx: 0 })),
};
const entryType = ['ENTRY_TYPE_NORMAL', 'ENTRY_TYPE_CONF_CHANGE'];
const raftProto = (b: RaftBatchOut): Record<string, unknown> => ({
  messages: b.messages.map((m) => m.type === 'append'
    ? { group: m.group, term: m.term, append: { prevIndex: m.prevIndex, prevTerm: m.prevTerm, commit: m.commit, entries: m.entries.map((e) => ({ ...e, type: entryType[e.type] })) } }
    : { group: m.group, term: m.term }),
  heartbeats: b.heartbeats, heartbeatResponses: b.heartbeatResponses,
});

const items: Item[] = Array.from({ length: 8 }, () => ({ lane: 1, payload: kib }));
const laneNames = ['', 'LANE_RAFT', 'LANE_FORWARD', 'LANE_DELIVERY', 'LANE_GOSSIP', 'LANE_CONTROL'];

const envelope = { kind: 1 as const, id: 123456, method: 'q.call', payload: kib, errorCode: '', errorMessage: '', errorDetails: '' };

const gossip: GossipMessage = {
  kind: 'ping', seq: 4711, from, fromIncarnation: 3, target: undefined,
  updates: Array.from({ length: 4 }, (_, i) => ({
    nodeId: nodeId(`n${i + 2}`), status: 'alive' as const, incarnation: 2,
    meta: { amqpAddress: `10.0.0.${i + 2}:5672`, clusterAddress: `10.0.0.${i + 2}:25672`, load: 12, version: '0.1.0', leaders: { 'q/%2F/orders': 'n2', meta: 'n1' } },
  })),
};

// The mesh's q.call is custom binary; its protobuf twin here has the same fields.
const call: QueueCall = {
  vhost: '/', queue: 'orders', incarnation: 'n1#8f3a2c',
  command: { type: 'enqueue', priority: 0, ttlMs: null, message: { exchange: '', routingKey: 'orders', properties: { deliveryMode: 2 }, rawProperties: Buffer.from([0x10, 0, 2]), body: Buffer.from(kib) } },
};
const callType = new protobuf.Root()
  .add(new protobuf.Type('Enqueue')
    .add(new protobuf.Field('priority', 1, 'uint32')).add(new protobuf.Field('ttlMs', 2, 'int64'))
    .add(new protobuf.Field('exchange', 3, 'string')).add(new protobuf.Field('routingKey', 4, 'string'))
    .add(new protobuf.Field('properties', 5, 'bytes')).add(new protobuf.Field('body', 6, 'bytes')))
  .add(new protobuf.Type('QueueCall')
    .add(new protobuf.Field('vhost', 1, 'string')).add(new protobuf.Field('queue', 2, 'string'))
    .add(new protobuf.Field('incarnation', 3, 'string')).add(new protobuf.Field('enqueue', 4, 'Enqueue')))
  .lookupType('QueueCall');
const callProto = (c: QueueCall): Record<string, unknown> => {
  const cmd = c.command;
  if (cmd.type !== 'enqueue') throw new Error('an enqueue');
  return {
    vhost: c.vhost, queue: c.queue, incarnation: c.incarnation,
    enqueue: { priority: cmd.priority, ttlMs: cmd.ttlMs ?? -1, exchange: cmd.message.exchange, routingKey: cmd.message.routingKey, properties: cmd.message.rawProperties, body: cmd.message.body },
  };
};

const rows: Row[] = [
  measure('RaftBatch: append, 16 entries of 1 KiB', append, { enc: encodeRaftBatch, dec: (b) => decodeRaftBatch(b, from, to) }, protoType('espresso.raft.v1.RaftBatch'), raftProto),
  measure('RaftBatch: heartbeat of 100 groups', heartbeats, { enc: encodeRaftBatch, dec: (b) => decodeRaftBatch(b, from, to) }, protoType('espresso.raft.v1.RaftBatch'), raftProto),
  measure('Frame: 8 items of 1 KiB', items, { enc: (i) => encodeFrame(i), dec: decodeFrame }, protoType('espresso.cluster.v1.Frame'),
    (i) => ({ items: i.map((x) => ({ lane: laneNames[x.lane], payload: x.payload })) })),
  measure('RpcEnvelope: request, 1 KiB payload', envelope, { enc: encodeEnvelope, dec: decodeEnvelope }, protoType('espresso.cluster.v1.RpcEnvelope'),
    (e) => ({ ...e, kind: 'KIND_REQUEST' })),
  // Gossip uses the loaded codec now (measured hand-written before: no faster, see README): this row
  // is our mapping onto it against protobufjs alone.
  measure('GossipMessage: ping, 4 updates with meta (loaded codec)', gossip, { enc: encodeGossip, dec: decodeGossip }, protoType('espresso.cluster.v1.GossipMessage'),
    (m) => ({ ...m, kind: 'KIND_PING', target: '', updates: m.updates.map((u) => ({ ...u, status: 'MEMBER_STATUS_ALIVE' })) })),
  // Ours also parses the AMQP properties and copies the body out of the receive buffer: so does the twin.
  measure('q.call enqueue of 1 KiB (custom binary; protobuf twin)', call, { enc: encodeCall, dec: decodeCall }, callType, callProto, (d) => {
    const e = d['enqueue'] as { properties: Uint8Array; body: Uint8Array };
    const r = new Reader(Buffer.from(e.properties.buffer, e.properties.byteOffset, e.properties.length), 0, e.properties.length);
    return { ...d, enqueue: { ...e, parsed: readBasicProperties(r.short(), r), body: Buffer.from(e.body) } };
  }),
];

const f = (n: number): string => n.toFixed(0);
console.log(`node ${process.version}, ${rounds} rounds of ${msPerRound} ms, ours and protobufjs in alternation; ns per message (lower is better), x = protobufjs / ours (above 1: ours is faster)`);
console.log('| message | bytes | encode: ours | encode: protobufjs | x | decode: ours | decode: protobufjs | x |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.name} | ${r.bytes} | ${f(r.enc.a)} | ${f(r.enc.b)} | ${r.enc.ratio.toFixed(1)} | ${f(r.dec.a)} | ${f(r.dec.b)} | ${r.dec.ratio.toFixed(1)} |`);
}
