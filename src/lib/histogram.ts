// A histogram with fixed bucket bounds kept in plain numbers: recording a value allocates nothing,
// so the layers on the hot path (a WAL fsync, a confirm, a group-host cycle) keep one each and the
// metrics layer reads it when scraped. Bounds are upper limits (Prometheus `le`), ascending; values
// above the last land in the +Inf bucket.

import { assert } from './assert.js';

export class BucketHistogram {
  readonly bounds: Float64Array;
  /** Per bucket, not cumulative; the last is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    assert(bounds.length > 0 && bounds.length <= 64, 'a histogram has 1 to 64 bounds');
    for (let i = 1; i < bounds.length; i++) assert(bounds[i]! > bounds[i - 1]!, 'histogram bounds ascend');
    this.bounds = Float64Array.from(bounds);
    this.counts = new Float64Array(bounds.length + 1);
  }

  record(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** An estimate of quantile `q` (0..1): the upper bound of the bucket it falls in (+Inf: the last bound). */
  quantileBound(q: number): number {
    if (this.count === 0) return 0;
    const rank = q * this.count;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return this.bounds[Math.min(i, this.bounds.length - 1)]!;
    }
    return this.bounds[this.bounds.length - 1]!;
  }
}

/** Seconds, 50 us to 10 s: fsyncs, confirms, cycles, message stages. */
export const latencyBucketsSeconds: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Counts of things per batch (entries per fsync): 1 to 16384, powers of 2. */
export const batchSizeBuckets: readonly number[] = Array.from({ length: 15 }, (_, i) => 2 ** i);

/** Bytes per batch: 1 KiB to 64 MiB, powers of 4. */
export const batchBytesBuckets: readonly number[] = Array.from({ length: 9 }, (_, i) => 1024 * 4 ** i);
