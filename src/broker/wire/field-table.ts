// Field tables with RabbitMQ's type tags. Decoded values keep their tag ({tag, value}) so a table
// written by a client re-encodes byte-identically; broker-made tables may use plain JS values and
// then get only the tags every client reads (t S l T F A d V).

export interface Tagged {
  readonly tag: string;
  readonly value: unknown;
}
export type FieldTable = { readonly [key: string]: unknown };

export class WireError extends Error {
  override readonly name = 'WireError';
}

export interface Cursor {
  buf: Buffer;
  at: number;
}

function need(c: Cursor, n: number): void {
  if (c.at + n > c.buf.length) throw new WireError(`truncated field at offset ${c.at}`);
}

export function readShortStr(c: Cursor): string {
  need(c, 1);
  const len = c.buf[c.at]!;
  need(c, 1 + len);
  const s = c.buf.toString('utf8', c.at + 1, c.at + 1 + len);
  c.at += 1 + len;
  return s;
}

export function readLongStr(c: Cursor): Buffer {
  need(c, 4);
  const len = c.buf.readUInt32BE(c.at);
  need(c, 4 + len);
  const b = c.buf.subarray(c.at + 4, c.at + 4 + len);
  c.at += 4 + len;
  return b;
}

function readInt64(c: Cursor): number | bigint {
  need(c, 8);
  const v = c.buf.readBigInt64BE(c.at);
  c.at += 8;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function readValue(c: Cursor, depth: number): Tagged {
  need(c, 1);
  const tag = String.fromCharCode(c.buf[c.at]!);
  c.at += 1;
  const b = c.buf;
  const fixed = (n: number, read: (at: number) => unknown): Tagged => {
    need(c, n);
    const value = read(c.at);
    c.at += n;
    return { tag, value };
  };
  switch (tag) {
    case 't': return fixed(1, (at) => b[at] !== 0);
    case 'b': return fixed(1, (at) => b.readInt8(at));
    case 'B': return fixed(1, (at) => b.readUInt8(at));
    case 's': case 'U': return fixed(2, (at) => b.readInt16BE(at));
    case 'u': return fixed(2, (at) => b.readUInt16BE(at));
    case 'I': return fixed(4, (at) => b.readInt32BE(at));
    case 'i': return fixed(4, (at) => b.readUInt32BE(at));
    case 'l': case 'L': return { tag, value: readInt64(c) };
    case 'f': return fixed(4, (at) => b.readFloatBE(at));
    case 'd': return fixed(8, (at) => b.readDoubleBE(at));
    case 'D': return fixed(5, (at) => ({ scale: b[at]!, value: b.readUInt32BE(at + 1) }));
    case 'T': return { tag, value: readInt64(c) };
    case 'S': case 'x': return { tag, value: Buffer.from(readLongStr(c)) };
    case 'A': {
      const body = readLongStr(c);
      const inner: Cursor = { buf: body, at: 0 };
      const items: Tagged[] = [];
      while (inner.at < body.length) items.push(readValue(inner, depth + 1));
      return { tag, value: items };
    }
    case 'F': return { tag, value: readTableAt(c, depth + 1) };
    case 'V': return { tag, value: null };
    default:
      throw new WireError(`unknown field table type '${tag}' (0x${tag.charCodeAt(0).toString(16)})`);
  }
}

function readTableAt(c: Cursor, depth: number): FieldTable {
  if (depth > 64) throw new WireError('field table nested too deeply');
  const body = readLongStr(c);
  const inner: Cursor = { buf: body, at: 0 };
  const out: Record<string, unknown> = {};
  while (inner.at < body.length) {
    const key = readShortStr(inner);
    out[key] = readValue(inner, depth);
  }
  return out;
}

export function readTable(c: Cursor): FieldTable {
  return readTableAt(c, 0);
}

// ---- encoding --------------------------------------------------------------------------------

export class Writer {
  buf: Buffer;
  at = 0;
  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }
  ensure(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
  u8(v: number): void { this.ensure(1); this.buf[this.at++] = v & 0xff; }
  u16(v: number): void { this.ensure(2); this.buf.writeUInt16BE(v & 0xffff, this.at); this.at += 2; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32BE(v >>> 0, this.at); this.at += 4; }
  u64(v: number | bigint): void { this.ensure(8); this.buf.writeBigUInt64BE(BigInt(v), this.at); this.at += 8; }
  i64(v: number | bigint): void { this.ensure(8); this.buf.writeBigInt64BE(BigInt(v), this.at); this.at += 8; }
  bytes(b: Buffer): void { this.ensure(b.length); b.copy(this.buf, this.at); this.at += b.length; }
  shortStr(s: string): void {
    const len = Buffer.byteLength(s);
    if (len > 255) throw new WireError(`short string of ${len} bytes is longer than 255`);
    this.u8(len);
    this.ensure(len);
    this.buf.write(s, this.at, 'utf8');
    this.at += len;
  }
  longStr(b: Buffer | string): void {
    const buf = typeof b === 'string' ? Buffer.from(b) : b;
    this.u32(buf.length);
    this.bytes(buf);
  }
  /** Reserves a 4-byte length, runs `body`, then fills the length in. */
  sized(body: () => void): void {
    const start = this.at;
    this.u32(0);
    body();
    this.buf.writeUInt32BE(this.at - start - 4, start);
  }
  result(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

function isTagged(v: unknown): v is Tagged {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v)
    && typeof (v as Tagged).tag === 'string' && 'value' in v && Object.keys(v).length === 2;
}

function writeTagged(w: Writer, tag: string, value: unknown): void {
  w.u8(tag.charCodeAt(0));
  switch (tag) {
    case 't': w.u8(value ? 1 : 0); return;
    case 'b': w.ensure(1); w.buf.writeInt8(Number(value), w.at); w.at += 1; return;
    case 'B': w.u8(Number(value)); return;
    case 's': case 'U': w.ensure(2); w.buf.writeInt16BE(Number(value), w.at); w.at += 2; return;
    case 'u': w.u16(Number(value)); return;
    case 'I': w.ensure(4); w.buf.writeInt32BE(Number(value), w.at); w.at += 4; return;
    case 'i': w.u32(Number(value)); return;
    case 'l': case 'L': case 'T': w.i64(value as number | bigint); return;
    case 'f': w.ensure(4); w.buf.writeFloatBE(Number(value), w.at); w.at += 4; return;
    case 'd': w.ensure(8); w.buf.writeDoubleBE(Number(value), w.at); w.at += 8; return;
    case 'D': { const d = value as { scale: number; value: number }; w.u8(d.scale); w.u32(d.value); return; }
    case 'S': case 'x': w.longStr(value as Buffer | string); return;
    case 'A': w.sized(() => { for (const item of value as unknown[]) writeValue(w, item); }); return;
    case 'F': writeTable(w, value as FieldTable); return;
    case 'V': return;
    default: throw new WireError(`cannot encode field type '${tag}'`);
  }
}

/** Plain JS values get the tags every client reads. */
function writeValue(w: Writer, v: unknown): void {
  if (isTagged(v)) return writeTagged(w, v.tag, v.value);
  if (v === null || v === undefined) return writeTagged(w, 'V', null);
  if (typeof v === 'boolean') return writeTagged(w, 't', v);
  if (typeof v === 'string' || Buffer.isBuffer(v)) return writeTagged(w, 'S', v);
  if (typeof v === 'bigint') return writeTagged(w, 'l', v);
  if (typeof v === 'number') return writeTagged(w, Number.isInteger(v) ? 'l' : 'd', v);
  if (v instanceof Date) return writeTagged(w, 'T', Math.floor(v.getTime() / 1000));
  if (Array.isArray(v)) return writeTagged(w, 'A', v);
  return writeTagged(w, 'F', v);
}

export function writeTable(w: Writer, table: FieldTable): void {
  w.sized(() => {
    for (const [key, v] of Object.entries(table)) {
      if (v === undefined) continue;
      w.shortStr(key);
      writeValue(w, v);
    }
  });
}

/** Reads a plain JS value out of a decoded (tagged) or plain value: strings from S/x as utf-8. */
export function plain(v: unknown): unknown {
  if (!isTagged(v)) return Buffer.isBuffer(v) ? v.toString('utf8') : v;
  if (v.tag === 'S' || v.tag === 'x') return Buffer.isBuffer(v.value) ? v.value.toString('utf8') : v.value;
  if (v.tag === 'A') return (v.value as unknown[]).map(plain);
  return v.value;
}
