// The kept entries a snapshot travels with: when the leader sends its snapshot to a follower, the
// entries its log still retains at or below the snapshot point (a queue's live bodies, named by
// setLive's `keep`) follow the snapshot file's bytes, so the follower keeps them in its own log.
//
// Layout after the snapshot bytes: per entry  index f64 | term f64 | kind u8 | length u32 | data,
// then a footer  count u32 | trailer bytes f64 (entries + footer) | magic "ESPKEPT1". A snapshot
// with nothing kept is sent as its bare bytes (no footer), exactly as before trailers existed.

import { assert } from '../lib/assert.js';

const magic = Buffer.from('ESPKEPT1', 'latin1');
export const trailerFooterBytes = 4 + 8 + magic.length;
export const trailerEntryHeaderBytes = 8 + 8 + 1 + 4;

/** Where each kept entry sits in the trailer (built once per snapshot sent). */
export interface TrailerPlan {
  readonly indexes: Float64Array;
  /** Offset of entry k's header within the trailer. */
  readonly starts: Float64Array;
  /** The whole trailer, entries and footer. */
  readonly bytes: number;
}

export interface KeptEntry {
  readonly index: number;
  readonly term: number;
  readonly kind: number;
  readonly data: Uint8Array;
}

/** A plan for entries (index, payload bytes) in ascending index order; null when there are none. */
export function planTrailer(entries: ReadonlyArray<readonly [number, number]>): TrailerPlan | null {
  if (entries.length === 0) return null;
  const indexes = new Float64Array(entries.length);
  const starts = new Float64Array(entries.length);
  let at = 0;
  entries.forEach(([index, bytes], k) => {
    assert(k === 0 || index > indexes[k - 1]!, 'kept entries are in ascending order');
    indexes[k] = index;
    starts[k] = at;
    at += trailerEntryHeaderBytes + bytes;
  });
  return { indexes, starts, bytes: at + trailerFooterBytes };
}

/** Largest k with starts[k] <= at (entries region only). */
function entryAt(plan: TrailerPlan, at: number): number {
  let lo = 0;
  let hi = plan.starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (plan.starts[mid]! <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Writes trailer bytes [from, to) into out at outOffset, reading each entry it needs with `read`. */
export function fillTrailer(plan: TrailerPlan, from: number, to: number, out: Buffer, outOffset: number, read: (index: number) => KeptEntry): void {
  assert(from >= 0 && from <= to && to <= plan.bytes, 'trailer range inside the trailer');
  const entriesEnd = plan.bytes - trailerFooterBytes;
  const n = plan.indexes.length;
  // Bounded by the entries overlapping [from, to): one chunk's worth.
  for (let k = from < entriesEnd ? entryAt(plan, from) : n; k < n && plan.starts[k]! < to; k++) {
    const e = read(plan.indexes[k]!);
    const start = plan.starts[k]!;
    const end = k + 1 < n ? plan.starts[k + 1]! : entriesEnd;
    assert(end - start === trailerEntryHeaderBytes + e.data.length, 'a kept entry keeps its size while its snapshot is sent');
    const rec = Buffer.allocUnsafe(end - start);
    rec.writeDoubleBE(e.index, 0);
    rec.writeDoubleBE(e.term, 8);
    rec.writeUInt8(e.kind, 16);
    rec.writeUInt32BE(e.data.length, 17);
    rec.set(e.data, trailerEntryHeaderBytes);
    copyOverlap(rec, start, from, to, out, outOffset);
  }
  if (to > entriesEnd) {
    const footer = Buffer.allocUnsafe(trailerFooterBytes);
    footer.writeUInt32BE(n, 0);
    footer.writeDoubleBE(plan.bytes, 4);
    magic.copy(footer, 12);
    copyOverlap(footer, entriesEnd, from, to, out, outOffset);
  }
}

/** Copies the part of `src` (placed at trailer offset srcAt) that falls in [from, to). */
function copyOverlap(src: Buffer, srcAt: number, from: number, to: number, out: Buffer, outOffset: number): void {
  const a = Math.max(from, srcAt);
  const b = Math.min(to, srcAt + src.length);
  if (a < b) src.copy(out, outOffset + (a - from), a - srcAt, b - srcAt);
}

/** Splits received snapshot data into the snapshot's own bytes and the kept entries after them. */
export function splitTrailer(data: Uint8Array): { snapshot: Uint8Array; entries: KeptEntry[] } {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const end = buf.length;
  if (end < trailerFooterBytes || !buf.subarray(end - magic.length).equals(magic)) return { snapshot: data, entries: [] };
  const count = buf.readUInt32BE(end - trailerFooterBytes);
  const bytes = buf.readDoubleBE(end - trailerFooterBytes + 4);
  assert(Number.isSafeInteger(bytes) && bytes >= trailerFooterBytes && bytes <= end, 'snapshot trailer length fits the data');
  const entries: KeptEntry[] = [];
  let p = end - bytes;
  for (let k = 0; k < count; k++) {
    assert(p + trailerEntryHeaderBytes <= end - trailerFooterBytes, 'snapshot trailer entry header inside the trailer');
    const length = buf.readUInt32BE(p + 17);
    const dataEnd = p + trailerEntryHeaderBytes + length;
    assert(dataEnd <= end - trailerFooterBytes, 'snapshot trailer entry inside the trailer');
    entries.push({ index: buf.readDoubleBE(p), term: buf.readDoubleBE(p + 8), kind: buf.readUInt8(p + 16), data: buf.subarray(p + trailerEntryHeaderBytes, dataEnd) });
    p = dataEnd;
  }
  assert(p === end - trailerFooterBytes, 'snapshot trailer entries fill the trailer');
  return { snapshot: buf.subarray(0, end - bytes), entries };
}
