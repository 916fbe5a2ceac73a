// CRC32C: the check values of the Castagnoli polynomial, and that continuing a CRC over split
// input (any split, any alignment) equals the CRC of the whole.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/storage/index.js';

describe('crc32c', () => {
  it('matches the published check values', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('gives the same result for any split point and offset into the buffer', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(7), (bytes, cut, pad) => {
      const k = bytes.length === 0 ? 0 : cut % (bytes.length + 1);
      const shifted = new Uint8Array(pad + bytes.length);
      shifted.set(bytes, pad);
      const whole = crc32c(bytes);
      expect(crc32c(bytes, k, bytes.length, crc32c(bytes, 0, k))).toBe(whole);
      expect(crc32c(shifted, pad, pad + bytes.length)).toBe(whole);
      expect(crc32c(shifted.subarray(pad))).toBe(whole);
    }), { numRuns: 300 });
  });
});
