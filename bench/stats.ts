// Pure arithmetic of a run: per-message delivery tallies (lost, duplicated), rates, CPU per
// 100,000 messages, latency histograms merged across workers, and /proc parsing.

import * as hdr from 'hdr-histogram-js';

/** Deliveries seen per sequence number of one (queue, publisher) pair; 255 saturates. */
export class SeqCounts {
  counts: Uint8Array;
  constructor(initial = 1024) {
    this.counts = new Uint8Array(initial);
  }
  /** Marks one delivery of `seq`; grows by doubling up to `maxSeq` (the bound of a run). */
  see(seq: number, maxSeq = 100_000_000): void {
    if (seq >= this.counts.length) {
      if (seq >= maxSeq) throw new Error(`sequence ${seq} is beyond the bound ${maxSeq}`);
      let size = this.counts.length;
      while (size <= seq) size *= 2;
      const next = new Uint8Array(Math.min(size, maxSeq));
      next.set(this.counts);
      this.counts = next;
    }
    const c = this.counts[seq] ?? 0;
    if (c < 255) this.counts[seq] = c + 1;
  }
}

/** Sums delivery counts of the same pair seen by several consumers (shared queue). */
export function mergeCounts(parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len = Math.max(len, p.length);
  const out = new Uint8Array(len);
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) out[i] = Math.min(255, (out[i] ?? 0) + (p[i] ?? 0));
  }
  return out;
}

export interface Tally {
  unique: number;
  duplicates: number;
}

/** Distinct sequence numbers delivered and the deliveries beyond the first of each. */
export function tally(counts: Uint8Array): Tally {
  let unique = 0;
  let duplicates = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] ?? 0;
    if (c > 0) {
      unique++;
      duplicates += c - 1;
    }
  }
  return { unique, duplicates };
}

/**
 * Messages a broker confirmed that were neither delivered nor still in their queue at the end.
 * Must be 0; a negative difference (unconfirmed messages that still arrived) counts as 0.
 */
export function lostCount(confirmed: number, uniqueDelivered: number, stillQueued: number): number {
  return Math.max(0, confirmed - uniqueDelivered - stillQueued);
}

export function perSecond(count: number, ms: number): number {
  return ms <= 0 ? 0 : (count * 1000) / ms;
}

/** CPU seconds the process spent per 100,000 messages (0 when no message moved). */
export function cpuSecondsPer100k(cpuSeconds: number, messages: number): number {
  return messages <= 0 ? 0 : (cpuSeconds * 100_000) / messages;
}

// --- latency histograms (microseconds) -----------------------------------------------------

export type Histogram = hdr.Histogram;

export function newHistogram(): Histogram {
  // JS (not WebAssembly) histograms so workers need no async init; 3 significant digits.
  return hdr.build({ numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, useWebAssembly: false });
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/** One histogram holding every value of the encoded ones (each worker sends its own). */
export function mergeHistograms(encoded: readonly string[]): Histogram {
  const out = newHistogram();
  for (const e of encoded) {
    const h = hdr.decodeFromCompressedBase64(e, 32, false);
    out.add(h);
    h.destroy();
  }
  return out;
}

export interface LatencySummary {
  count: number;
  p50Us: number;
  p95Us: number;
  p99Us: number;
  maxUs: number;
}

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, p50Us: 0, p95Us: 0, p99Us: 0, maxUs: 0 };
  return {
    count: h.totalCount,
    p50Us: h.getValueAtPercentile(50),
    p95Us: h.getValueAtPercentile(95),
    p99Us: h.getValueAtPercentile(99),
    maxUs: h.maxValue,
  };
}

// --- /proc parsing ---------------------------------------------------------------------------

/** utime + stime in clock ticks from /proc/<pid>/stat (the command may contain spaces and ')'). */
export function parseProcStatTicks(text: string): number {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error('not a /proc/<pid>/stat line');
  // Fields after the command start at field 3 (state); utime and stime are fields 14 and 15.
  const fields = text.slice(close + 2).trim().split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('stat line without utime/stime');
  return utime + stime;
}

/** A "Name:   1234 kB" line of /proc/<pid>/status, in bytes (undefined when absent). */
export function parseStatusBytes(text: string, field: 'VmRSS' | 'VmHWM'): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
}
