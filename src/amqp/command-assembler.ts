// Per-channel assembly of frames into commands: a method, or a content method with its header and
// body. Frame-order mistakes are UNEXPECTED_FRAME 505, body overruns FRAME_ERROR 501 (as RabbitMQ).

import { assert } from '../lib/assert.js';
import { decodeContentHeader, type ContentHeader } from './content.js';
import { FrameType, type Frame } from './frame-decoder.js';
import type { AmqpMethod } from './generated-methods.js';
import { messageHardMaxBytes } from './limits.js';
import { decodeMethod, methodInfo } from './methods.js';
import { channelError, connectionError, frameError, isProtocolError, ReplyCode, type ProtocolError } from './reply-codes.js';

export interface Content {
  readonly header: ContentHeader;
  /**
   * The body. A body that arrived in one frame shares memory with the socket chunk it came in:
   * copy it (Buffer.from) before keeping it long, or the whole chunk stays alive with it.
   */
  readonly body: Buffer;
}

export type Command =
  | { readonly method: AmqpMethod; readonly content: null }
  | { readonly method: AmqpMethod; readonly content: Content };

const frameNames: Readonly<Record<number, string>> = { 1: 'method', 2: 'content header', 3: 'content body', 8: 'heartbeat' };

export class CommandAssembler {
  private method: AmqpMethod | null = null;
  private header: ContentHeader | null = null;
  private parts: Buffer[] = [];
  private remainingBytes = 0;

  /** `maxMessageBytes`: larger declared bodies are refused with PRECONDITION_FAILED 406 (channel). */
  constructor(private readonly maxMessageBytes: number) {
    assert(Number.isSafeInteger(maxMessageBytes) && maxMessageBytes >= 0, 'maxMessageBytes');
  }

  /** True between a content method and the end of its body. */
  get inContent(): boolean {
    return this.method !== null;
  }

  /** Feeds one frame of this channel: a whole command, null while one is incomplete, or an error. */
  push(frame: Frame): Command | null | ProtocolError {
    if (this.method === null) return this.pushMethod(frame);
    if (this.header === null) return this.pushHeader(frame, this.method);
    return this.pushBody(frame, this.method, this.header);
  }

  /** Drops a half-received message (after a channel error or close). */
  reset(): void {
    this.method = null;
    this.header = null;
    this.parts = [];
    this.remainingBytes = 0;
  }

  private pushMethod(frame: Frame): Command | null | ProtocolError {
    // Some clients follow an empty message's header with an empty body frame; RabbitMQ tolerates it.
    if (frame.type === FrameType.body && frame.payload.length === 0) return null;
    if (frame.type !== FrameType.method) return unexpected(frame, 'a method');
    const m = decodeMethod(frame.payload);
    if (isProtocolError(m)) return m;
    if (!methodInfo(m.name).content) return { method: m, content: null };
    this.method = m;
    return null;
  }

  private pushHeader(frame: Frame, method: AmqpMethod): Command | null | ProtocolError {
    const info = methodInfo(method.name);
    if (frame.type !== FrameType.header) return this.fail(unexpected(frame, `a content header after ${method.name}`));
    const h = decodeContentHeader(frame.payload);
    if (isProtocolError(h)) return this.fail(h);
    if (h.classId !== info.classId) {
      return this.fail(connectionError(ReplyCode.UNEXPECTED_FRAME,
        `content header for class ${h.classId} does not match ${method.name} (class ${info.classId})`, info.classId, info.methodId));
    }
    if (h.bodySize > messageHardMaxBytes) {
      return this.fail(frameError(`declared body size ${h.bodySize} is above the ${messageHardMaxBytes}-byte limit`, info.classId, info.methodId));
    }
    if (h.bodySize > this.maxMessageBytes) {
      return this.fail(channelError(ReplyCode.PRECONDITION_FAILED,
        `message size ${h.bodySize} is larger than configured max size ${this.maxMessageBytes}`, info.classId, info.methodId));
    }
    if (h.bodySize === 0) return this.finish(method, h);
    this.header = h;
    this.remainingBytes = h.bodySize;
    return null;
  }

  private pushBody(frame: Frame, method: AmqpMethod, header: ContentHeader): Command | null | ProtocolError {
    if (frame.type !== FrameType.body) return this.fail(unexpected(frame, `a content body for ${method.name}`));
    const n = frame.payload.length;
    if (n > this.remainingBytes) {
      return this.fail(frameError(`content body frame of ${n} bytes overruns the ${this.remainingBytes} bytes left of the declared body`));
    }
    if (n > 0) this.parts.push(frame.payload);
    this.remainingBytes -= n;
    return this.remainingBytes === 0 ? this.finish(method, header) : null;
  }

  private finish(method: AmqpMethod, header: ContentHeader): Command {
    const body = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, header.bodySize);
    this.reset();
    return { method, content: { header, body } };
  }

  private fail(e: ProtocolError): ProtocolError {
    this.reset();
    return e;
  }
}

function unexpected(frame: Frame, expected: string): ProtocolError {
  const got = frameNames[frame.type] ?? `type ${frame.type}`;
  return connectionError(ReplyCode.UNEXPECTED_FRAME, `expected ${expected} on channel ${frame.channel}, got a ${got} frame`);
}
