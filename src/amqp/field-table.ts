// Field tables and arrays with RabbitMQ's type tags. A decoded value keeps its tag, so a table a
// client wrote encodes back to the same bytes; broker-made tables use only tags every client reads.

import { assert, unreachable } from '../lib/assert.js';
import { fieldTableDepthMax } from './limits.js';
import { DecodeError, type Reader, type Writer } from './wire.js';

/**
 * One tagged value. Integers of 64 bits (`l`, `L`, `T`) are numbers when they fit in 2^53 - 1 and
 * bigints otherwise, so nothing is lost; `D` is {scale, value} with value unsigned as RabbitMQ reads it;
 * `S` and `x` are bytes (relayed unchanged, not necessarily utf-8); `V` is null.
 */
export type FieldValue =
  | { readonly tag: 't'; readonly value: boolean }
  | { readonly tag: 'b' | 'B' | 's' | 'u' | 'U' | 'I' | 'i' | 'f' | 'd'; readonly value: number }
  | { readonly tag: 'l' | 'L' | 'T'; readonly value: number | bigint }
  | { readonly tag: 'D'; readonly value: Decimal }
  | { readonly tag: 'S' | 'x'; readonly value: Buffer }
  | { readonly tag: 'A'; readonly value: readonly FieldValue[] }
  | { readonly tag: 'F'; readonly value: FieldTable }
  | { readonly tag: 'V'; readonly value: null };

export type FieldTag = FieldValue['tag'];

export interface Decimal {
  readonly scale: number;
  readonly value: number;
}

/**
 * A table: keys in wire order; a key like `__proto__` is an ordinary own entry. JS objects list integer-like keys ("1", "2") first, so a table with such
 * keys re-encodes in a different order; relay the raw property bytes when order matters.
 */
export type FieldTable = { readonly [key: string]: FieldValue };

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;
const uint64Max = 2n ** 64n - 1n;

/** 64-bit integer: a number when within 2^53 - 1, without touching BigInt (slow) on that common path. */
function int64(r: Reader, signed: boolean): number | bigint {
  r.need(8, 'int64');
  const high = signed ? r.buf.readInt32BE(r.pos) : r.buf.readUInt32BE(r.pos);
  const low = r.buf.readUInt32BE(r.pos + 4);
  let v: number | bigint;
  if (high >= -0x20_0000 && high < 0x20_0000 && !(high === -0x20_0000 && low === 0)) {
    v = high * 0x1_0000_0000 + low;
  } else {
    v = signed ? r.buf.readBigInt64BE(r.pos) : r.buf.readBigUInt64BE(r.pos);
  }
  r.pos += 8;
  return v;
}

function fixed(r: Reader, n: number): number {
  r.need(n, 'field value');
  const at = r.pos;
  r.pos += n;
  return at;
}

function decodeValue(r: Reader, depth: number): FieldValue {
  const code = r.octet();
  const b = r.buf;
  switch (code) {
    case 0x74: return { tag: 't', value: b[fixed(r, 1)] !== 0 };
    case 0x62: return { tag: 'b', value: b.readInt8(fixed(r, 1)) };
    case 0x42: return { tag: 'B', value: b.readUInt8(fixed(r, 1)) };
    case 0x73: return { tag: 's', value: b.readInt16BE(fixed(r, 2)) };
    case 0x55: return { tag: 'U', value: b.readInt16BE(fixed(r, 2)) };
    case 0x75: return { tag: 'u', value: b.readUInt16BE(fixed(r, 2)) };
    case 0x49: return { tag: 'I', value: b.readInt32BE(fixed(r, 4)) };
    case 0x69: return { tag: 'i', value: b.readUInt32BE(fixed(r, 4)) };
    case 0x6c: return { tag: 'l', value: int64(r, true) };
    case 0x4c: return { tag: 'L', value: int64(r, true) };
    case 0x54: return { tag: 'T', value: int64(r, false) };
    case 0x66: return { tag: 'f', value: b.readFloatBE(fixed(r, 4)) };
    case 0x64: return { tag: 'd', value: b.readDoubleBE(fixed(r, 8)) };
    case 0x44: {
      const at = fixed(r, 5);
      return { tag: 'D', value: { scale: b[at]!, value: b.readUInt32BE(at + 1) } };
    }
    case 0x53: return { tag: 'S', value: r.longstr() };
    case 0x78: return { tag: 'x', value: r.longstr() };
    case 0x41: return { tag: 'A', value: decodeArrayBody(r, depth + 1) };
    case 0x46: return { tag: 'F', value: decodeTableAt(r, depth + 1) };
    case 0x56: return { tag: 'V', value: null };
    default:
      throw new DecodeError(`unknown field table type tag 0x${code.toString(16).padStart(2, '0')}`
        + (code >= 0x21 && code <= 0x7e ? ` ('${String.fromCharCode(code)}')` : ''));
  }
}

