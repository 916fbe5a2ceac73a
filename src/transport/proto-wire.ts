// Protobuf wire format (varints, length-delimited fields) for the few messages in proto/ that the
// transport and gossip encode by hand: fewer allocations than reflection, and no extra dependency.

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

/** A growable writer; `finish` returns a view of exactly the bytes written. */
export class ProtoWriter {
  private buf: Uint8Array;
  private pos = 0;

  constructor(initialBytes = 256) {
    this.buf = new Uint8Array(initialBytes);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
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

  string(field: number, value: string): this {
    if (value.length === 0) return this;
    return this.bytes(field, textEncoder.encode(value));
  }

  uint(field: number, value: number): this {
    if (value === 0) return this;
    return this.tag(field, WireType.varint).varint(value);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

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
      const value = this.buf.subarray(this.pos, this.pos + len);
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

export function decodeString(bytes: Uint8Array): string {
  try {
    return textDecoder.decode(bytes);
  } catch {
    throw new ProtoDecodeError('invalid utf-8 in string field');
  }
}
