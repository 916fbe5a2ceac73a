// The incremental frame decoder: socket chunks in, whole frames out. A frame that lies whole in
// one chunk is a subarray of it (no copy); a frame split across chunks is copied once, when complete.

import { assert } from '../lib/assert.js';
import { frameHeaderBytes, frameMinBytes, frameOverheadBytes } from './limits.js';
import { frameError, type ProtocolError } from './reply-codes.js';

export const FrameType = { method: 1, header: 2, body: 3, heartbeat: 8 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];
export const frameEndOctet = 0xce;

export interface Frame {
  readonly type: FrameType;
  readonly channel: number;
  /** The payload; shares memory with the pushed chunk when the frame arrived whole. */
  readonly payload: Buffer;
}

/** The heartbeat frame: type 8, channel 0, empty payload. */
export const heartbeatFrame: Buffer = Buffer.from([8, 0, 0, 0, 0, 0, 0, frameEndOctet]);

function isFrameType(t: number): t is FrameType {
  return t === 1 || t === 2 || t === 3 || t === 8;
}

export class FrameDecoder {
  private frameMaxBytes: number;
  /** Bytes of an incomplete frame, in arrival order; together shorter than that frame. */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** Whole length (header, payload, end octet) of the pending frame, once its header is known. */
  private pendingFrameBytes = 0;
  /** The first error; the stream cannot be resynchronised after it, so it is sticky. */
  private failure: ProtocolError | null = null;

  /** `frameMaxBytes` is the limit before tune-ok: 8192 (RabbitMQ's initial_frame_max). */
  constructor(frameMaxBytes: number = frameMinBytes) {
    this.frameMaxBytes = 0;
    this.setFrameMax(frameMaxBytes);
  }

  /** The negotiated frame_max. Like RabbitMQ, payloads up to frame_max bytes are accepted (8 bytes of slack). */
  setFrameMax(bytes: number): void {
    assert(Number.isInteger(bytes) && bytes >= frameOverheadBytes && bytes <= 0xffff_ffff, `frame_max out of range: ${bytes}`);
    this.frameMaxBytes = bytes;
  }

  /** Bytes held for a frame that has not arrived whole yet. */
  get bufferedBytes(): number {
    return this.partsBytes;
  }

  /** Decodes the frames `chunk` completes into `out`; returns the error that ends the stream, if any. */
  push(chunk: Buffer, out: Frame[]): ProtocolError | null {
    if (this.failure !== null) return this.failure;
    let pos = 0;
    if (this.partsBytes > 0) {
      const resumed = this.resume(chunk, out);
      if (typeof resumed !== 'number') return this.fail(resumed);
      pos = resumed;
    }
    while (chunk.length - pos >= frameHeaderBytes) {
      const type = chunk[pos]!;
      const channel = chunk.readUInt16BE(pos + 1);
      const size = chunk.readUInt32BE(pos + 3);
      const bad = this.checkHeader(type, channel, size);
      if (bad !== null) return this.fail(bad);
      const end = pos + frameHeaderBytes + size;
      if (end >= chunk.length) break;
      if (chunk[end] !== frameEndOctet) return this.fail(badEnd(chunk[end]!, type, channel));
      out.push({ type: type as FrameType, channel, payload: chunk.subarray(pos + frameHeaderBytes, end) });
      pos = end + 1;
    }
    if (pos < chunk.length) this.hold(pos === 0 ? chunk : chunk.subarray(pos));
    return null;
  }

  private hold(rest: Buffer): void {
    this.parts.push(rest);
    this.partsBytes = rest.length;
    this.pendingFrameBytes = 0;
    if (rest.length >= frameHeaderBytes) this.pendingFrameBytes = rest.readUInt32BE(3) + frameOverheadBytes;
  }

  /** Adds `chunk` to the pending frame; returns where whole-chunk parsing resumes, or an error. */
  private resume(chunk: Buffer, out: Frame[]): number | ProtocolError {
    const before = this.partsBytes;
    this.parts.push(chunk);
    this.partsBytes += chunk.length;
    if (this.pendingFrameBytes === 0) {
      if (this.partsBytes < frameHeaderBytes) return chunk.length;
      const header = Buffer.concat(this.parts, frameHeaderBytes);
      const bad = this.checkHeader(header[0]!, header.readUInt16BE(1), header.readUInt32BE(3));
      if (bad !== null) return bad;
      this.pendingFrameBytes = header.readUInt32BE(3) + frameOverheadBytes;
    }
    const need = this.pendingFrameBytes;
    if (this.partsBytes < need) return chunk.length;
    const whole = Buffer.concat(this.parts, need);
    this.parts = [];
    this.partsBytes = 0;
    this.pendingFrameBytes = 0;
    const type = whole[0]!;
    const channel = whole.readUInt16BE(1);
    if (whole[need - 1] !== frameEndOctet) return badEnd(whole[need - 1]!, type, channel);
    out.push({ type: type as FrameType, channel, payload: whole.subarray(frameHeaderBytes, need - 1) });
    return need - before;
  }

  private checkHeader(type: number, channel: number, size: number): ProtocolError | null {
    if (!isFrameType(type)) return frameError(`unknown frame type ${type} on channel ${channel}`);
    if (size > this.frameMaxBytes) {
      return frameError(`frame of type ${type} on channel ${channel} has a ${size}-byte payload, `
        + `larger than frame_max ${this.frameMaxBytes} allows`);
    }
    return null;
  }

  private fail(e: ProtocolError): ProtocolError {
    this.failure = e;
    this.parts = [];
    this.partsBytes = 0;
    return e;
  }
}

function badEnd(octet: number, type: number, channel: number): ProtocolError {
  return frameError(`bad frame end octet 0x${octet.toString(16).padStart(2, '0')} (expected 0xce) `
    + `after a frame of type ${type} on channel ${channel}`);
}
