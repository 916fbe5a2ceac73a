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

  it('refuses truncated frames and unknown lanes instead of misreading them', () => {
    const good = encodeFrame([{ lane: 1, payload: new Uint8Array(50).fill(7) }]);
    expect(() => decodeFrame(good.subarray(0, good.length - 10))).toThrow(ProtoDecodeError);
    const badLane = new ProtoWriter().bytes(1, new ProtoWriter().uint(1, 99).finish()).finish();
    expect(() => decodeFrame(badLane)).toThrow(/unknown lane 99/);
  });

  it('reads varints up to 2^53 exactly and rejects longer ones', () => {
    const big = 2 ** 53 - 1;
    const r = new ProtoReader(new ProtoWriter().uint(3, big).finish()).next();
    expect(r).toEqual({ field: 3, wire: 0, value: big });
    const tooLong = new Uint8Array([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(() => new ProtoReader(tooLong).next()).toThrow(ProtoDecodeError);
  });
});
