// Gossip messages survive the wire exactly, and garbage is refused rather than misread.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nodeId } from '../../src/lib/ids.js';
import { decodeGossip, encodeGossip, type GossipMessage, type MemberUpdate } from '../../src/membership/index.js';
import { ProtoDecodeError, ProtoWriter } from '../../src/transport/index.js';

const id = fc.stringMatching(/^[a-z0-9-]{1,12}$/).map(nodeId);
const meta = fc.record({
  amqpAddress: fc.string({ maxLength: 20 }), clusterAddress: fc.string({ maxLength: 20 }),
  load: fc.nat(), version: fc.string({ maxLength: 10 }),
  leaders: fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.string({ maxLength: 10 }), { maxKeys: 5 }),
});
const update: fc.Arbitrary<MemberUpdate> = fc.record({
  nodeId: id, status: fc.constantFrom('alive' as const, 'suspect' as const, 'dead' as const),
  incarnation: fc.nat(), meta: fc.option(meta, { nil: undefined }),
});
const message: fc.Arbitrary<GossipMessage> = fc.record({
  kind: fc.constantFrom('ping' as const, 'ack' as const, 'ping-req' as const, 'sync' as const),
  seq: fc.nat(), from: id, fromIncarnation: fc.nat(), target: fc.option(id, { nil: undefined }),
  updates: fc.array(update, { maxLength: 8 }),
});

describe('gossip codec', () => {
  it('round-trips every message', () => {
    fc.assert(fc.property(message, (m) => {
      expect(decodeGossip(encodeGossip(m))).toEqual(m);
    }));
  });

  it('keeps a queue group named __proto__ as a leader entry both ways (fast-check drew it once)', () => {
    const leaders: Record<string, string> = {};
    Object.defineProperty(leaders, '__proto__', { value: 'n1', enumerable: true, writable: true, configurable: true });
    leaders['q'] = 'n2';
    const m: GossipMessage = {
      kind: 'ping', seq: 1, from: nodeId('a'), fromIncarnation: 0, target: undefined,
      updates: [{ nodeId: nodeId('a'), status: 'alive', incarnation: 0, meta: { amqpAddress: 'x', clusterAddress: 'y', load: 0, version: 'v', leaders } }],
    };
    const back = decodeGossip(encodeGossip(m));
    expect(Object.entries(back.updates[0]!.meta!.leaders).sort()).toEqual([['__proto__', 'n1'], ['q', 'n2']]);
  });

  it('refuses a message without a sender or kind, and truncated input', () => {
    expect(() => decodeGossip(new Uint8Array([0x10, 0x05]))).toThrow(ProtoDecodeError);
    const good = encodeGossip({ kind: 'ping', seq: 3, from: nodeId('n1'), fromIncarnation: 2, target: undefined, updates: [] });
    expect(() => decodeGossip(good.subarray(0, good.length - 1))).toThrow(ProtoDecodeError);
  });

  // MemberStatus values only grow at the end: an update with a status a newer peer added is left
  // out, and the message's other updates still count.
  it('skips an update whose status it does not know, keeping the others', () => {
    const known: MemberUpdate = { nodeId: nodeId('n2'), status: 'alive', incarnation: 4, meta: undefined };
    const good = encodeGossip({ kind: 'ack', seq: 3, from: nodeId('n1'), fromIncarnation: 2, target: undefined, updates: [known] });
    const newer = new ProtoWriter().bytes(6, new ProtoWriter().string(1, 'n3').uint(2, 9).uint(3, 1).finish()).finish();
    expect(decodeGossip(new Uint8Array([...good, ...newer])).updates).toEqual([known]);
  });
});
