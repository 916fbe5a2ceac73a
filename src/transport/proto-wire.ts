// Protobuf wire format (varints, length-delimited fields) for the hot-path messages of proto/ that
// are encoded by hand (frames, raft batches, rpc envelopes, gossip): no conversion to and from
// protobufjs's message objects, strings written without TextEncoder (slow for short strings),
// buffers from Node's pool. bench/proto-codecs.ts measures them against protobufjs;
// test/transport/proto-conformance.test.ts holds them to proto/*.proto.

import { assert } from '../lib/assert.js';

export const WireType = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;

/** Bytes a varint of `n` takes (n a non-negative safe integer). */
export function varintSize(n: number): number {
  assert(Number.isSafeInteger(n) && n >= 0, 'varint must be a non-negative safe integer');
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Bytes of a uint field (none when 0, as proto3 leaves defaults out). */
export function uintFieldSize(field: number, value: number): number {
  return value === 0 ? 0 : varintSize(field * 8) + varintSize(value);
}

/** Bytes of a length-delimited field whose content is `length` bytes. */
export function bytesFieldSize(field: number, length: number): number {
  return varintSize(field * 8 + WireType.bytes) + varintSize(length) + length;
}

/** Bytes of a string field (none when empty). */
export function stringFieldSize(field: number, value: string): number {
  return value.length === 0 ? 0 : bytesFieldSize(field, Buffer.byteLength(value, 'utf8'));
}

/**
 * A growable writer; `finish` returns a view of exactly the bytes written. A nested message is
 * written in place after `header(field, size)` when its size is known first (see the *FieldSize
 * helpers), instead of in a writer of its own that is then copied into this one.
 */
export class ProtoWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialBytes = 256) {
    // Small sizes come from Node's shared pool: no allocation of their own, not zeroed.
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(n: number): this {
    assert(Number.isSafeInteger(n) && n >= 0, 'varint must be a non-negative safe integer');
    this.reserve(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WireType.bytes).varint(value.length);
    this.reserve(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
    return this;
  }

  /** The tag and length of a length-delimited field whose `length` bytes the caller writes next. */
  header(field: number, length: number): this {
    return this.tag(field, WireType.bytes).varint(length);
  }

  /** Bytes as they are (a nested message encoded elsewhere, after its header). */
  raw(value: Uint8Array): this {
    this.reserve(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
    return this;
  }

  string(field: number, value: string): this {
    if (value.length === 0) return this;
    this.tag(field, WireType.bytes);
    // Ids, names and addresses are short ASCII: copied char by char, the length known up front.
    if (value.length < 128 && this.asciiAt(value)) return this;
    const n = Buffer.byteLength(value, 'utf8');
    this.varint(n);
    this.reserve(n);
    this.pos += this.buf.write(value, this.pos, n, 'utf8');
    return this;
  }

  /** Writes `value` (length < 128) with its one-byte length if it is all ASCII; false, writing nothing, if not. */
  private asciiAt(value: string): boolean {
    this.reserve(value.length + 1);
    const start = this.pos + 1;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) return false;
      this.buf[start + i] = c;
    }
    this.buf[this.pos] = value.length;
    this.pos = start + value.length;
    return true;
  }

  uint(field: number, value: number): this {
    if (value === 0) return this;
    return this.tag(field, WireType.varint).varint(value);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

export type Field =
  | { field: number; wire: 0; value: number }
  | { field: number; wire: 2; value: Uint8Array };

/**
 * Reads the fields of one message in order. Views into the input are returned for bytes fields
 * (no copy). Throws ProtoDecodeError on malformed input: callers at the edge turn it into a
 * dropped frame and a log line.
 */
export class ProtoReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  done(): boolean {
    return this.pos >= this.buf.length;
  }

  private varint(): number {
    // Most varints (tags, small numbers, lengths) are one byte.
    if (this.pos < this.buf.length && this.buf[this.pos]! < 0x80) return this.buf[this.pos++]!;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new ProtoDecodeError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (!Number.isSafeInteger(result)) throw new ProtoDecodeError('varint above 2^53');
        return result;
      }
      scale *= 128;
    }
    throw new ProtoDecodeError('varint longer than 10 bytes');
  }

  next(): Field {
    const key = this.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) throw new ProtoDecodeError('field number 0');
    if (wire === WireType.varint) return { field, wire: 0, value: this.varint() };
    if (wire === WireType.bytes) {
      const len = this.varint();
      if (this.pos + len > this.buf.length) throw new ProtoDecodeError('truncated bytes field');
      // A plain view: cheaper to make than a Buffer's subarray, and no copy either way.
      const value = new Uint8Array(this.buf.buffer, this.buf.byteOffset + this.pos, len);
      this.pos += len;
      return { field, wire: 2, value };
    }
    if (wire === WireType.fixed64 || wire === WireType.fixed32) {
      // Not used by our messages; skip so newer peers can add such fields.
      this.pos += wire === WireType.fixed64 ? 8 : 4;
      if (this.pos > this.buf.length) throw new ProtoDecodeError('truncated fixed field');
      return this.next0();
    }
    throw new ProtoDecodeError(`unsupported wire type ${wire}`);
  }

  // After skipping an unknown fixed field, read the next one (or report end as an empty varint 0).
  private next0(): Field {
    if (this.done()) return { field: 0, wire: 0, value: 0 };
    return this.next();
  }
}

export class ProtoDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtoDecodeError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeString(bytes: Uint8Array): string {
  // A few ASCII bytes (node ids) are quicker to copy by hand than to hand to the decoder.
  if (bytes.length <= 8) {
    let ascii = '';
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i]!;
      if (c >= 0x80) return decodeUtf8(bytes);
      ascii += String.fromCharCode(c);
    }
    return ascii;
  }
  return decodeUtf8(bytes);
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ProtoDecodeError('invalid utf-8 in string field');
  }
}
