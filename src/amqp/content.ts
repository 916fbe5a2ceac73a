// Content: the header frame (class, body size, basic properties, raw property bytes for relay) and
// the writer that emits method + header + body frames, bodies split at frame_max - 8.

import { assert } from '../lib/assert.js';
import { readBasicProperties, writeBasicProperties, type AmqpMethod, type BasicProperties } from './generated-methods.js';
import { FrameType, frameEndOctet } from './frame-decoder.js';
import { bodyCopyMaxBytes, frameHeaderBytes, frameOverheadBytes } from './limits.js';
import { writeMethodFrame } from './methods.js';
import { frameError, type ProtocolError } from './reply-codes.js';
import { DecodeError, Reader, Writer } from './wire.js';

export interface ContentHeader {
  readonly classId: number;
  /** Body size as declared; at most 2^53 - 1 (larger sizes are refused with FRAME_ERROR). */
  readonly bodySize: number;
  readonly properties: BasicProperties;
  /** Property flags and property bytes exactly as received (a copy), to relay a message unchanged. */
  readonly rawProperties: Buffer;
}

/** Flag bits 1 and 0 (unused, continuation) must be clear: basic has 14 properties. */
const unusedFlagBits = 0x0003;

/** Decodes a content header payload; malformed input gives FRAME_ERROR 501. */
export function decodeContentHeader(payload: Buffer): ContentHeader | ProtocolError {
  const r = new Reader(payload, 0, payload.length);
  try {
    const classId = r.short();
    r.short(); // weight: always 0, ignored as RabbitMQ does
    const bodySize = r.longlong('body size');
    const flagsAt = r.pos;
    const flags = r.short();
    if ((flags & unusedFlagBits) !== 0) {
      return frameError(`content header property flags 0x${flags.toString(16)} use bits basic does not define`, classId);
    }
    const properties = readBasicProperties(flags, r);
    if (r.pos !== r.end) return frameError(`content header has ${r.end - r.pos} bytes after its properties`, classId);
    return { classId, bodySize, properties, rawProperties: Buffer.from(payload.subarray(flagsAt)) };
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return frameError(`cannot decode content header: ${e.message}`);
  }
}

const scratch = new Writer(4096);

/** Property flags and property values as a content header carries them after the body size. */
export function encodeBasicProperties(properties: BasicProperties): Buffer {
  scratch.reset();
  writeBasicProperties(scratch, properties);
  return scratch.take();
}

function writeFrameHeader(w: Writer, type: FrameType, channel: number, size: number): void {
  w.ensure(frameHeaderBytes);
  w.buf[w.pos] = type;
  w.buf.writeUInt16BE(channel, w.pos + 1);
  w.buf.writeUInt32BE(size, w.pos + 3);
  w.pos += frameHeaderBytes;
}

function writeHeaderFrame(w: Writer, channel: number, classId: number, bodySize: number, rawProperties: Buffer): void {
  writeFrameHeader(w, FrameType.header, channel, 12 + rawProperties.length);
  w.short(classId);
  w.short(0);
  w.longlong(bodySize);
  w.bytes(rawProperties);
  w.octet(frameEndOctet);
}

/**
 * A message as frames: `method` (basic.deliver, basic.get-ok, basic.return, basic.publish), a content
 * header with `rawProperties` (from decodeContentHeader or encodeBasicProperties), and body frames of
 * at most frameMaxBytes - 8 bytes (frameMaxBytes 0: one body frame). An empty body has no body frame.
 * `body` may be several Buffers (as received) and is sent as their concatenation. Bodies up to 16 KiB
 * are copied into one Buffer; longer bodies are not copied: the result alternates small frame-boundary
 * Buffers with subarrays of the body, for one writev.
 */
export function encodeContentFrames(
  channel: number,
  method: AmqpMethod,
  rawProperties: Buffer,
  body: Buffer | readonly Buffer[],
  frameMaxBytes: number,
  classId = 60,
): Buffer[] {
  assert(frameMaxBytes === 0 || frameMaxBytes > frameOverheadBytes, `frame_max too small: ${frameMaxBytes}`);
  const parts: readonly Buffer[] = Buffer.isBuffer(body) ? [body] : body;
  let size = 0;
  for (const p of parts) size += p.length;
  const piece = frameMaxBytes === 0 ? Math.max(size, 1) : frameMaxBytes - frameOverheadBytes;
  const w = scratch;
  w.reset();
  writeMethodFrame(w, channel, method);
  writeHeaderFrame(w, channel, classId, size, rawProperties);
  const copy = size <= bodyCopyMaxBytes;
  const out: Buffer[] = [];
  let frameLeft = 0; // bytes still to come in the current body frame
  let bodyLeft = size;
  for (const p of parts) {
    for (let at = 0; at < p.length;) {
      if (frameLeft === 0) {
        frameLeft = Math.min(piece, bodyLeft);
        writeFrameHeader(w, FrameType.body, channel, frameLeft);
      }
      const n = Math.min(frameLeft, p.length - at);
      if (copy) {
        w.bytes(p.subarray(at, at + n));
      } else {
        if (w.pos > 0) out.push(w.take());
        out.push(p.subarray(at, at + n));
        w.reset();
      }
      at += n;
      frameLeft -= n;
      bodyLeft -= n;
      if (frameLeft === 0) w.octet(frameEndOctet);
    }
  }
  out.push(w.take());
  return out;
}
