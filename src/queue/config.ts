// Queue arguments (x-*) to the state machine's QueueConfig. The broker validates arguments and
// answers 406 for bad ones first; this only maps values it accepted, ignoring what it cannot read.

import { deliveryLimitReplicatedDefault, durationMsMax, priorityLevelsMax } from './limits.js';
import { defaultQueueConfig, type Overflow, type QueueConfig } from './types.js';

export type QueueArguments = Readonly<Record<string, unknown>>;

/** The plain value of an argument: tagged values ({type|tag, value}) are unwrapped. */
function plain(v: unknown): unknown {
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && 'value' in v) return (v as { value: unknown }).value;
  return v;
}

function int(args: QueueArguments, key: string): number | null {
  const v = plain(args[key]);
  const n = typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : NaN;
  return Number.isFinite(n) ? Math.trunc(n) : null;
}

function str(args: QueueArguments, key: string): string | null {
  const v = plain(args[key]);
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  return null;
}

const overflows: readonly Overflow[] = ['drop-head', 'reject-publish', 'reject-publish-dlx'];

/**
 * `replicated` picks RabbitMQ's defaults per queue type: quorum queues dead-letter past 20
 * failed deliveries unless x-delivery-limit says otherwise (-1 = unlimited); classic ones have
 * no limit.
 */
export function queueConfigFromArguments(args: QueueArguments, replicated: boolean): QueueConfig {
  const nonNegative = (key: string, max = Number.MAX_SAFE_INTEGER): number | null => {
    const n = int(args, key);
    return n === null || n < 0 ? null : Math.min(n, max);
  };
  const overflow = str(args, 'x-overflow');
  const deliveryLimit = int(args, 'x-delivery-limit');
  const sac = plain(args['x-single-active-consumer']);
  const expires = nonNegative('x-expires', durationMsMax);
  return {
    ...defaultQueueConfig,
    messageTtlMs: nonNegative('x-message-ttl', durationMsMax),
    expiresMs: expires === 0 ? null : expires,
    maxLength: nonNegative('x-max-length'),
    maxLengthBytes: nonNegative('x-max-length-bytes'),
    overflow: overflows.find((o) => o === overflow) ?? 'drop-head',
    deadLetter: str(args, 'x-dead-letter-exchange') !== null,
    maxPriority: Math.min(nonNegative('x-max-priority') ?? 0, priorityLevelsMax - 1),
    singleActiveConsumer: sac === true,
    deliveryLimit: deliveryLimit === null ? (replicated ? deliveryLimitReplicatedDefault : null) : deliveryLimit < 0 ? null : deliveryLimit,
    consumerTimeoutMs: nonNegative('x-consumer-timeout', durationMsMax),
  };
}
