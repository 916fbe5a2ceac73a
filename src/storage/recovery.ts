// Recovery of the write-ahead log on start: scan each segment record by record (CRC32C), replay
// into the per-group indexes, cut a torn tail, and mark groups whose records are damaged mid-log.

import { readSync } from 'node:fs';
import { assert } from '../lib/assert.js';
import type { GroupLog, HardState, Location } from './group-log.js';
import { decodeRecord, headerBytes, newDecoded, plausibleHeaderAt, RecordType, type RecordHeader } from './record.js';
import type { Segment } from './segment.js';
import { crc32c } from './crc32c.js';

export interface ReplayTarget {
  /** The group owning numeric id `num`, or undefined (removed or never registered: skip). */
  group(num: number): GroupLog | undefined;
  /** Every numeric id seen, so new ids never collide with orphan records. */
  sawNum(num: number): void;
}

export interface SegmentOutcome {
  records: number;
  /** Offset at which a torn tail starts (only for the last segment), or undefined. */
  tornAt: number | undefined;
  /** Descriptions of mid-log damage, each naming its offset. */
  damage: string[];
}

export function readWhole(seg: Segment, bytes: number): Buffer {
  const buf = Buffer.allocUnsafe(bytes);
  let got = 0;
  while (got < bytes) {
    const n = readSync(seg.fd, buf, got, bytes - got, got);
    if (n === 0) break;
    got += n;
  }
  assert(got === bytes, `short read of ${seg.path}`);
  return buf;
}

/** First offset >= from where an intact header starts, or -1. */
function findNextHeader(buf: Buffer, from: number, end: number): number {
  for (let p = from; p + headerBytes <= end; p++) {
    if (plausibleHeaderAt(buf, p, end) && buf.readUInt32LE(p) === crc32c(buf, p + 4, p + headerBytes)) return p;
  }
  return -1;
}

function allZero(buf: Buffer, from: number, to: number): boolean {
  for (let p = from; p < to; p++) if (buf[p] !== 0) return false;
  return true;
}

/**
 * Replays one segment. In the last segment a damaged or short record with nothing intact after
 * it is a torn tail (never fsynced, so never acknowledged); anywhere else, and in the last segment
 * when an intact record follows or a complete body is damaged, it is corruption.
 */
export function replaySegment(seg: Segment, buf: Buffer, isLast: boolean, target: ReplayTarget, damaged: Set<GroupLog>): SegmentOutcome {
  const out: SegmentOutcome = { records: 0, tornAt: undefined, damage: [] };
  const seen = new Set<GroupLog>();
  const d = newDecoded();
  const end = buf.length;
  let p = 0;
  while (p < end) {
    decodeRecord(buf, p, end, d);
    if (d.status === 'ok' || d.status === 'bad-payload') {
      const h = d.header;
      const recordEnd = p + headerBytes + h.payloadBytes;
      if (d.status === 'bad-payload' && isLast && recordEnd === end && allZero(buf, p + headerBytes, recordEnd)) {
        out.tornAt = p; // the body's sectors never reached the disk
        break;
      }
      target.sawNum(h.group);
      const g = target.group(h.group);
      if (g !== undefined) {
        seen.add(g);
        applyRecord(seg, g, h, p, buf);
        if (d.status === 'bad-payload') {
          out.damage.push(`${seg.path}@${p}: body of group ${g.id} index ${h.index} fails its CRC`);
          g.damaged.add(h.index);
          damaged.add(g);
        }
      }
      if (h.type === RecordType.Truncate || h.type === RecordType.Reset) seg.supersedes = true;
      out.records++;
      p = recordEnd;
      continue;
    }
    const next = findNextHeader(buf, p + 1, end);
    if (isLast && next < 0) { out.tornAt = p; break; }
    out.damage.push(`${seg.path}@${p}: ${d.status} record, ${next < 0 ? 'segment ends' : `resumed at ${next}`}`);
    // The damaged record's group is unknown: every group in this segment is suspect.
    markSuspects(buf, next < 0 ? end : next, end, target, seen);
    for (const g of seen) damaged.add(g);
    if (next < 0) break;
    p = next;
  }
  return out;
}

/** Adds to `seen` the groups of every intact record in buf[from, end). */
function markSuspects(buf: Buffer, from: number, end: number, target: ReplayTarget, seen: Set<GroupLog>): void {
  let p = from;
  const d = newDecoded();
  while (p < end) {
    const q = findNextHeader(buf, p, end);
    if (q < 0) return;
    decodeRecord(buf, q, end, d);
    const g = target.group(d.header.group);
    if (g !== undefined) seen.add(g);
    p = q + headerBytes;
  }
}

function applyRecord(seg: Segment, g: GroupLog, h: RecordHeader, offset: number, buf: Buffer): void {
  const { type, index, term, payloadBytes: bytes, kind } = h;
  const loc: Location = { segment: seg.id, offset, bytes, term, kind };
  switch (type) {
    case RecordType.Entry:
      if (index > g.lastIndex + 1 || (g.count === 0 && index !== g.lastIndex + 1)) g.restartAt(index, 0);
      else if (index <= g.lastIndex) g.truncateAny(index);
      g.push(index, loc);
      return;
    case RecordType.Relocated:
      if (index >= g.firstIndex && index <= g.lastIndex) {
        g.relocate(index, loc, true);
      } else if (index < g.firstIndex) {
        g.placeSparse(index, loc);
      } else {
        if (index > g.lastIndex + 1) g.restartAt(index, 0);
        g.push(index, loc);
      }
      return;
    case RecordType.Truncate:
      g.truncateAny(index);
      return;
    case RecordType.Reset:
      g.reset(index, term);
      return;
    case RecordType.HardState:
      g.hardState = mergeHardState(g.hardState, { term, commit: index, vote: buf.toString('utf8', offset + headerBytes, offset + headerBytes + bytes) });
      return;
    default:
      assert(false, `unknown record type ${type}`);
  }
}

/**
 * Hard states only move forward: a higher term wins; within a term the vote, once cast, never
 * changes; commit only grows. So the merge of a checkpoint and log records is order-independent.
 */
export function mergeHardState(a: HardState, b: HardState): HardState {
  if (a.term !== b.term) {
    const newer = a.term > b.term ? a : b;
    return { term: newer.term, vote: newer.vote, commit: Math.max(a.commit, b.commit) };
  }
  return { term: a.term, vote: a.vote !== '' ? a.vote : b.vote, commit: Math.max(a.commit, b.commit) };
}
