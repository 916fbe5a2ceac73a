// The on-disk record of the write-ahead log: a 36-byte header (two CRC32Cs, length, type, entry
// kind, group, index, term) and a payload. Pure encode/decode; no I/O. Record types only grow at the end.

import { assert } from '../lib/assert.js';
import { crc32c } from './crc32c.js';

/** Persisted record types: explicit numbers that only grow at the end. */
export const RecordType = {
  /** A log entry of a group: (index, term, data). */
  Entry: 1,
  /** Drops the group's entries with index >= `index` (supersedes them; never an in-place rewrite). */
  Truncate: 2,
  /** Hard state: term, commit in `index`, vote (utf8 node id) in the payload. */
  HardState: 3,
  /** A snapshot was installed at (index, term): the group's whole log is discarded. */
  Reset: 4,
  /** A copy of a live entry written by compaction; placed without truncating anything. */
  Relocated: 5,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export const headerBytes = 36;
const magic = 0xe5;
const twoTo32 = 4294967296;

export interface RecordHeader {
  type: RecordType;
  group: number;
  index: number;
  term: number;
  /** Entry type byte of Entry/Relocated records (the Raft layer's entry type); 0 otherwise. */
  kind: number;
  payloadBytes: number;
}

/**
 * Writes header and payload at `offset` of `out` (which must have room); returns bytes written.
 * The header CRC covers bytes 4..36, including the payload CRC, so identifiers (group, index,
 * term) are checked apart from the body: a damaged body still tells what entry it was.
 */
export function encodeRecord(out: Buffer, offset: number, h: RecordHeader, payload: Uint8Array | undefined): number {
  const n = payload === undefined ? 0 : payload.length;
  assert(n === h.payloadBytes, 'payload length matches header');
  assert(Number.isSafeInteger(h.index) && h.index >= 0 && Number.isSafeInteger(h.term) && h.term >= 0);
  assert(h.group >= 0 && h.group <= 0xffffffff && h.kind >= 0 && h.kind <= 0xff);
  if (payload !== undefined && n > 0) out.set(payload, offset + headerBytes);
  out.writeUInt32LE(n > 0 ? crc32c(out, offset + headerBytes, offset + headerBytes + n) : 0, offset + 4);
  out.writeUInt32LE(n, offset + 8);
  out[offset + 12] = h.type;
  out[offset + 13] = magic;
  out[offset + 14] = h.kind;
  out[offset + 15] = 0;
  out.writeUInt32LE(h.group, offset + 16);
  out.writeUInt32LE(h.index % twoTo32, offset + 20);
  out.writeUInt32LE(Math.floor(h.index / twoTo32), offset + 24);
  out.writeUInt32LE(h.term % twoTo32, offset + 28);
  out.writeUInt32LE(Math.floor(h.term / twoTo32), offset + 32);
  out.writeUInt32LE(crc32c(out, offset + 4, offset + headerBytes), offset);
  return headerBytes + n;
}

export type DecodeStatus = 'ok' | 'short' | 'bad-header' | 'bad-payload';

export interface Decoded {
  status: DecodeStatus;
  header: RecordHeader;
}

const validTypes = new Set<number>(Object.values(RecordType));

/** A cheap check before a CRC: used when searching for a valid record after a damaged one. */
export function plausibleHeaderAt(buf: Uint8Array, offset: number, end: number): boolean {
  return offset + headerBytes <= end && buf[offset + 13] === magic && validTypes.has(buf[offset + 12]!) &&
    buf[offset + 15] === 0;
}

/**
 * Decodes the record at `offset` of buf[0, end). 'short' means the bytes end inside the record;
 * 'bad-header' that the identifiers cannot be trusted (header is then meaningless);
 * 'bad-payload' that the header is intact but the body is damaged.
 */
export function decodeRecord(buf: Buffer, offset: number, end: number, into: Decoded): void {
  const h = into.header;
  if (offset + headerBytes > end) { into.status = 'short'; return; }
  const stored = buf.readUInt32LE(offset);
  if (stored !== crc32c(buf, offset + 4, offset + headerBytes) || !plausibleHeaderAt(buf, offset, end)) {
    into.status = 'bad-header';
    return;
  }
  h.payloadBytes = buf.readUInt32LE(offset + 8);
  h.type = buf[offset + 12] as RecordType;
  h.kind = buf[offset + 14]!;
  h.group = buf.readUInt32LE(offset + 16);
  h.index = buf.readUInt32LE(offset + 20) + buf.readUInt32LE(offset + 24) * twoTo32;
  h.term = buf.readUInt32LE(offset + 28) + buf.readUInt32LE(offset + 32) * twoTo32;
  const payloadEnd = offset + headerBytes + h.payloadBytes;
  if (payloadEnd > end) { into.status = 'short'; return; }
  const payloadCrc = h.payloadBytes > 0 ? crc32c(buf, offset + headerBytes, payloadEnd) : 0;
  into.status = payloadCrc === buf.readUInt32LE(offset + 4) ? 'ok' : 'bad-payload';
}

export function newDecoded(): Decoded {
  return { status: 'short', header: { type: RecordType.Entry, group: 0, index: 0, term: 0, kind: 0, payloadBytes: 0 } };
}
