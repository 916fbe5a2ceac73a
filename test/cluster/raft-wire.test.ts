// The raft.proto codec: every message kind survives a round trip field for field, one batch
// carries many groups and both heartbeat directions, and malformed bytes are a decode error.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMembership, decodeRaftBatch, encodeMembershipBlob, encodeRaftBatch } from '../../src/cluster/raft-wire.js';
import type { GroupId, LogIndex, NodeId, Term } from '../../src/lib/ids.js';
import { groupId, logIndex, nodeId, term } from '../../src/lib/ids.js';
import { EntryType, type Entry, type GroupMessage, type Message } from '../../src/raft/index.js';
import { ProtoDecodeError, ProtoWriter } from '../../src/transport/index.js';

const a = nodeId('a');
const b = nodeId('b');
const base = (g: string, t: number): { group: GroupId; from: NodeId; to: NodeId; term: Term } => ({ group: groupId(g), from: a, to: b, term: term(t) });
const entry = (i: number, t: number, data: string, type: EntryType = EntryType.Normal): Entry =>
  ({ index: logIndex(i), term: term(t), type, data: new TextEncoder().encode(data) });

function roundTrip(batch: { messages: GroupMessage[]; heartbeats?: []; heartbeatResponses?: [] }): Message[] {
  return decodeRaftBatch(encodeRaftBatch({ heartbeats: [], heartbeatResponses: [], ...batch }), a, b);
}

/** Compares with byte arrays as plain arrays (decoded bytes are views of the payload). */
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v)));

describe('raft wire codec', () => {
  it('round-trips every group message kind, zero fields and all', () => {
    const messages: GroupMessage[] = [
      { ...base('q1', 3), type: 'append', prevIndex: logIndex(7), prevTerm: term(2), commit: logIndex(6), entries: [entry(8, 3, 'hello'), entry(9, 3, ''), entry(10, 3, 'cc', EntryType.ConfChange)] },
      { ...base('q1', 0), type: 'append', prevIndex: logIndex(0), prevTerm: term(0), commit: logIndex(0), entries: [] },
      { ...base('q2', 4), type: 'append-response', reject: true, index: logIndex(9), hintIndex: logIndex(5), hintTerm: term(1) },
      { ...base('q2', 4), type: 'append-response', reject: false, index: logIndex(0), hintIndex: logIndex(0), hintTerm: term(0) },
      { ...base('q3', 5), type: 'vote', pre: true, lastIndex: logIndex(2 ** 53 - 1), lastTerm: term(4), transfer: true },
      { ...base('q3', 5), type: 'vote-response', pre: false, reject: true },
      { ...base('q4', 6), type: 'snapshot', meta: { index: logIndex(100), term: term(5), membership: { voters: [a, b], learners: [nodeId('c')] } }, offset: 4096, data: new Uint8Array([1, 2, 3]), done: true },
      { ...base('q4', 6), type: 'snapshot-response', index: logIndex(100), nextOffset: 4099 },
      { ...base('q5', 7), type: 'timeout-now' },
    ];
    expect(plain(roundTrip({ messages }))).toEqual(plain(messages));
  });

  it('carries the heartbeats of many groups in one batch, as one message per direction', () => {
    const payload = encodeRaftBatch({
      messages: [],
      heartbeats: [{ group: groupId('x'), term: term(2), commit: logIndex(9), ctx: 0 }, { group: groupId('y'), term: term(1), commit: logIndex(0), ctx: 5 }],
      heartbeatResponses: [{ group: groupId('z'), term: term(3), ctx: 2 }],
    });
    expect(decodeRaftBatch(payload, a, b)).toEqual([
      { type: 'heartbeat', from: a, to: b, items: [{ group: 'x', term: 2, commit: 9, ctx: 0 }, { group: 'y', term: 1, commit: 0, ctx: 5 }] },
      { type: 'heartbeat-response', from: a, to: b, items: [{ group: 'z', term: 3, ctx: 2 }] },
    ]);
  });

  it('encodes an entry shared by two appends identically (encoded once, reused)', () => {
    const e = entry(1, 1, 'shared');
    const m = (to: NodeId): GroupMessage => ({ ...base('q', 1), to, type: 'append', prevIndex: logIndex(0), prevTerm: term(0), commit: logIndex(0), entries: [e] });
    const x = encodeRaftBatch({ messages: [m(b)], heartbeats: [], heartbeatResponses: [] });
    const y = encodeRaftBatch({ messages: [m(nodeId('c'))], heartbeats: [], heartbeatResponses: [] });
    expect([...x]).toEqual([...y]);
  });

  it('round-trips arbitrary appends', () => {
    fc.assert(fc.property(
      fc.string({ minLength: 1, maxLength: 20 }), fc.nat(), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 40 })), { maxLength: 8 }),
      (g, prev, commit, es) => {
        const m: GroupMessage = {
          ...base(g, 9), type: 'append', prevIndex: prev as LogIndex, prevTerm: term(1), commit: commit as LogIndex,
          entries: es.map(([t, data], i) => ({ index: logIndex(prev + 1 + i), term: term(t), type: EntryType.Normal, data })),
        };
        expect(plain(roundTrip({ messages: [m] }))).toEqual(plain([m]));
      },
    ), { numRuns: 200 });
  });

  it('the membership blob round-trips', () => {
    const m = { voters: [a, b], learners: [nodeId('c')] };
    expect(decodeMembership(encodeMembershipBlob(m))).toEqual(m);
  });

  it('rejects truncated and malformed batches with a decode error', () => {
    const payload = encodeRaftBatch({ messages: [{ ...base('q1', 3), type: 'append', prevIndex: logIndex(1), prevTerm: term(1), commit: logIndex(1), entries: [entry(2, 3, 'abcdef')] }], heartbeats: [], heartbeatResponses: [] });
    for (let cut = 1; cut < payload.length; cut++) {
      expect(() => decodeRaftBatch(payload.subarray(0, cut), a, b)).toThrow(ProtoDecodeError);
    }
    // A group message without a group.
    expect(() => decodeRaftBatch(new Uint8Array([0x0a, 0x02, 0x4a, 0x00]), a, b)).toThrow(ProtoDecodeError);
  });

  // The body is a oneof whose members only grow at the end: a kind a newer peer added reads as no
  // body at all, and must not cost the rest of the batch (every group's heartbeats included).
  it('skips a group message of a kind it does not know, keeping the rest of the batch', () => {
    const known = encodeRaftBatch({ messages: [{ ...base('q1', 3), type: 'timeout-now' }], heartbeats: [{ group: groupId('q2'), term: term(4), commit: logIndex(9), ctx: 0 }], heartbeatResponses: [] });
    const newer = new ProtoWriter().bytes(1, new ProtoWriter().string(1, 'q3').uint(2, 5).bytes(10, new Uint8Array([8, 1])).finish()).finish();
    const out = decodeRaftBatch(new Uint8Array([...newer, ...known]), a, b);
    expect(out.map((m) => m.type)).toEqual(['timeout-now', 'heartbeat']);
    expect(decodeRaftBatch(new Uint8Array([0x0a, 0x03, 0x0a, 0x01, 0x71]), a, b)).toEqual([]);
  });
});
