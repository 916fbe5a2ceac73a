// Content: header frames from amqplib decode to the properties it meant, properties round-trip with
// their raw bytes, bodies split at frame_max - 8 and reassemble, malformed headers give FRAME_ERROR.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeContentHeader, decodeMethod, encodeBasicProperties, encodeContentFrames, FrameDecoder, isProtocolError,
  type BasicProperties, type ContentHeader, type Frame,
} from '../../src/amqp/index.js';
import { basicProperties } from './arbitraries.js';
import { amqplibDefs } from './amqplib.js';

function header(props: BasicProperties, bodySize: number): Buffer {
  const raw = encodeBasicProperties(props);
  const fixed = Buffer.alloc(12);
  fixed.writeUInt16BE(60, 0);
  fixed.writeUInt32BE(Math.floor(bodySize / 2 ** 32), 4);
  fixed.writeUInt32BE(bodySize % 2 ** 32, 8);
  return Buffer.concat([fixed, raw]);
}

function ok(h: ContentHeader | ReturnType<typeof decodeContentHeader>): ContentHeader {
  if (isProtocolError(h)) throw new Error(h.replyText);
  return h;
}

const deliver = { name: 'basic.deliver', consumerTag: 'amq.ctag-1', deliveryTag: 7, redelivered: false, exchange: 'ex', routingKey: 'rk' } as const;

describe('content header', () => {
  it('round-trips random properties and keeps the raw property bytes', () => {
    fc.assert(fc.property(basicProperties, fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (props, size) => {
      const payload = header(props, size);
      const h = ok(decodeContentHeader(payload));
      expect(h.classId).toBe(60);
      expect(h.bodySize).toBe(size);
      expect(h.properties).toEqual(props);
      expect(h.rawProperties).toEqual(payload.subarray(12));
      expect(encodeBasicProperties(h.properties)).toEqual(h.rawProperties);
    }), { numRuns: 300 });
  });

  it('reads the header frame amqplib writes for a publish', () => {
    const frame = amqplibDefs.encodeProperties(60, 1, 1024, {
      contentType: 'application/json', headers: { 'x-retries': 3, who: 'me' }, deliveryMode: 2, priority: 5,
      correlationId: 'c1', replyTo: 'amq.rabbitmq.reply-to', expiration: '60000', messageId: 'm1', timestamp: 1700000000,
      type: 't', userId: 'guest', appId: 'app',
    });
    const h = ok(decodeContentHeader(frame.subarray(7, frame.length - 1)));
    expect(h.bodySize).toBe(1024);
    expect(h.properties).toMatchObject({ contentType: 'application/json', deliveryMode: 2, priority: 5, correlationId: 'c1',
      replyTo: 'amq.rabbitmq.reply-to', expiration: '60000', messageId: 'm1', timestamp: 1700000000, type: 't', userId: 'guest', appId: 'app' });
    expect(h.properties.headers).toEqual({ 'x-retries': { tag: 'b', value: 3 }, who: { tag: 'S', value: Buffer.from('me') } });
    expect(h.properties.clusterId).toBeUndefined();
    expect(encodeBasicProperties(h.properties)).toEqual(h.rawProperties);
  });

  it('refuses malformed headers with FRAME_ERROR 501', () => {
    const good = header({ contentType: 'text/plain' }, 5);
    const cases: Array<[Buffer, RegExp]> = [
      [good.subarray(0, 10), /truncated/],
      [good.subarray(0, good.length - 1), /truncated short string/],
      [Buffer.concat([good, Buffer.from([1])]), /1 bytes after its properties/],
      [Buffer.from([0, 60, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0]), /body size above 2\^53 - 1/],
      [Buffer.from([0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 1]), /property flags 0x1 use bits/],
    ];
    for (const [payload, text] of cases) {
      const e = decodeContentHeader(payload);
      expect(e).toMatchObject({ kind: 'protocol-error', scope: 'connection', replyCode: 501 });
      expect(isProtocolError(e) && e.replyText).toMatch(text);
    }
  });
});

function framesOf(buffers: Buffer[], frameMax: number): Frame[] {
  const out: Frame[] = [];
  const d = new FrameDecoder(frameMax === 0 ? 0xffff_ffff : Math.max(frameMax, 8192));
  for (const b of buffers) expect(d.push(b, out)).toBeNull();
  return out;
}

describe('encodeContentFrames', () => {
  it('splits bodies at frame_max - 8 and reassembles to the same message', () => {
    const sizes = fc.constantFrom(0, 1, 4095, 4096, 8184, 8185, 16384, 16385, 20000, 100_000);
    const cuts = fc.array(fc.nat(), { maxLength: 4 });
    fc.assert(fc.property(sizes, fc.constantFrom(4096, 8192, 131072), basicProperties, cuts, (size, frameMax, props, at) => {
      const body = Buffer.alloc(size);
      for (let i = 0; i < size; i += 997) body[i] = i & 0xff;
      const raw = encodeBasicProperties(props);
      // The body as one Buffer or as the several Buffers it was received in.
      const points = [...new Set(at.map((p) => p % (size + 1)))].sort((a, b) => a - b);
      const parts = [0, ...points].map((p, i, all) => body.subarray(p, all[i + 1] ?? size));
      const buffers = encodeContentFrames(4, deliver, raw, points.length === 0 ? body : parts, frameMax);
      const frames = framesOf(buffers, frameMax);
      expect(frames.every((f) => f.channel === 4)).toBe(true);
      expect(decodeMethod(frames[0]!.payload)).toEqual(deliver);
      const h = ok(decodeContentHeader(frames[1]!.payload));
      expect(h.bodySize).toBe(size);
      expect(h.rawProperties).toEqual(raw);
      const bodies = frames.slice(2);
      expect(bodies.length).toBe(Math.ceil(size / (frameMax - 8)));
      expect(bodies.every((f) => f.type === 3 && f.payload.length <= frameMax - 8)).toBe(true);
      expect(Buffer.concat(bodies.map((f) => f.payload)).equals(body)).toBe(true);
    }), { numRuns: 60 });
  });

  it('writes a small message as one Buffer and a large one without copying its body', () => {
    const raw = encodeBasicProperties({ deliveryMode: 2 });
    expect(encodeContentFrames(1, deliver, raw, Buffer.alloc(1024), 131072)).toHaveLength(1);
    const big = Buffer.alloc(300_000, 1);
    const parts = encodeContentFrames(1, deliver, raw, big, 131072);
    const slices = parts.filter((p) => p.buffer === big.buffer);
    expect(slices.map((p) => p.length)).toEqual([131064, 131064, 37872]);
    expect(parts.length).toBe(7);
  });

  it('sends one body frame when frame_max is 0 (no limit), none for an empty body', () => {
    const raw = encodeBasicProperties({});
    expect(framesOf(encodeContentFrames(1, deliver, raw, Buffer.alloc(50_000), 0), 0).map((f) => f.type)).toEqual([1, 2, 3]);
    expect(framesOf(encodeContentFrames(1, deliver, raw, Buffer.alloc(0), 8192), 8192).map((f) => f.type)).toEqual([1, 2]);
  });
});
