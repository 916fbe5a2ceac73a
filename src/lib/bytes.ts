// A growable big-endian byte writer and a bounds-checked reader, with u16-length-prefixed UTF-8
// strings: the shared cursor of our hand-written binary codecs (queue log entries, mesh payloads).

import { assert } from './assert.js';

const shortStringBytesMax = 0xffff;

export class ByteWriter {
  private buf: Buffer;
  private pos = 0;
  constructor(sizeHint: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, sizeHint));
  }
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): this { this.room(1); this.buf.writeUInt8(v, this.pos); this.pos += 1; return this; }
  u32(v: number): this { this.room(4); this.buf.writeUInt32BE(v >>> 0, this.pos); this.pos += 4; return this; }
  i32(v: number): this { this.room(4); this.buf.writeInt32BE(v | 0, this.pos); this.pos += 4; return this; }
  f64(v: number): this { this.room(8); this.buf.writeDoubleBE(v, this.pos); this.pos += 8; return this; }
  /** A string of at most 65,535 UTF-8 bytes, after its u16 length. */
  str(s: string, what = 'a short string'): this {
    const n = Buffer.byteLength(s);
    assert(n <= shortStringBytesMax, `${what} is at most ${shortStringBytesMax} bytes`);
    this.room(2 + n);
    this.buf.writeUInt16BE(n, this.pos);
    this.buf.write(s, this.pos + 2);
    this.pos += 2 + n;
    return this;
  }
  /** The bytes as they are (the caller writes their length first, in its own format). */
  raw(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

export class ByteReader {
  private pos = 0;
  private readonly buf: Buffer;
  /** `truncated` makes the error for input that ends too early (a bug, or a peer's bad payload). */
  constructor(data: Uint8Array, private readonly truncated: () => Error) {
    this.buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw this.truncated();
  }
  u8(): number { this.need(1); return this.buf.readUInt8(this.pos++); }
  u32(): number { this.need(4); const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v; }
  i32(): number { this.need(4); const v = this.buf.readInt32BE(this.pos); this.pos += 4; return v; }
  f64(): number { this.need(8); const v = this.buf.readDoubleBE(this.pos); this.pos += 8; return v; }
  str(): string {
    this.need(2);
    const n = this.buf.readUInt16BE(this.pos);
    this.need(2 + n);
    const s = this.buf.toString('utf8', this.pos + 2, this.pos + 2 + n);
    this.pos += 2 + n;
    return s;
  }
  /** The next `n` bytes, a view into the input (copy it to keep it apart from the input). */
  take(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** Bytes not read yet (an optional trailing section a newer peer may add). */
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  /** Moves the cursor to `pos` (a field known to sit at a fixed offset). */
  seek(pos: number): void {
    assert(pos >= 0 && pos <= this.buf.length, 'seek within the input');
    this.pos = pos;
  }
}
