// The AMQP 0-9-1 codec's public API: frames, methods, content, field tables, reply codes, limits.
// Pure (no I/O, no clock); malformed input comes back as ProtocolError values, never as throws.

export { FrameDecoder, FrameType, frameEndOctet, heartbeatFrame, type Frame } from './frame-decoder.js';
export {
  parseProtocolHeader, protocolHeader, protocolHeaderBytes, type ProtocolHeaderResult,
} from './protocol-header.js';
export {
  decodeMethod, encodeMethodFrame, encodeMethodPayload, methodInfo, methodInfoById,
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
