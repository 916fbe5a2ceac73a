// AMQP 0-9-1 frames: an incremental decoder over socket chunks (whole frames in one chunk are
// sliced, not copied), method and content-header codecs, and writers for outgoing frames with
// bodies split at frame_max - 8. Malformed input comes back as values (FrameFault), never throws.

import { methodSpecs, type AmqpMethod, type MethodSpec } from './methods.js';
import { readLongStr, readShortStr, readTable, writeTable, Writer, WireError, type Cursor, type FieldTable } from './field-table.js';

export const FrameType = { Method: 1, Header: 2, Body: 3, Heartbeat: 8 } as const;
export const frameEnd = 0xce;

export interface Frame {
  readonly type: number;
  readonly channel: number;
  readonly payload: Buffer;
}

/** A decoding failure: reply code and text for connection.close. */
export interface FrameFault {
  readonly fault: true;
  readonly replyCode: number;
  readonly text: string;
  readonly classId: number;
  readonly methodId: number;
}

export function fault(replyCode: number, text: string, classId = 0, methodId = 0): FrameFault {
  return { fault: true, replyCode, text, classId, methodId };
}

export function isFault(v: unknown): v is FrameFault {
  return typeof v === 'object' && v !== null && (v as FrameFault).fault === true;
}

export class FrameDecoder {
  private pending: Buffer | null = null;
  constructor(private frameMaxBytes: number) {}

  setFrameMax(bytes: number): void {
    this.frameMaxBytes = bytes;
  }

  /** Appends a chunk and returns the whole frames it completes, or the first fault. */
  push(chunk: Buffer, out: Frame[]): FrameFault | null {
    let buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    let at = 0;
    while (buf.length - at >= 7) {
      const type = buf[at]!;
      const channel = buf.readUInt16BE(at + 1);
      const size = buf.readUInt32BE(at + 3);
      if (type !== 1 && type !== 2 && type !== 3 && type !== 8) {
        return fault(501, `FRAME_ERROR - unknown frame type ${type}`);
      }
      // RabbitMQ allows the payload up to frame_max - 8 plus an 8 byte fudge.
      if (this.frameMaxBytes > 0 && size > this.frameMaxBytes) {
        return fault(501, `FRAME_ERROR - type ${type}, all octets = <<>>: {frame_too_large,${size},${this.frameMaxBytes - 8}}`);
      }
      if (buf.length - at < 8 + size) break;
      if (buf[at + 7 + size] !== frameEnd) {
        return fault(501, `FRAME_ERROR - bad frame end octet 0x${buf[at + 7 + size]!.toString(16)} (expected 0xce)`);
      }
      out.push({ type, channel, payload: buf.subarray(at + 7, at + 7 + size) });
      at += 8 + size;
    }
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at));
    buf = Buffer.alloc(0);
    return null;
  }
}

// ---- protocol header -------------------------------------------------------------------------

export const protocolHeader = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);

/** 'ok', or the bytes to answer with before closing (RabbitMQ's version negotiation). */
export function checkProtocolHeader(h: Buffer): 'ok' | Buffer {
  if (h.equals(protocolHeader)) return 'ok';
  // AMQP 0-9 as sent by some old clients: accepted, start says 0-9.
  if (h.equals(Buffer.from([0x41, 0x4d, 0x51, 0x50, 1, 1, 0, 9]))) return 'ok';
  if (h.subarray(0, 4).toString('latin1') === 'AMQP' && h[4] === 0 && h[5] === 0 && h[6] === 9) return protocolHeader;
  return protocolHeader;
}

// ---- methods ---------------------------------------------------------------------------------

const specById = new Map<number, MethodSpec>();
const specByName = new Map<string, MethodSpec>();
for (const s of methodSpecs) {
  specById.set(s.classId * 65536 + s.methodId, s);
  specByName.set(s.name, s);
}

export function methodIds(name: AmqpMethod['name']): { classId: number; methodId: number } {
  const s = specByName.get(name)!;
  return { classId: s.classId, methodId: s.methodId };
}

