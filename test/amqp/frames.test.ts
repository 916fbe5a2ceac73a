// The frame decoder over arbitrary chunkings, zero-copy when a frame arrives whole, FRAME_ERROR
// values for bad ends, unknown types and oversize frames; the protocol header check.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeMethodFrame, FrameDecoder, heartbeatFrame, isProtocolError, parseProtocolHeader, protocolHeader,
  type Frame, type ProtocolError,
} from '../../src/amqp/index.js';

function frame(type: number, channel: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(7);
  head[0] = type;
  head.writeUInt16BE(channel, 1);
  head.writeUInt32BE(payload.length, 3);
  return Buffer.concat([head, payload, Buffer.from([0xce])]);
}

const anyFrame = fc.record({
  type: fc.constantFrom(1, 2, 3, 8),
  channel: fc.integer({ min: 0, max: 65535 }),
  payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
});

/** Splits `bytes` at the given cut points (sorted, deduplicated, in range). */
function cut(bytes: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, bytes.length]) {
    out.push(Buffer.from(bytes.subarray(prev, p)));
    prev = p;
  }
  return out;
}

function decodeAll(d: FrameDecoder, chunks: Buffer[]): { frames: Frame[]; error: ProtocolError | null } {
  const frames: Frame[] = [];
  for (const c of chunks) {
    const error = d.push(c, frames);
    if (error !== null) return { frames, error };
  }
  return { frames, error: null };
}

describe('FrameDecoder', () => {
  it('yields the same frames however the stream is cut into chunks', () => {
    fc.assert(fc.property(fc.array(anyFrame, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, points) => {
      const stream = Buffer.concat(frames.map((f) => frame(f.type, f.channel, f.payload)));
      const d = new FrameDecoder(8192);
      const { frames: got, error } = decodeAll(d, cut(stream, points));
      expect(error).toBeNull();
      expect(got.map((f) => ({ type: f.type, channel: f.channel, payload: Buffer.from(f.payload) }))).toEqual(frames);
      expect(d.bufferedBytes).toBe(0);
    }), { numRuns: 500 });
  });

  it('slices frames that arrive whole instead of copying them', () => {
    const chunk = Buffer.concat([frame(1, 1, Buffer.from('abc')), frame(3, 1, Buffer.alloc(100, 1)), frame(8, 0, Buffer.alloc(0))]);
    const out: Frame[] = [];
    expect(new FrameDecoder().push(chunk, out)).toBeNull();
    expect(out.map((f) => f.type)).toEqual([1, 3, 8]);
    for (const f of out) expect(f.payload.buffer).toBe(chunk.buffer);
    expect(out[1]!.payload.byteOffset).toBe(chunk.byteOffset + 11 + 7);
  });

  it('copies a frame split across chunks once, when it completes', () => {
    const bytes = frame(3, 2, Buffer.alloc(5000, 9));
    const d = new FrameDecoder();
    const out: Frame[] = [];
    expect(d.push(bytes.subarray(0, 3), out)).toBeNull();
    expect(d.push(bytes.subarray(3, 4000), out)).toBeNull();
    expect(out).toEqual([]);
    expect(d.bufferedBytes).toBe(4000);
    expect(d.push(bytes.subarray(4000), out)).toBeNull();
    expect(out[0]!.payload).toEqual(Buffer.alloc(5000, 9));
    expect(d.bufferedBytes).toBe(0);
  });

  it('refuses a bad frame-end octet with FRAME_ERROR 501, whole or split', () => {
    const bad = frame(1, 1, Buffer.from([0, 10, 0, 40]));
    bad[bad.length - 1] = 0x00;
    for (const chunks of [[bad], [bad.subarray(0, 5), bad.subarray(5)]]) {
      const { error } = decodeAll(new FrameDecoder(), chunks);
      expect(error).toMatchObject({ scope: 'connection', replyCode: 501, classId: 0, methodId: 0 });
      expect(error?.replyText).toMatch(/^FRAME_ERROR - bad frame end octet 0x00 \(expected 0xce\)/);
    }
  });

  it('refuses an unknown frame type as soon as the header arrives', () => {
    const { error } = decodeAll(new FrameDecoder(), [Buffer.from([4, 0, 1, 0, 0]), Buffer.from([0, 0])]);
    expect(error?.replyText).toBe('FRAME_ERROR - unknown frame type 4 on channel 1');
  });

  it('refuses a frame larger than frame_max before its payload arrives', () => {
    const head = Buffer.from([3, 0, 1, 0, 0, 0x20, 0x01]); // 8193-byte payload
    const { error } = decodeAll(new FrameDecoder(8192), [head]);
    expect(error).toMatchObject({ replyCode: 501 });
    expect(error?.replyText).toMatch(/8193-byte payload, larger than frame_max 8192/);
    // A payload of exactly frame_max is accepted, as RabbitMQ allows 8 bytes of slack.
    expect(decodeAll(new FrameDecoder(8192), [frame(3, 1, Buffer.alloc(8192))]).error).toBeNull();
  });

  it('applies a frame_max raised after tune', () => {
    const big = frame(3, 1, Buffer.alloc(100_000));
    const d = new FrameDecoder(8192);
    d.setFrameMax(131072);
    const { frames, error } = decodeAll(d, cut(big, [1, 60_000]));
    expect(error).toBeNull();
    expect(frames[0]!.payload.length).toBe(100_000);
  });

  it('keeps reporting the first error: the stream cannot resynchronise', () => {
    const d = new FrameDecoder();
    const first = d.push(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0xce]), []);
    expect(d.push(heartbeatFrame, [])).toBe(first);
  });

  it('never throws on random bytes: frames or one FRAME_ERROR', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }), (chunks) => {
      const { error } = decodeAll(new FrameDecoder(), chunks.map((c) => Buffer.from(c)));
      if (error !== null) expect(error.replyCode).toBe(501);
    }), { numRuns: 1000 });
  });

  it('decodes what encodeMethodFrame writes, and the heartbeat frame', () => {
    const out: Frame[] = [];
    const bytes = Buffer.concat([encodeMethodFrame(5, { name: 'channel.open', outOfBand: '' }), heartbeatFrame]);
    expect(new FrameDecoder().push(bytes, out)).toBeNull();
    expect(out.map((f) => [f.type, f.channel, f.payload.length])).toEqual([[1, 5, 5], [8, 0, 0]]);
  });
});

