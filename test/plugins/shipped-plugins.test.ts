// The shipped plugins' pure parts: the consistent-hash ring moves only the keys a new binding takes
// (jump hash), and the delayed exchange's x-delay reading and its walk through the delay queues.

import { describe, expect, it } from 'vitest';
import { jumpBucket } from '../../plugins/consistent-hash.js';
import { delayOf, nextLevel } from '../../plugins/delayed-message.js';

describe('consistent-hash ring', () => {
  const hashes = Array.from({ length: 20_000 }, (_, i) => (Math.imul(i + 1, 0x9e3779b1) >>> 0));

  it('spreads keys evenly over the buckets', () => {
    const counts = new Array<number>(10).fill(0);
    for (const h of hashes) counts[jumpBucket(h, 10)]!++;
    for (const c of counts) expect(Math.abs(c - 2000)).toBeLessThan(300);
  });

  it('adding buckets moves only the keys the new buckets take, about W/N of them', () => {
    let moved = 0;
    for (const h of hashes) {
      const before = jumpBucket(h, 10);
      const after = jumpBucket(h, 12);
      if (before !== after) {
        moved++;
        expect(after).toBeGreaterThanOrEqual(10);
      }
    }
    expect(moved / hashes.length).toBeGreaterThan(0.12);
    expect(moved / hashes.length).toBeLessThan(0.21);
  });
});

describe('delayed-message', () => {
  it('reads x-delay as RabbitMQ plugin does', () => {
    expect(delayOf({ 'x-delay': 5000 })).toBe(5000);
    expect(delayOf({ 'x-delay': 1500.9 })).toBe(1500);
    expect(delayOf({ 'x-delay': '250' })).toBe(250);
    expect(delayOf({ 'x-delay': 10n })).toBe(10);
    for (const none of [0, -5, 4_294_967_296, 'soon', true, null]) expect(delayOf({ 'x-delay': none })).toBe(0);
    expect(delayOf({})).toBe(0);
  });

  it('walks the set bits of the delay, largest first, once each, then is due', () => {
    for (const delay of [1, 2, 3, 1000, 8000, 86_400_000, 4_294_967_295]) {
      const passed = new Set<number>();
      let waited = 0;
      let last = Number.POSITIVE_INFINITY;
      for (let k = nextLevel(delay, passed); k >= 0; k = nextLevel(delay, passed)) {
        expect(k).toBeLessThan(last);
        last = k;
        passed.add(k);
        waited += 2 ** k;
      }
      expect(waited).toBe(delay);
    }
  });
});