function enter(depth: number): void {
  if (depth > fieldTableDepthMax) throw new DecodeError(`field table nested deeper than ${fieldTableDepthMax}`);
}

function decodeArrayBody(r: Reader, depth: number): FieldValue[] {
  enter(depth);
  const len = r.long();
  r.need(len, 'array');
  const end = r.pos + len;
  const items: FieldValue[] = [];
  const saved = r.end;
  r.end = end;
  try {
    while (r.pos < end) items.push(decodeValue(r, depth));
  } finally {
    r.end = saved;
  }
  return items;
}

function decodeTableAt(r: Reader, depth: number): FieldTable {
  enter(depth);
  const len = r.long();
  r.need(len, 'table');
  const end = r.pos + len;
  const out: Record<string, FieldValue> = {};
  const saved = r.end;
  r.end = end;
  try {
    while (r.pos < end) {
      const key = r.shortstr();
      setEntry(out, key, decodeValue(r, depth));
    }
  } finally {
    r.end = saved;
  }
  return out;
}

/**
 * Sets an own, enumerable entry; `__proto__` would otherwise replace the prototype. Plain objects,
 * not null-prototype ones: V8 keeps those in slow dictionary mode.
 */
function setEntry<T>(out: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

/** Reads a table (32-bit size, then entries). Throws DecodeError on malformed input. */
export function readFieldTable(r: Reader): FieldTable {
  return decodeTableAt(r, 0);
}

function writeInt(w: Writer, tag: string, v: number, bytes: number, min: number, max: number): void {
  assert(Number.isInteger(v) && v >= min && v <= max, `field '${tag}' value out of range: ${v}`);
  w.ensure(bytes);
  if (bytes === 1) w.buf.writeIntBE(v, w.pos, 1);
  else if (bytes === 2) w.buf.writeIntBE(v, w.pos, 2);
  else w.buf.writeIntBE(v, w.pos, 4);
  w.pos += bytes;
}

function writeUint(w: Writer, tag: string, v: number, bytes: number): void {
  assert(Number.isInteger(v) && v >= 0 && v < 2 ** (8 * bytes), `field '${tag}' value out of range: ${v}`);
  w.ensure(bytes);
  w.buf.writeUIntBE(v, w.pos, bytes);
  w.pos += bytes;
}

function writeInt64(w: Writer, v: number | bigint, signed: boolean): void {
  const big = BigInt(v);
  assert(signed ? big >= int64Min && big <= int64Max : big >= 0n && big <= uint64Max, `64-bit field value out of range: ${v}`);
  w.ensure(8);
  if (signed) w.buf.writeBigInt64BE(big, w.pos);
  else w.buf.writeBigUInt64BE(big, w.pos);
  w.pos += 8;
}

function writeValue(w: Writer, v: FieldValue): void {
  w.ensure(1);
  w.buf[w.pos++] = v.tag.charCodeAt(0);
  switch (v.tag) {
    case 't': w.ensure(1); w.buf[w.pos++] = v.value ? 1 : 0; return;
    case 'b': return writeInt(w, v.tag, v.value, 1, -128, 127);
    case 'B': return writeUint(w, v.tag, v.value, 1);
    case 's': case 'U': return writeInt(w, v.tag, v.value, 2, -32768, 32767);
    case 'u': return writeUint(w, v.tag, v.value, 2);
    case 'I': return writeInt(w, v.tag, v.value, 4, -(2 ** 31), 2 ** 31 - 1);
    case 'i': return writeUint(w, v.tag, v.value, 4);
    case 'l': case 'L': return writeInt64(w, v.value, true);
    case 'T': return writeInt64(w, v.value, false);
    case 'f': w.ensure(4); w.buf.writeFloatBE(v.value, w.pos); w.pos += 4; return;
    case 'd': w.ensure(8); w.buf.writeDoubleBE(v.value, w.pos); w.pos += 8; return;
    case 'D': writeUint(w, 'D', v.value.scale, 1); return writeUint(w, 'D', v.value.value, 4);
    case 'S': case 'x': return w.longstr(v.value);
    case 'A': {
      const at = w.beginSized();
      for (const item of v.value) writeValue(w, item);
      return w.endSized(at);
    }
    case 'F': return writeFieldTable(w, v.value);
    case 'V': return;
    default: return unreachable(v);
  }
}

/** Writes a table (32-bit size, then entries in key order). */
export function writeFieldTable(w: Writer, table: FieldTable): void {
  const at = w.beginSized();
  for (const key in table) {
    w.shortstr(key);
    writeValue(w, table[key]!);
  }
  w.endSized(at);
}

// ---- broker-made tables -------------------------------------------------------------------------

/** Plain values the broker builds tables from; `Date` is not accepted (the codec has no clock). */
export type PlainFieldValue =
  | boolean | number | bigint | string | Buffer | null
  | FieldValue | readonly PlainFieldValue[] | { readonly [key: string]: PlainFieldValue };

const allTags = new Set('tbBsuUIifdlLTDSxAFV'.split(''));

/** True for a value that already carries a tag (as decoded, or built with `field`). */
export function isFieldValue(v: unknown): v is FieldValue {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Buffer.isBuffer(v)) return false;
  const o = v as Record<string, unknown>;
  let keys = 0;
  for (const k in o) { keys++; if (k !== 'tag' && k !== 'value') return false; }
  return keys === 2 && typeof o.tag === 'string' && allTags.has(o.tag);
}