export function decodeMethod(payload: Buffer): AmqpMethod | FrameFault {
  if (payload.length < 4) return fault(501, 'FRAME_ERROR - method frame shorter than 4 bytes');
  const classId = payload.readUInt16BE(0);
  const methodId = payload.readUInt16BE(2);
  const spec = specById.get(classId * 65536 + methodId);
  if (spec === undefined) {
    return fault(503, `COMMAND_INVALID - unknown method: class ${classId}, method ${methodId}`, classId, methodId);
  }
  const c: Cursor = { buf: payload, at: 4 };
  const out: Record<string, unknown> = { name: spec.name };
  try {
    let bits = 0;
    let bitIndex = 8;
    for (const [field, type] of spec.args) {
      if (type === 'bit') {
        if (bitIndex === 8) {
          if (c.at >= payload.length) throw new WireError('truncated bit field');
          bits = payload[c.at++]!;
          bitIndex = 0;
        }
        out[field] = (bits & (1 << bitIndex++)) !== 0;
        continue;
      }
      bitIndex = 8;
      out[field] = readArg(c, type);
    }
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    return fault(501, `FRAME_ERROR - cannot decode ${spec.name}: ${e.message}`, classId, methodId);
  }
  return out as unknown as AmqpMethod;
}

function readArg(c: Cursor, type: string): unknown {
  const b = c.buf;
  const take = (n: number): number => {
    if (c.at + n > b.length) throw new WireError(`truncated ${type} field`);
    const at = c.at;
    c.at += n;
    return at;
  };
  switch (type) {
    case 'octet': return b[take(1)];
    case 'short': return b.readUInt16BE(take(2));
    case 'long': return b.readUInt32BE(take(4));
    case 'longlong': case 'timestamp': {
      const v = b.readBigUInt64BE(take(8));
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError('64-bit value above 2^53');
      return Number(v);
    }
    case 'shortstr': return readShortStr(c);
    case 'longstr': return Buffer.from(readLongStr(c));
    case 'table': return readTable(c);
    default: throw new WireError(`unknown argument type ${type}`);
  }
}

function writeMethodPayload(w: Writer, method: AmqpMethod): void {
  const spec = specByName.get(method.name)!;
  w.u16(spec.classId);
  w.u16(spec.methodId);
  const m = method as unknown as Record<string, unknown>;
  let bitsAt = -1;
  let bitIndex = 8;
  for (const [field, type] of spec.args) {
    const v = m[field];
    if (type === 'bit') {
      if (bitIndex === 8) {
        bitsAt = w.at;
        w.u8(0);
        bitIndex = 0;
      }
      if (v) w.buf[bitsAt] = w.buf[bitsAt]! | (1 << bitIndex);
      bitIndex++;
      continue;
    }
    bitIndex = 8;
    switch (type) {
      case 'octet': w.u8(Number(v ?? 0)); break;
      case 'short': w.u16(Number(v ?? 0)); break;
      case 'long': w.u32(Number(v ?? 0)); break;
      case 'longlong': case 'timestamp': w.u64(Number(v ?? 0)); break;
      case 'shortstr': w.shortStr(String(v ?? '')); break;
      case 'longstr': w.longStr((v as Buffer | string | undefined) ?? ''); break;
      case 'table': writeTable(w, (v as FieldTable | undefined) ?? {}); break;
    }
  }
}

/** Appends one frame whose payload `body` writes, filling in the size afterwards. */
function frame(w: Writer, type: number, channel: number, body: () => void): void {
  w.u8(type);
  w.u16(channel);
  const sizeAt = w.at;
  w.u32(0);
  body();
  w.buf.writeUInt32BE(w.at - sizeAt - 4, sizeAt);
  w.u8(frameEnd);
}

export function encodeMethodFrame(channel: number, method: AmqpMethod): Buffer {
  const w = new Writer(128);
  frame(w, FrameType.Method, channel, () => writeMethodPayload(w, method));
  return w.result();
}

export const heartbeatFrame = Buffer.from([8, 0, 0, 0, 0, 0, 0, frameEnd]);

// ---- content ---------------------------------------------------------------------------------

