// The RPC wire format, in one place: the request queue of a method, the headers and properties of
// requests and replies, payload and error encodings. Any AMQP client that follows this (README
// "Task-RPC wire format") can call an SDK server or serve an SDK caller.

/** Every method has one durable quorum queue, named after it, that all its servers consume. */
export const requestQueuePrefix = 'rpc.';
/** Arguments of a request queue: replicated (espresso: Raft group; RabbitMQ: quorum queue). */
export const requestQueueArguments: Readonly<Record<string, unknown>> = { 'x-queue-type': 'quorum' };

/** Pseudo-queue a caller consumes (no-ack) and names in reply_to: replies go straight to its channel. */
export const directReplyTo = 'amq.rabbitmq.reply-to';

export const header = {
  /** Request: absolute deadline, milliseconds since the Unix epoch (UTC), signed 64-bit integer. */
  deadline: 'rpc-deadline',
  /** Request: true when the caller allows the call to run more than once (boolean). */
  idempotent: 'rpc-idempotent',
  /** Request: 1 for the first send, 2... for the SDK's resends of an idempotent call (integer). */
  attempt: 'rpc-attempt',
  /** Reply: 'ok' (body = the result) or 'error' (body = JSON {name, message, details}). */
  status: 'rpc-status',
} as const;

export const contentType = { json: 'application/json', binary: 'application/octet-stream' } as const;

export type ReplyStatus = 'ok' | 'error';

/** Error names the SDK itself puts in error replies (a handler should not throw these names). */
export const reservedErrorName = {
  /** The request came back after its server was lost mid-call, and the call is not idempotent. */
  serverLost: 'RpcServerLost',
  /** The request's body could not be decoded (e.g. content_type application/json but not JSON). */
  badRequest: 'RpcBadRequest',
  /** The handler's result could not be encoded as JSON. */
  badResult: 'RpcBadResult',
} as const;

/** A payload: any JSON value (sent as application/json) or raw bytes (application/octet-stream). */
export type Payload = unknown;

export interface EncodedPayload {
  body: Buffer;
  contentType: string;
}

/** Buffers and Uint8Arrays travel as raw bytes; everything else as JSON (undefined as null). */
export function encodePayload(value: Payload): EncodedPayload {
  if (Buffer.isBuffer(value)) return { body: value, contentType: contentType.binary };
  if (value instanceof Uint8Array) return { body: Buffer.from(value.buffer, value.byteOffset, value.byteLength), contentType: contentType.binary };
  const text = JSON.stringify(value === undefined ? null : value);
  // JSON.stringify returns undefined for functions and symbols: those are not payloads.
  if (typeof text !== 'string') throw new TypeError(`payload of type ${typeof value} cannot be encoded as JSON`);
  return { body: Buffer.from(text, 'utf8'), contentType: contentType.json };
}

/** application/json is parsed (a SyntaxError when it is not JSON); any other content type is raw bytes. */
export function decodePayload(body: Buffer, type: string | undefined): Payload {
  if (type === contentType.json) return JSON.parse(body.toString('utf8')) as unknown;
  return body;
}

export interface ErrorBody {
  name: string;
  message: string;
  details?: unknown;
}

/** What a thrown value becomes in an error reply: its name, message and `details` when it has them. */
export function errorBodyOf(thrown: unknown): ErrorBody {
  if (typeof thrown === 'object' && thrown !== null) {
    const t = thrown as { name?: unknown; message?: unknown; details?: unknown };
    const out: ErrorBody = {
      name: typeof t.name === 'string' && t.name !== '' ? t.name : 'Error',
      message: typeof t.message === 'string' ? t.message : String(thrown),
    };
    if (t.details !== undefined) out.details = t.details;
    return out;
  }
  return { name: 'Error', message: String(thrown) };
}

/** The JSON of an error reply; details that do not encode are replaced by their text. */
export function encodeErrorBody(e: ErrorBody): Buffer {
  try {
    return Buffer.from(JSON.stringify(e), 'utf8');
  } catch {
    return Buffer.from(JSON.stringify({ name: e.name, message: e.message, details: String(e.details) }), 'utf8');
  }
}

/** Reads an error reply's body; a body that is not the documented shape is still an error, named so. */
export function decodeErrorBody(body: Buffer): ErrorBody {
  try {
    const v = JSON.parse(body.toString('utf8')) as { name?: unknown; message?: unknown; details?: unknown };
    if (typeof v === 'object' && v !== null && typeof v.name === 'string' && typeof v.message === 'string') {
      const out: ErrorBody = { name: v.name, message: v.message };
      if (v.details !== undefined) out.details = v.details;
      return out;
    }
  } catch {
    // fall through: not JSON
  }
  return { name: 'RpcBadReply', message: `error reply with an unreadable body (${body.length} bytes)` };
}

/** Queue names are at most 255 bytes in AMQP; names starting 'amq.' are reserved by the broker. */
export function requestQueueName(method: string): string {
  if (typeof method !== 'string' || method === '') throw new TypeError('an RPC method name must be a non-empty string');
  const queue = requestQueuePrefix + method;
  if (Buffer.byteLength(queue, 'utf8') > 255) throw new TypeError(`RPC method name too long: its queue '${queue.slice(0, 40)}...' exceeds 255 bytes`);
  return queue;
}

/** An integer header value as a number (amqplib decodes 64-bit integers as numbers or bigints). */
export function integerHeader(headers: Record<string, unknown> | undefined, name: string): number | undefined {
  const v = headers?.[name];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  return undefined;
}

export function booleanHeader(headers: Record<string, unknown> | undefined, name: string): boolean {
  const v = headers?.[name];
  return v === true || v === 1 || v === 'true';
}
