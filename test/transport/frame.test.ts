// The envelope codec: what one node encodes, the other decodes item for item; garbage is refused.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, type Item, type Lane } from '../../src/transport/frame.js';
import { ProtoDecodeError, ProtoReader, ProtoWriter } from '../../src/transport/proto-wire.js';

const lane = fc.constantFrom<Lane>(1, 2, 3, 4, 5);
const item = fc.record({ lane, payload: fc.uint8Array({ maxLength: 300 }) });

describe('frame codec', () => {
  it('round-trips any list of items and an optional auth proof', () => {
    fc.assert(fc.property(fc.array(item, { maxLength: 40 }), fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { nil: undefined }),
      (items: Item[], auth) => {
        const decoded = decodeFrame(encodeFrame(items, auth));
        expect(decoded.items.map((i) => ({ lane: i.lane, payload: [...i.payload] })))
          .toEqual(items.map((i) => ({ lane: i.lane, payload: [...i.payload] })));
        expect(decoded.auth === undefined ? undefined : [...decoded.auth]).toEqual(auth === undefined ? undefined : [...auth]);
      }));
  });

  it('refuses truncated frames and items without a lane instead of misreading them', () => {
    const good = encodeFrame([{ lane: 1, payload: new Uint8Array(50).fill(7) }]);
    expect(() => decodeFrame(good.subarray(0, good.length - 10))).toThrow(ProtoDecodeError);
    const noLane = new ProtoWriter().bytes(1, new ProtoWriter().bytes(2, new Uint8Array([1])).finish()).finish();
    expect(() => decodeFrame(noLane)).toThrow(/item without a lane/);
  });

  // Enum values only grow at the end (proto/cluster.proto): a lane a newer peer added must not cost
  // the items beside it in the frame, nor the stream (a rolling upgrade would cut the cluster apart).
  it('skips items of lanes it does not know, a newer peer\'s, and keeps the others', () => {
    const newer = new ProtoWriter().uint(1, 99).bytes(2, new Uint8Array([9, 9])).finish();
    const known = encodeFrame([{ lane: 1, payload: new Uint8Array([1]) }, { lane: 4, payload: new Uint8Array([4]) }]);
    const mixed = new Uint8Array([...known.subarray(0, known.length / 2), ...new ProtoWriter().bytes(1, newer).finish(), ...known.subarray(known.length / 2)]);
    const f = decodeFrame(mixed);
    expect(f.items.map((i) => [i.lane, [...i.payload]])).toEqual([[1, [1]], [4, [4]]]);
    expect(f.unknownLaneItems).toBe(1);
  });

  it('reads varints up to 2^53 exactly and rejects longer ones', () => {
    const big = 2 ** 53 - 1;
    const r = new ProtoReader(new ProtoWriter().uint(3, big).finish()).next();
    expect(r).toEqual({ field: 3, wire: 0, value: big });
    const tooLong = new Uint8Array([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(() => new ProtoReader(tooLong).next()).toThrow(ProtoDecodeError);
  });
});
