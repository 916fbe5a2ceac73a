// Protocol errors of the metadata model as values, with RabbitMQ's reply codes and reply texts,
// so the broker turns them into channel.close / connection.close in one place.

export const ReplyCode = {
  AccessRefused: 403,
  NotFound: 404,
  ResourceLocked: 405,
  PreconditionFailed: 406,
  CommandInvalid: 503,
  NotAllowed: 530,
  InternalError: 541,
} as const;
export type ReplyCode = (typeof ReplyCode)[keyof typeof ReplyCode];

const replyName: Record<ReplyCode, string> = {
  403: 'ACCESS_REFUSED',
  404: 'NOT_FOUND',
  405: 'RESOURCE_LOCKED',
  406: 'PRECONDITION_FAILED',
  503: 'COMMAND_INVALID',
  530: 'NOT_ALLOWED',
  541: 'INTERNAL_ERROR',
};

/** A soft error closes the channel; a hard one the connection (SURFACE.md section 5). */
export type ErrorScope = 'channel' | 'connection';

export interface ModelError {
  readonly ok: false;
  readonly replyCode: ReplyCode;
  /** `NAME - explanation`, as RabbitMQ words it. */
  readonly replyText: string;
  readonly scope: ErrorScope;
}

const maxReplyTextChars = 255;

export function modelError(code: ReplyCode, explanation: string): ModelError {
  const full = `${replyName[code]} - ${explanation}`;
  const hard = code === ReplyCode.NotAllowed || code === ReplyCode.CommandInvalid
    || code === ReplyCode.InternalError;
  return {
    ok: false,
    replyCode: code,
    // reply-text is a shortstr on the wire; RabbitMQ truncates too.
    replyText: full.length > maxReplyTextChars ? full.slice(0, maxReplyTextChars) : full,
    scope: hard ? 'connection' : 'channel',
  };
}

export function isModelError(value: unknown): value is ModelError {
  return typeof value === 'object' && value !== null && (value as { ok?: unknown }).ok === false;
}

export type ResourceKind = 'exchange' | 'queue';

/** RabbitMQ's rs/1: "queue 'q' in vhost '/'". */
export function resourceName(kind: ResourceKind, vhost: string, name: string): string {
  return `${kind} '${name}' in vhost '${vhost}'`;
}

export const errors = {
  notFound: (kind: ResourceKind, vhost: string, name: string): ModelError =>
    modelError(ReplyCode.NotFound, `no ${resourceName(kind, vhost, name)}`),
  vhostNotFound: (vhost: string): ModelError =>
    modelError(ReplyCode.NotFound, `no vhost '${vhost}'`),
  userNotFound: (user: string): ModelError => modelError(ReplyCode.NotFound, `no user '${user}'`),
  policyNotFound: (vhost: string, name: string): ModelError =>
    modelError(ReplyCode.NotFound, `no policy '${name}' in vhost '${vhost}'`),
  defaultExchange: (): ModelError =>
    modelError(ReplyCode.AccessRefused, 'operation not permitted on the default exchange'),
  reservedName: (kind: ResourceKind, name: string): ModelError =>
    modelError(ReplyCode.AccessRefused, `${kind} name '${name}' contains reserved prefix 'amq.*'`),
  systemExchangeDeletion: (vhost: string, name: string): ModelError =>
    modelError(ReplyCode.AccessRefused,
      `deletion of system ${resourceName('exchange', vhost, name)} not allowed`),
  // RabbitMQ names the permission: "configure access to queue 'q' in vhost '/' refused for user 'u'".
  accessRefused: (permission: string, kind: ResourceKind, vhost: string, name: string, user: string): ModelError =>
    modelError(ReplyCode.AccessRefused,
      `${permission} access to ${resourceName(kind, vhost, name)} refused for user '${user}'`),
  topicAccessRefused: (permission: string, key: string, vhost: string, exchange: string,
    user: string): ModelError =>
    modelError(ReplyCode.AccessRefused, `${permission} access to topic '${key}' in `
      + `${resourceName('exchange', vhost, exchange)} refused for user '${user}'`),
  vhostAccessRefused: (vhost: string, user: string): ModelError =>
    modelError(ReplyCode.NotAllowed, `access to vhost '${vhost}' refused for user '${user}'`),
  internalExchange: (vhost: string, name: string): ModelError =>
    modelError(ReplyCode.AccessRefused,
      `cannot publish to internal ${resourceName('exchange', vhost, name)}`),
  bindReplyTo: (vhost: string, name: string): ModelError =>
    modelError(ReplyCode.AccessRefused,
      `cannot bind ${resourceName('queue', vhost, name)}: it is a direct reply-to pseudo queue`),
  locked: (vhost: string, name: string): ModelError =>
    modelError(ReplyCode.ResourceLocked,
      `cannot obtain exclusive access to locked ${resourceName('queue', vhost, name)}. It could be `
      + 'originally declared on another connection or the exclusive property value does not match '
      + 'that of the original declaration.'),
  /** received/current are already formatted (`'true'`, `none`, `the value '5' of type 'long'`). */
  inequivalent: (kind: ResourceKind, vhost: string, name: string, arg: string,
    received: string, current: string): ModelError =>
    modelError(ReplyCode.PreconditionFailed,
      `inequivalent arg '${arg}' for ${resourceName(kind, vhost, name)}: `
      + `received ${received} but current is ${current}`),
  invalidArg: (vhost: string, queue: string, arg: string, reason: string): ModelError =>
    modelError(ReplyCode.PreconditionFailed,
      `invalid arg '${arg}' for ${resourceName('queue', vhost, queue)}: ${reason}`),
  invalidArgForType: (vhost: string, queue: string, arg: string, queueType: string): ModelError =>
    modelError(ReplyCode.PreconditionFailed,
      `invalid arg '${arg}' for ${resourceName('queue', vhost, queue)} of queue type ${queueType}`),
  invalidProperty: (vhost: string, queue: string, property: string): ModelError =>
    modelError(ReplyCode.PreconditionFailed,
      `invalid property '${property}' for ${resourceName('queue', vhost, queue)}`),
  invalidArgType: (kind: ResourceKind, vhost: string, name: string, arg: string, type: string):
  ModelError =>
    modelError(ReplyCode.PreconditionFailed,
      `invalid type '${type}' for arg '${arg}' in ${resourceName(kind, vhost, name)}`),
  invalidExchangeType: (type: string): ModelError =>
    modelError(ReplyCode.PreconditionFailed, `invalid exchange type '${type}'`),
  inUse: (kind: ResourceKind, vhost: string, name: string): ModelError =>
    modelError(ReplyCode.PreconditionFailed, `${resourceName(kind, vhost, name)} in use`),
  notEmpty: (vhost: string, name: string): ModelError =>
    modelError(ReplyCode.PreconditionFailed, `${resourceName('queue', vhost, name)} not empty`),
  bindingInvalid: (explanation: string): ModelError =>
    modelError(ReplyCode.PreconditionFailed, explanation),
  limitReached: (what: string, limit: number): ModelError =>
    modelError(ReplyCode.PreconditionFailed, `${what} limit (${limit}) is reached`),
  invalidDefinition: (explanation: string): ModelError =>
    modelError(ReplyCode.PreconditionFailed, explanation),
};
