// The AMQP 0-9-1 codec's public API: frames, methods, content, field tables, reply codes, limits.
// Pure (no I/O, no clock); malformed input comes back as ProtocolError values, never as throws.
//
// Decisions a caller relies on:
// - 64-bit method and header fields (delivery-tag, body-size, timestamps) are numbers; a value above
//   2^53 - 1 is refused on decode with FRAME_ERROR 501 and is an assertion failure on encode.
// - 64-bit field-table integers (l, L, T) are numbers when they fit in 2^53 - 1 and bigints beyond,
//   so a relayed table re-encodes exactly.
// - short strings decode as utf-8 (invalid sequences become U+FFFD); long strings and S/x values stay bytes.
// - Encoding a value out of range (a short > 65535, a short string > 255 bytes) is a bug: assertion.
// - Unknown class/method ids: COMMAND_INVALID 503 (connection); malformed frames, fields, tables: FRAME_ERROR 501.

export { FrameDecoder, FrameType, frameEndOctet, heartbeatFrame, type Frame } from './frame-decoder.js';
export {
  parseProtocolHeader, protocolHeader, protocolHeaderBytes, type ProtocolHeaderResult,
} from './protocol-header.js';
export {
  closeMethodFor, decodeMethod, encodeMethodFrame, encodeMethodPayload, methodInfo, methodInfoById,
  type AmqpMethodName, type MethodOf,
} from './methods.js';
export { decodeContentHeader, encodeBasicProperties, encodeContentFrames, type ContentHeader } from './content.js';
export {
  fromFieldValue, isFieldValue, toFieldTable, toFieldValue,
  type Decimal, type FieldTable, type FieldTag, type FieldValue, type PlainFieldValue,
} from './field-table.js';
export { decodeFieldTable, encodeFieldTable } from './field-table-bytes.js';
export {
  channelError, connectionError, frameError, isProtocolError, isSoftError, protocolError, ReplyCode,
  replyCodeName, replyText, type ErrorScope, type ProtocolError, type ReplyCodeName,
} from './reply-codes.js';
export * as limits from './limits.js';
export { classIds, methodInfos, basicPropertyInfos } from './generated-methods.js';
export type * from './generated-methods.js';
export { CommandAssembler, type Command, type Content } from './command-assembler.js';
