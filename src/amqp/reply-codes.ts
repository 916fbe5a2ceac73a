// AMQP reply codes (RabbitMQ's names) and protocol errors as values: what a channel.close or
// connection.close will carry. The broker turns a ProtocolError into a close in one place.

import { replyTextMaxBytes } from './limits.js';

export const ReplyCode = {
  REPLY_SUCCESS: 200,
  CONTENT_TOO_LARGE: 311,
  NO_ROUTE: 312,
  NO_CONSUMERS: 313,
  CONNECTION_FORCED: 320,
  INVALID_PATH: 402,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  FRAME_ERROR: 501,
  SYNTAX_ERROR: 502,
  COMMAND_INVALID: 503,
  CHANNEL_ERROR: 504,
  UNEXPECTED_FRAME: 505,
  RESOURCE_ERROR: 506,
  NOT_ALLOWED: 530,
  NOT_IMPLEMENTED: 540,
  INTERNAL_ERROR: 541,
} as const;

export type ReplyCodeName = keyof typeof ReplyCode;
export type ReplyCode = (typeof ReplyCode)[ReplyCodeName];

/** Codes that close only the channel (the spec's soft errors); every other error code closes the connection. */
const softCodes: ReadonlySet<number> = new Set([311, 312, 313, 403, 404, 405, 406]);

const nameByCode: ReadonlyMap<number, ReplyCodeName> = new Map(
  (Object.keys(ReplyCode) as ReplyCodeName[]).map((name) => [ReplyCode[name], name]),
);

export function replyCodeName(code: number): string {
  return nameByCode.get(code) ?? `UNKNOWN_${code}`;
}

export function isSoftError(code: number): boolean {
  return softCodes.has(code);
}

export type ErrorScope = 'channel' | 'connection';

/** A protocol error: what the peer did wrong, as the close method that will report it. */
export interface ProtocolError {
  readonly kind: 'protocol-error';
  readonly scope: ErrorScope;
  readonly replyCode: ReplyCode;
  /** RabbitMQ's wording: `NOT_FOUND - no queue 'q' in vhost '/'`, at most 255 bytes. */
  readonly replyText: string;
  /** The class and method that failed, 0 when no method is to blame (bad frames). */
  readonly classId: number;
  readonly methodId: number;
}

export function isProtocolError(v: unknown): v is ProtocolError {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'protocol-error';
}

/** `NAME - explanation`, cut to 255 bytes on a character boundary. */
export function replyText(code: ReplyCode, explanation: string): string {
  const text = `${replyCodeName(code)} - ${explanation}`;
  if (Buffer.byteLength(text) <= replyTextMaxBytes) return text;
  let cut = text.slice(0, replyTextMaxBytes);
  while (Buffer.byteLength(cut) > replyTextMaxBytes) cut = cut.slice(0, -1);
  return cut;
}

/** An error whose scope follows the code: soft codes close the channel, hard ones the connection. */
export function protocolError(code: ReplyCode, explanation: string, classId = 0, methodId = 0): ProtocolError {
  const scope: ErrorScope = isSoftError(code) ? 'channel' : 'connection';
  return { kind: 'protocol-error', scope, replyCode: code, replyText: replyText(code, explanation), classId, methodId };
}

/** A channel error (channel.close). */
export function channelError(code: ReplyCode, explanation: string, classId = 0, methodId = 0): ProtocolError {
  return { kind: 'protocol-error', scope: 'channel', replyCode: code, replyText: replyText(code, explanation), classId, methodId };
}

/** A connection error (connection.close), also for soft codes RabbitMQ raises on the connection (403 login). */
export function connectionError(code: ReplyCode, explanation: string, classId = 0, methodId = 0): ProtocolError {
  return { kind: 'protocol-error', scope: 'connection', replyCode: code, replyText: replyText(code, explanation), classId, methodId };
}

export function frameError(explanation: string, classId = 0, methodId = 0): ProtocolError {
  return connectionError(ReplyCode.FRAME_ERROR, explanation, classId, methodId);
}