export interface BasicProperties {
  contentType?: string;
  contentEncoding?: string;
  headers?: FieldTable;
  deliveryMode?: number;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  expiration?: string;
  messageId?: string;
  timestamp?: number;
  type?: string;
  userId?: string;
  appId?: string;
  clusterId?: string;
}

const propertyLayout: ReadonlyArray<readonly [keyof BasicProperties, 'shortstr' | 'table' | 'octet' | 'timestamp']> = [
  ['contentType', 'shortstr'], ['contentEncoding', 'shortstr'], ['headers', 'table'], ['deliveryMode', 'octet'],
  ['priority', 'octet'], ['correlationId', 'shortstr'], ['replyTo', 'shortstr'], ['expiration', 'shortstr'],
  ['messageId', 'shortstr'], ['timestamp', 'timestamp'], ['type', 'shortstr'], ['userId', 'shortstr'],
  ['appId', 'shortstr'], ['clusterId', 'shortstr'],
];

export interface ContentHeader {
  readonly classId: number;
  readonly bodySize: number;
  readonly properties: BasicProperties;
  /** Property flags + property bytes as received (a copy), for byte-exact relay. */
  readonly rawProperties: Buffer;
}

export function decodeContentHeader(payload: Buffer): ContentHeader | FrameFault {
  if (payload.length < 14) return fault(501, 'FRAME_ERROR - content header shorter than 14 bytes');
  const classId = payload.readUInt16BE(0);
  const size = payload.readBigUInt64BE(4);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) return fault(501, 'FRAME_ERROR - body size above 2^53');
  const flags = payload.readUInt16BE(12);
  if ((flags & 1) !== 0) return fault(501, 'FRAME_ERROR - property flags continuation is not supported');
  const c: Cursor = { buf: payload, at: 14 };
  const props: Record<string, unknown> = {};
  try {
    propertyLayout.forEach(([name, type], i) => {
      if ((flags & (1 << (15 - i))) === 0) return;
      props[name] = type === 'shortstr' ? readShortStr(c) : type === 'table' ? readTable(c) : readArg(c, type);
    });
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    return fault(501, `FRAME_ERROR - cannot decode content header: ${e.message}`);
  }
  if (c.at !== payload.length) return fault(501, 'FRAME_ERROR - content header has trailing bytes');
  return { classId, bodySize: Number(size), properties: props as BasicProperties, rawProperties: Buffer.from(payload.subarray(12)) };
}

/** Property flags and values, as they follow weight and body-size in a content header. */
export function encodeProperties(props: BasicProperties): Buffer {
  const w = new Writer(64);
  w.u16(0);
  let flags = 0;
  propertyLayout.forEach(([name, type], i) => {
    const v = props[name];
    if (v === undefined) return;
    flags |= 1 << (15 - i);
    if (type === 'shortstr') w.shortStr(v as string);
    else if (type === 'table') writeTable(w, v as FieldTable);
    else if (type === 'octet') w.u8(v as number);
    else w.u64(v as number);
  });
  w.buf.writeUInt16BE(flags, 0);
  return w.result();
}

/**
 * One message as frames: method, content header, body frames of at most frameMax - 8 bytes,
 * written into one Buffer (one socket write).
 */
export function encodeContentFrames(channel: number, method: AmqpMethod, rawProperties: Buffer, body: Buffer, frameMaxBytes: number): Buffer {
  const chunk = frameMaxBytes > 0 ? frameMaxBytes - 8 : body.length || 1;
  const frames = body.length === 0 ? 0 : Math.ceil(body.length / chunk);
  const w = new Writer(64 + 22 + rawProperties.length + body.length + frames * 8);
  frame(w, FrameType.Method, channel, () => writeMethodPayload(w, method));
  frame(w, FrameType.Header, channel, () => {
    w.u16(60);
    w.u16(0);
    w.u64(body.length);
    w.bytes(rawProperties);
  });
  for (let off = 0; off < body.length; off += chunk) {
    const part = body.subarray(off, Math.min(body.length, off + chunk));
    frame(w, FrameType.Body, channel, () => w.bytes(part));
  }
  return w.result();
}