describe('protocol header', () => {
  it('accepts AMQP 0-9-1 and 0-9', () => {
    expect(parseProtocolHeader(protocolHeader)).toEqual({ kind: 'accept', version: '0-9-1' });
    expect(parseProtocolHeader(Buffer.from([0x41, 0x4d, 0x51, 0x50, 1, 1, 0, 9]))).toEqual({ kind: 'accept', version: '0-9' });
  });

  it('waits for the rest of a header that starts right', () => {
    expect(parseProtocolHeader(Buffer.from('AMQ'))).toEqual({ kind: 'incomplete' });
    expect(parseProtocolHeader(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0]))).toEqual({ kind: 'incomplete' });
  });

  it('answers other AMQP versions with the 0-9-1 header', () => {
    const r = parseProtocolHeader(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 0]));
    expect(r).toMatchObject({ kind: 'refuse', reply: protocolHeader });
    expect(r.kind === 'refuse' && r.reason).toMatch(/unsupported AMQP version 0-0-9-0/);
    expect(parseProtocolHeader(Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]))).toMatchObject({ kind: 'refuse' });
  });

  it('names HTTP and TLS on the AMQP port', () => {
    const http = parseProtocolHeader(Buffer.from('GET / HTTP/1.1\r\n'));
    expect(http.kind === 'refuse' && http.reason).toBe('HTTP request on the AMQP port');
    const tls = parseProtocolHeader(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
    expect(tls.kind === 'refuse' && tls.reason).toBe('TLS handshake on a plain AMQP port');
    const junk = parseProtocolHeader(Buffer.from([0x41, 0x00]));
    expect(junk.kind === 'refuse' && junk.reason).toMatch(/not an AMQP protocol header/);
    expect(isProtocolError(junk)).toBe(false);
  });
});
