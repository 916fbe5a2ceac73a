// Cursor reader and growable writer over Buffers: the primitives every AMQP type is made of.
// Decoding failures throw DecodeError inside the codec and leave it only as ProtocolError values.

import { assert } from '../lib/assert.js';
import { shortStringMaxBytes, uint64AsNumberMax } from './limits.js';

/** Malformed input found while decoding; never escapes the codec's public functions. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

const twoTo32 = 0x1_0000_0000;
/** High 32 bits of the largest safe integer (2^53 - 1). */
const safeHighMax = 0x1f_ffff;

export class Reader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    /** Moved in while reading a nested table or array, restored after. */
    public end: number,
  ) {
    assert(pos >= 0 && pos <= end && end <= buf.length, 'reader bounds');
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new DecodeError(`truncated ${what}: needs ${n} bytes at offset ${this.pos}, ${this.end - this.pos} left`);
    }
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  octet(): number {
    this.need(1, 'octet');
    return this.buf[this.pos++]!;
  }

  short(): number {
    this.need(2, 'short');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  long(): number {
    this.need(4, 'long');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** An unsigned 64-bit field as a number; values above 2^53 - 1 are refused (they would lose precision). */
  longlong(what = 'longlong'): number {
    this.need(8, what);
    const high = this.buf.readUInt32BE(this.pos);
    const low = this.buf.readUInt32BE(this.pos + 4);
    if (high > safeHighMax) throw new DecodeError(`${what} above 2^53 - 1 is not supported`);
    this.pos += 8;
    return high * twoTo32 + low;
  }

  shortstr(): string {
    this.need(1, 'short string length');
    const len = this.buf[this.pos]!;
    this.need(1 + len, 'short string');
    const s = this.buf.toString('utf8', this.pos + 1, this.pos + 1 + len);
    this.pos += 1 + len;
    return s;
  }

  /** Bytes of a long string, copied so a decoded value does not pin the socket chunk. */
  longstr(): Buffer {
    const len = this.long();
    this.need(len, 'long string');
    const b = Buffer.from(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return b;
  }

  /** Bytes without a copy (valid while the underlying chunk is). */
  slice(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

/** Growable output buffer; `take` copies out the bytes written, so one Writer serves many encodes. */
export class Writer {
  buf: Buffer;
  pos = 0;

  constructor(sizeBytes = 4096) {
    this.buf = Buffer.allocUnsafe(sizeBytes);
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  octet(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xff, `octet out of range: ${v}`);
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  short(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xffff, `short out of range: ${v}`);
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }

  long(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff, `long out of range: ${v}`);
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  longlong(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v <= uint64AsNumberMax, `longlong out of range: ${v}`);
    this.ensure(8);
    this.buf.writeUInt32BE(Math.floor(v / twoTo32), this.pos);
    this.buf.writeUInt32BE(v % twoTo32, this.pos + 4);
    this.pos += 8;
  }

  shortstr(s: string): void {
    this.ensure(1 + s.length * 3);
    const len = this.buf.write(s, this.pos + 1, 'utf8');
    assert(len <= shortStringMaxBytes, `short string of ${len} bytes is longer than 255`);
    this.buf[this.pos] = len;
    this.pos += 1 + len;
  }

  longstr(b: Buffer): void {
    this.long(b.length);
    this.bytes(b);
  }

  bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  /** Reserves a 32-bit length to be filled in by `endSized`. */
  beginSized(): number {
    this.ensure(4);
    this.pos += 4;
    return this.pos - 4;
  }

  endSized(at: number): void {
    this.buf.writeUInt32BE(this.pos - at - 4, at);
  }

  /** A copy of the bytes written since `from`. */
  take(from = 0): Buffer {
    return Buffer.from(this.buf.subarray(from, this.pos));
  }
}
