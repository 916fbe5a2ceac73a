// Which retried enqueues a replicated queue has already applied: per caller (origin) a contiguous
// watermark plus the applied seqs above it, so a retry that reaches a new leader after the old one
// committed it is recognised, even when later calls of the same caller committed first.
//
// The caller also sends a floor: its lowest seq still waiting for an answer. Everything below it
// is settled for the caller (answered or given up), so the watermark may jump there: gaps left by
// rejected or abandoned calls do not pin seqs in the set for ever.

import { assert } from '../lib/assert.js';
import { dedupOriginIdleMsMax, dedupOriginsMax, dedupSeqsAboveMax } from './limits.js';

/** A retryable enqueue's identity, chosen once by its caller and kept across retries. */
export interface EnqueueIdentity {
  /** The caller: unique per caller instance (e.g. a random id per process and queue). */
  readonly origin: string;
  /** Counter of that caller, from 1. */
  readonly seq: number;
  /** The caller's lowest seq still in flight when it sent this one (<= seq). */
  readonly floor: number;
}

export interface OriginRecord {
  /** Every seq <= watermark is applied or settled by the caller. */
  watermark: number;
  /** Applied seqs above the watermark + 1 (a gap sits at watermark + 1). */
  readonly above: Set<number>;
  /** Log time (the leader's ms) of this origin's last enqueue. */
  lastMs: number;
}

/**
 * Origins in order of last use (a use moves the origin to the end), so the idlest is first:
 * forgetting idle ones is a pop from the front, and the order is the same on every replica.
 */
export type DedupTable = Map<string, OriginRecord>;

export function createDedupTable(): DedupTable {
  return new Map();
}

/**
 * Looks `id` up at log time `nowMs`: true if it was applied before (a duplicate: store nothing).
 * Also forgets idle origins, makes room under the origin cap and raises the watermark to the floor.
 */
export function isDuplicate(table: DedupTable, id: EnqueueIdentity, nowMs: number): boolean {
  assert(Number.isSafeInteger(id.seq) && id.seq >= 1, 'enqueue seq is a positive integer');
  assert(id.floor <= id.seq, 'the floor is at most the seq');
  forgetIdle(table, nowMs);
  let rec = table.get(id.origin);
  if (rec === undefined) {
    // At the cap the idlest origin goes: a retry of its calls would be applied again (documented in limits.ts).
    if (table.size >= dedupOriginsMax) table.delete(table.keys().next().value as string);
    rec = { watermark: 0, above: new Set(), lastMs: nowMs };
  } else {
    table.delete(id.origin);
  }
  rec.lastMs = nowMs;
  table.set(id.origin, rec);
  raiseTo(rec, id.floor - 1);
  return id.seq <= rec.watermark || rec.above.has(id.seq);
}

/** Records an applied (accepted) enqueue; call after isDuplicate said false for it. */
export function recordApplied(table: DedupTable, id: EnqueueIdentity): void {
  const rec = table.get(id.origin);
  assert(rec !== undefined, 'the origin was looked up first');
  assert(id.seq > rec.watermark && !rec.above.has(id.seq), 'a seq is recorded once');
  rec.above.add(id.seq);
  if (rec.above.size > dedupSeqsAboveMax) {
    // At the cap the oldest gap is taken as settled: the watermark jumps to the lowest applied seq.
    let lowest = id.seq;
    for (const s of rec.above) lowest = Math.min(lowest, s);
    raiseTo(rec, lowest);
  }
  advance(rec);
}

/** Moves the watermark up to `to` (if higher), dropping the seqs it now covers. */
function raiseTo(rec: OriginRecord, to: number): void {
  if (to <= rec.watermark) return;
  rec.watermark = to;
  for (const s of rec.above) if (s <= to) rec.above.delete(s);
  advance(rec);
}

/** Closes the gap while the next seq is applied. */
function advance(rec: OriginRecord): void {
  while (rec.above.delete(rec.watermark + 1)) rec.watermark++;
}

function forgetIdle(table: DedupTable, nowMs: number): void {
  for (let bound = table.size; bound > 0; bound--) {
    const first = table.entries().next();
    if (first.done === true || nowMs - first.value[1].lastMs <= dedupOriginIdleMsMax) return;
    table.delete(first.value[0]);
  }
}

/** [origin, watermark, lastMs, applied seqs above] in table order: plain data for snapshots. */
export type DedupTuple = readonly [string, number, number, readonly number[]];

export function dedupToTuples(table: DedupTable): DedupTuple[] {
  return [...table].map(([origin, r]) => [origin, r.watermark, r.lastMs, [...r.above].sort((a, b) => a - b)] as const);
}

export function dedupFromTuples(tuples: readonly DedupTuple[] | undefined): DedupTable {
  const table = createDedupTable();
  for (const [origin, watermark, lastMs, above] of tuples ?? []) {
    table.set(origin, { watermark, lastMs, above: new Set(above) });
  }
  return table;
}
