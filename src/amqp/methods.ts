// Method frames: decoding a payload into a typed AmqpMethod (or a ProtocolError value) and
// encoding a method into a whole frame. Layouts come from generated-methods.ts.

import { assert } from '../lib/assert.js';
import {
  methodInfos, readMethodFields, writeMethodFields, type AmqpMethod, type ChannelClose, type ConnectionClose, type MethodInfo,
} from './generated-methods.js';
import { FrameType, frameEndOctet } from './frame-decoder.js';
import { connectionError, frameError, ReplyCode, type ProtocolError } from './reply-codes.js';
import { DecodeError, Reader, Writer } from './wire.js';

export type AmqpMethodName = AmqpMethod['name'];
/** The method type with a given name: `MethodOf<'basic.publish'>`. */
export type MethodOf<N extends AmqpMethodName> = Extract<AmqpMethod, { readonly name: N }>;

const infoByName = new Map<string, MethodInfo>(methodInfos.map((i) => [i.name, i]));
const infoById = new Map<number, MethodInfo>(methodInfos.map((i) => [i.classId * 65536 + i.methodId, i]));

export function methodInfo(name: AmqpMethodName): MethodInfo {
  const info = infoByName.get(name);
  assert(info !== undefined, `unknown method name ${name}`);
  return info;
}

export function methodInfoById(classId: number, methodId: number): MethodInfo | undefined {
  return infoById.get(classId * 65536 + methodId);
}

/**
 * Decodes a method frame payload. Unknown class/method ids give COMMAND_INVALID 503; truncated or
 * malformed fields, trailing bytes, unknown table tags and 64-bit values above 2^53 - 1 give FRAME_ERROR 501.
 */
export function decodeMethod(payload: Buffer): AmqpMethod | ProtocolError {
  if (payload.length < 4) {
    return frameError(`method frame payload of ${payload.length} bytes is too short for class and method ids`);
  }
  const classId = payload.readUInt16BE(0);
  const methodId = payload.readUInt16BE(2);
  const info = infoById.get(classId * 65536 + methodId);
  if (info === undefined) {
    return connectionError(ReplyCode.COMMAND_INVALID, `unknown method: class ${classId}, method ${methodId}`, classId, methodId);
  }
  const r = new Reader(payload, 4, payload.length);
  try {
    const m = readMethodFields(classId, methodId, r);
    assert(m !== undefined && m.name === info.name, 'generated decoder matches the id table');
    if (r.pos !== r.end) {
      return frameError(`cannot decode ${info.name}: ${r.end - r.pos} bytes after the last field`, classId, methodId);
    }
    return m;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return frameError(`cannot decode ${info.name}: ${e.message}`, classId, methodId);
  }
}

/** Appends one method frame to `w`. */
export function writeMethodFrame(w: Writer, channel: number, method: AmqpMethod): void {
  assert(Number.isInteger(channel) && channel >= 0 && channel <= 0xffff, `channel out of range: ${channel}`);
  w.ensure(7);
  w.buf[w.pos] = FrameType.method;
  w.buf.writeUInt16BE(channel, w.pos + 1);
  w.pos += 3;
  const sizeAt = w.beginSized();
  writeMethodFields(w, method);
  w.endSized(sizeAt);
  w.octet(frameEndOctet);
}

const scratch = new Writer(4096);

/** One method frame in a new Buffer. Invalid field values (out of range, short string > 255 bytes) are bugs. */
export function encodeMethodFrame(channel: number, method: AmqpMethod): Buffer {
  scratch.reset();
  writeMethodFrame(scratch, channel, method);
  return scratch.take();
}

/** The method payload alone (class id, method id, fields), as a method frame carries it. */
export function encodeMethodPayload(method: AmqpMethod): Buffer {
  scratch.reset();
  writeMethodFields(scratch, method);
  return scratch.take();
}

/** The close that reports `e`: channel.close for a channel error, connection.close otherwise. */
export function closeMethodFor(e: ProtocolError): ChannelClose | ConnectionClose {
  const fields = { replyCode: e.replyCode, replyText: e.replyText, classId: e.classId, methodId: e.methodId };
  return e.scope === 'channel' ? { name: 'channel.close', ...fields } : { name: 'connection.close', ...fields };
}
