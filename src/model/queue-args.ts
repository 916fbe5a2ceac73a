// Queue x-arguments: validation of a new queue's arguments (RabbitMQ's check_arguments, with its
// Erlang-term reasons in the 406 text), the set compared on redeclare, and the queue kind.

import { errors, type ModelError } from './errors.js';
import type { FieldTable } from './field-values.js';
import { hasKey, readBool, readInt, readString, typeNameOf } from './field-values.js';
import { limits } from './limits.js';

type Check = (value: unknown, args: FieldTable) => string | null;

const unacceptable = (v: unknown): string => `{unacceptable_type,${typeNameOf(v)}}`;

function intArg(extra: (n: number) => string | null): Check {
  return (v) => {
    const n = readInt(v);
    return n === null ? unacceptable(v) : extra(n);
  };
}

const nonNegative = intArg((n) => (n < 0 ? `{value_negative,${n}}` : null));
const positive = intArg((n) => (n === 0 ? `{value_zero,${n}}` : n < 0 ? `{value_negative,${n}}` : null));
const anyInt = intArg(() => null);

function expiry(n: number): string | null {
  if (n < 0) return `{value_negative,${n}}`;
  if (n > limits.expiryMsMax) return `{value_too_large,${n}}`;
  return null;
}

function stringArg(allowed: readonly string[] | null, reason: string): Check {
  return (v) => {
    const s = typeNameOf(v) === 'longstr' || typeNameOf(v) === 'binary' ? readString(v) : null;
    if (s === null) return unacceptable(v);
    return allowed === null || allowed.includes(s) ? null : reason;
  };
}

const validators: ReadonlyArray<readonly [string, Check]> = [
  ['x-expires', intArg((n) => (n === 0 ? `{value_zero,${n}}` : expiry(n)))],
  ['x-message-ttl', intArg(expiry)],
  ['x-dead-letter-exchange', stringArg(null, '')],
  ['x-dead-letter-routing-key', (v, args) => {
    const typeProblem = stringArg(null, '')(v, args);
    if (typeProblem !== null) return typeProblem;
    return hasKey(args, 'x-dead-letter-exchange') ? null : 'routing_key_but_no_dlx_defined';
  }],
  ['x-max-length', nonNegative],
  ['x-max-length-bytes', nonNegative],
  ['x-max-in-memory-length', nonNegative],
  ['x-max-in-memory-bytes', nonNegative],
  ['x-max-priority', intArg((n) => (n < 0 ? `{value_negative,${n}}`
    : n > limits.maxPriorityMax ? `{max_value_exceeded,${n}}` : null))],
  ['x-overflow', stringArg(['drop-head', 'reject-publish', 'reject-publish-dlx'], 'invalid_overflow')],
  ['x-queue-mode', stringArg(['default', 'lazy'], 'invalid_queue_mode')],
  ['x-queue-version', intArg((n) => (n === 1 || n === 2 ? null : `{invalid_queue_version,${n}}`))],
  ['x-single-active-consumer', (v) => (readBool(v) === null ? unacceptable(v) : null)],
  ['x-queue-type', stringArg(['classic', 'quorum'], 'invalid_queue_type')],
  ['x-quorum-initial-group-size', positive],
  ['x-initial-cluster-size', positive],
  ['x-delivery-limit', anyInt],
  ['x-queue-leader-locator', stringArg(['client-local', 'balanced'], 'invalid_queue_leader_locator')],
  ['x-queue-master-locator', stringArg(null, '')],
  ['x-dead-letter-strategy', stringArg(['at-most-once', 'at-least-once'],
    'invalid_dead_letter_strategy')],
  ['x-consumer-timeout', nonNegative],
];

/** Arguments compared on redeclare (RabbitMQ's declare_args keys). Others are stored, ignored. */
export const queueEquivalenceArgs: readonly string[] = validators.map(([k]) => k);

/** Arguments a queue declared with x-queue-type quorum refuses (classic-only features). */
const classicOnlyArgs = ['x-max-priority', 'x-queue-mode', 'x-queue-version', 'x-queue-master-locator'];

export function declaredQueueType(args: FieldTable): 'classic' | 'quorum' | null {
  if (!hasKey(args, 'x-queue-type')) return null;
  const s = readString(args['x-queue-type']);
  return s === 'quorum' ? 'quorum' : s === 'classic' ? 'classic' : null;
}

/** Validation of a new queue's arguments and properties: the first problem as a 406. */
export function validateQueueArgs(vhost: string, queue: string, args: FieldTable,
  props: { durable: boolean; exclusive: boolean; autoDelete: boolean }): ModelError | null {
  for (const [key, check] of validators) {
    if (!hasKey(args, key)) continue;
    const reason = check(args[key], args);
    if (reason !== null) return errors.invalidArg(vhost, queue, key, reason);
  }
  if (declaredQueueType(args) !== 'quorum') return null;
  for (const key of classicOnlyArgs) {
    if (hasKey(args, key)) return errors.invalidArgForType(vhost, queue, key, 'quorum');
  }
  if (props.autoDelete) return errors.invalidProperty(vhost, queue, 'auto-delete');
  if (props.exclusive) return errors.invalidProperty(vhost, queue, 'exclusive-owner');
  if (!props.durable) return errors.invalidProperty(vhost, queue, 'non-durable');
  return null;
}

/** x-queue-type classic is the same as no x-queue-type when comparing on redeclare. */
export function isAbsentQueueArg(key: string, value: unknown): boolean {
  return key === 'x-queue-type' && readString(value) === 'classic';
}

/**
 * Replica count a declare asks for (x-quorum-initial-group-size, else x-initial-cluster-size),
 * for placement to choose `replicas` before the command; null = the cluster default.
 */
export function requestedReplicaCount(args: FieldTable): number | null {
  for (const key of ['x-quorum-initial-group-size', 'x-initial-cluster-size']) {
    if (!hasKey(args, key)) continue;
    const n = readInt(args[key]);
    if (n !== null && n > 0) return n;
  }
  return null;
}