/**
 * A tagged value from a plain one, with only the tags RabbitMQ emits and every client reads:
 * boolean t, string/bytes S, integer l (I when a caller tags it), array A, object F, null V.
 * Non-integer numbers are a bug here: RabbitMQ-bound clients expect integers in broker tables.
 */
export function toFieldValue(v: PlainFieldValue): FieldValue {
  if (v === null) return { tag: 'V', value: null };
  if (typeof v === 'boolean') return { tag: 't', value: v };
  if (typeof v === 'string') return { tag: 'S', value: Buffer.from(v, 'utf8') };
  if (typeof v === 'bigint') return { tag: 'l', value: v };
  if (typeof v === 'number') {
    assert(Number.isSafeInteger(v), `broker table values must be safe integers, got ${v}`);
    return { tag: 'l', value: v };
  }
  if (Buffer.isBuffer(v)) return { tag: 'S', value: v };
  if (Array.isArray(v)) return { tag: 'A', value: (v as readonly PlainFieldValue[]).map(toFieldValue) };
  if (isFieldValue(v)) return v;
  return { tag: 'F', value: toFieldTable(v as { readonly [key: string]: PlainFieldValue }) };
}

/** A field table from plain values (see toFieldValue); tagged values pass through unchanged. */
export function toFieldTable(plain: { readonly [key: string]: PlainFieldValue }): FieldTable {
  const out: Record<string, FieldValue> = {};
  for (const key of Object.keys(plain)) setEntry(out, key, toFieldValue(plain[key]!));
  return out;
}

/** The plain value inside a tagged one: S/x as utf-8 text, arrays and tables recursively. */
export function fromFieldValue(v: FieldValue): unknown {
  switch (v.tag) {
    case 'S': case 'x': return v.value.toString('utf8');
    case 'A': return v.value.map(fromFieldValue);
    case 'F': {
      const out: Record<string, unknown> = {};
      for (const key in v.value) setEntry(out, key, fromFieldValue(v.value[key]!));
      return out;
    }
    default: return v.value;
  }
}
