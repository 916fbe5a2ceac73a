// Protocol errors of the broker as values: soft ones close a channel, hard ones the connection.
// Reply texts follow RabbitMQ's `NAME - explanation`; connection.ts and channel.ts turn them
// into closes in one place each.

import { OperatingErrorCode, isOperatingError } from '../lib/errors.js';
import type { ModelError } from '../model/index.js';
import { limits } from './limits.js';

export type ErrorScope = 'channel' | 'connection';

export interface ProtocolError {
  readonly protocolError: true;
  readonly scope: ErrorScope;
  readonly replyCode: number;
  readonly replyText: string;
}

export const replyNames: Readonly<Record<number, string>> = {
  311: 'CONTENT_TOO_LARGE', 312: 'NO_ROUTE', 313: 'NO_CONSUMERS', 320: 'CONNECTION_FORCED',
  402: 'INVALID_PATH', 403: 'ACCESS_REFUSED', 404: 'NOT_FOUND', 405: 'RESOURCE_LOCKED',
  406: 'PRECONDITION_FAILED', 501: 'FRAME_ERROR', 502: 'SYNTAX_ERROR', 503: 'COMMAND_INVALID',
  504: 'CHANNEL_ERROR', 505: 'UNEXPECTED_FRAME', 506: 'RESOURCE_ERROR', 530: 'NOT_ALLOWED',
  540: 'NOT_IMPLEMENTED', 541: 'INTERNAL_ERROR',
};

const hardCodes = new Set([320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541]);

function cut(text: string): string {
  return Buffer.byteLength(text) <= limits.shortStrMaxBytes ? text : Buffer.from(text).subarray(0, limits.shortStrMaxBytes).toString('utf8').replace(/\uFFFD$/, '');
}

/** An error with RabbitMQ's scope for its code (4xx soft, 5xx hard). */
export function amqpError(replyCode: number, explanation: string): ProtocolError {
  return {
    protocolError: true,
    scope: hardCodes.has(replyCode) ? 'connection' : 'channel',
    replyCode,
    replyText: cut(`${replyNames[replyCode] ?? 'INTERNAL_ERROR'} - ${explanation}`),
  };
}

/** A reply text that already carries its NAME prefix (codec faults, model errors). */
export function amqpErrorText(replyCode: number, replyText: string, scope?: ErrorScope): ProtocolError {
  return { protocolError: true, scope: scope ?? (hardCodes.has(replyCode) ? 'connection' : 'channel'), replyCode, replyText: cut(replyText) };
}

export function fromModel(e: ModelError): ProtocolError {
  return amqpErrorText(e.replyCode, e.replyText, e.scope);
}

export function isProtocolError(v: unknown): v is ProtocolError {
  return typeof v === 'object' && v !== null && (v as ProtocolError).protocolError === true;
}

/**
 * A queue call that failed because the queue is gone where it lived (deleted on another node, or
 * its home node died and took it): 404 as RabbitMQ answers for a missing queue. Any other failure
 * is not ours to explain here: it is thrown on (an internal error).
 */
export function whenQueueGone(e: unknown, vhost: string, name: string): ProtocolError {
  if (isOperatingError(e, OperatingErrorCode.Closed)) return amqpError(404, `no queue '${name}' in vhost '${vhost}'`);
  throw e;
}
