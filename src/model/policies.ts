// Policies and the effective settings of queues and exchanges. Of the policies whose pattern
// matches a name (and whose apply-to fits), the one with the highest priority applies (ties:
// the lower name). Resolution against the queue's own x-args follows RabbitMQ's classic queue:
// numeric limits (message-ttl, expires, max-length, max-length-bytes, delivery-limit) take the
// smaller of the two; every other key (overflow, dead-letter-*, alternate-exchange) the x-arg wins.

import { compiledRegex, patternMatches } from './access.js';
import { errors, type ModelError } from './errors.js';
import type { ArgTable } from './field-values.js';
import { hasKey, normalizeTable, readBool, readInt, readString } from './field-values.js';
import { limits } from './limits.js';
import { ok } from './results.js';
import type { MetadataState, VhostState } from './state.js';
import type {
  ClearPolicy, ExchangeRecord, MetadataOk, PolicyRecord, QueueRecord, SetPolicy,
} from './types.js';

export type Overflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';

/** A queue's effective settings, shaped like queue/'s QueueConfig plus the dead-letter target. */
export interface QueueSettings {
  readonly messageTtlMs: number | null;
  readonly expiresMs: number | null;
  readonly maxLength: number | null;
  readonly maxLengthBytes: number | null;
  readonly overflow: Overflow;
  readonly deadLetter: boolean;
  readonly deadLetterExchange: string | null;
  readonly deadLetterRoutingKey: string | null;
  readonly maxPriority: number;
  readonly singleActiveConsumer: boolean;
  readonly deliveryLimit: number | null;
  readonly consumerTimeoutMs: number | null;
  /** Name of the policy that applies, if any. */
  readonly policy: string | null;
}

/** RabbitMQ 4.x default delivery limit of quorum queues (only for x-queue-type quorum). */
const quorumDefaultDeliveryLimit = 20;

const policyKeys: Readonly<Record<string, 'nonNegInt' | 'posInt' | 'int' | 'string' | 'overflow'>> = {
  'message-ttl': 'nonNegInt', 'expires': 'posInt', 'max-length': 'nonNegInt',
  'max-length-bytes': 'nonNegInt', 'delivery-limit': 'int', 'consumer-timeout': 'nonNegInt',
  'overflow': 'overflow', 'dead-letter-exchange': 'string', 'dead-letter-routing-key': 'string',
  'alternate-exchange': 'string', 'queue-mode': 'string', 'queue-leader-locator': 'string',
  'dead-letter-strategy': 'string', 'max-in-memory-length': 'nonNegInt',
  'max-in-memory-bytes': 'nonNegInt', 'queue-version': 'posInt',
};

const overflows: readonly string[] = ['drop-head', 'reject-publish', 'reject-publish-dlx'];

function validateDefinition(definition: ArgTable): ModelError | null {
  const keys = Object.keys(definition);
  if (keys.length === 0) return errors.invalidDefinition('policy definition is empty');
  for (const key of keys) {
    const kind = policyKeys[key];
    const v = definition[key];
    if (kind === undefined) return errors.invalidDefinition(`'${key}' is not a recognised policy setting`);
    const n = typeof v === 'number' && Number.isInteger(v) ? v : null;
    const bad = (kind === 'int' && n === null) || (kind === 'nonNegInt' && (n === null || n < 0))
      || (kind === 'posInt' && (n === null || n <= 0)) || (kind === 'string' && typeof v !== 'string')
      || (kind === 'overflow' && (typeof v !== 'string' || !overflows.includes(v)));
    if (bad) return errors.invalidDefinition(`invalid value ${JSON.stringify(v)} for policy setting '${key}'`);
  }
  return null;
}

export function setPolicy(state: MetadataState, c: SetPolicy): MetadataOk | ModelError {
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  if (compiledRegex(c.pattern) === null) {
    return errors.invalidDefinition(`invalid regular expression '${c.pattern}'`);
  }
  if (!['queues', 'exchanges', 'all'].includes(c.applyTo)) {
    return errors.invalidDefinition(`invalid apply-to '${String(c.applyTo)}'`);
  }
  if (!Number.isInteger(c.priority)) return errors.invalidDefinition('policy priority must be an integer');
  const definition = normalizeTable(c.definition);
  const problem = validateDefinition(definition);
  if (problem !== null) return problem;
  const created = !vhost.policies.has(c.name);
  if (created && vhost.policies.size >= limits.policiesPerVhostMax) {
    return errors.limitReached(`policy count in vhost '${c.vhost}'`, limits.policiesPerVhostMax);
  }
  const old = vhost.policies.get(c.name);
  const before = policyChoice(vhost, candidates(vhost, old, c.pattern, c.applyTo));
  vhost.policies.set(c.name, {
    vhost: c.vhost, name: c.name, pattern: c.pattern, applyTo: c.applyTo, priority: c.priority,
    definition,
  });
  return ok({ created, changedQueues: changedSince(vhost, before, c.name) });
}

export function clearPolicy(state: MetadataState, c: ClearPolicy): MetadataOk | ModelError {
  const vhost = state.vhosts.get(c.vhost);
  if (vhost === undefined) return errors.vhostNotFound(c.vhost);
  const old = vhost.policies.get(c.name);
  if (old === undefined) return errors.policyNotFound(c.vhost, c.name);
  const before = policyChoice(vhost, candidates(vhost, old, null, null));
  vhost.policies.delete(c.name);
  return ok({ changedQueues: changedSince(vhost, before, c.name) });
}

// Only queues the edited policy matches, before or after the edit, can change their policy.
function candidates(vhost: VhostState, old: PolicyRecord | undefined, pattern: string | null,
  applyTo: string | null): string[] {
  const out: string[] = [];
  const forQueues = (a: string | null): boolean => a === 'queues' || a === 'all';
  for (const name of vhost.queues.keys()) {
    if ((old !== undefined && forQueues(old.applyTo) && patternMatches(old.pattern, name))
      || (pattern !== null && forQueues(applyTo) && patternMatches(pattern, name))) out.push(name);
  }
  return out;
}

function policyChoice(vhost: VhostState, names: readonly string[]): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const name of names) out.set(name, policyFor(vhost, 'queues', name)?.name ?? null);
  return out;
}

// A queue changed when the policy it follows is the edited one, before or after the edit.
function changedSince(vhost: VhostState, before: Map<string, string | null>, edited: string): QueueRecord[] {
  const out: QueueRecord[] = [];
  for (const name of before.keys()) {
    const q = vhost.queues.get(name);
    if (q === undefined) continue;
    const after = policyFor(vhost, 'queues', name)?.name ?? null;
    if (before.get(name) === edited || after === edited) out.push(q.record);
  }
  return out;
}

/** The policy that applies to a queue or exchange name, if any. */
export function policyFor(vhost: VhostState, kind: 'queues' | 'exchanges', name: string):
PolicyRecord | undefined {
  let best: PolicyRecord | undefined;
  for (const p of vhost.policies.values()) {
    if (p.applyTo !== 'all' && p.applyTo !== kind) continue;
    if (!patternMatches(p.pattern, name)) continue;
    if (best === undefined || p.priority > best.priority
      || (p.priority === best.priority && p.name < best.name)) best = p;
  }
  return best;
}

function minOf(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

function intOf(table: ArgTable | undefined, key: string): number | null {
  return table !== undefined && hasKey(table, key) ? readInt(table[key]) : null;
}

function stringOf(table: ArgTable | undefined, key: string): string | null {
  return table !== undefined && hasKey(table, key) ? readString(table[key]) : null;
}

/** Effective settings of a queue: its x-args resolved against the policy that applies. */
export function queueSettingsOf(vhost: VhostState, q: QueueRecord): QueueSettings {
  return resolveSettings(q, policyFor(vhost, 'queues', q.name));
}

/**
 * A queue's settings from its own x-args alone, as at its declaration. Replicated queues start
 * every replica from these (the same on all of them, whenever each applied the declare) and reach
 * the policy's through a committed config entry.
 */
export function queueArgSettings(q: QueueRecord): QueueSettings {
  return resolveSettings(q, undefined);
}

function resolveSettings(q: QueueRecord, policy: PolicyRecord | undefined): QueueSettings {
  const a = q.arguments;
  const p = policy?.definition;
  const dlx = stringOf(a, 'x-dead-letter-exchange') ?? stringOf(p, 'dead-letter-exchange');
  const dlrkArg = stringOf(a, 'x-dead-letter-routing-key');
  const overflow = stringOf(a, 'x-overflow') ?? stringOf(p, 'overflow');
  let deliveryLimit = minOf(intOf(a, 'x-delivery-limit'), intOf(p, 'delivery-limit'));
  if (deliveryLimit === null && stringOf(a, 'x-queue-type') === 'quorum') {
    deliveryLimit = quorumDefaultDeliveryLimit;
  }
  return {
    messageTtlMs: minOf(intOf(a, 'x-message-ttl'), intOf(p, 'message-ttl')),
    expiresMs: minOf(intOf(a, 'x-expires'), intOf(p, 'expires')),
    maxLength: minOf(intOf(a, 'x-max-length'), intOf(p, 'max-length')),
    maxLengthBytes: minOf(intOf(a, 'x-max-length-bytes'), intOf(p, 'max-length-bytes')),
    overflow: overflow !== null && overflows.includes(overflow) ? overflow as Overflow : 'drop-head',
    deadLetter: dlx !== null,
    deadLetterExchange: dlx,
    deadLetterRoutingKey: dlrkArg ?? (dlx !== null ? stringOf(p, 'dead-letter-routing-key') : null),
    maxPriority: intOf(a, 'x-max-priority') ?? 0,
    singleActiveConsumer: hasKey(a, 'x-single-active-consumer')
      ? readBool(a['x-single-active-consumer']) === true : false,
    deliveryLimit: deliveryLimit !== null && deliveryLimit < 0 ? null : deliveryLimit,
    consumerTimeoutMs: minOf(intOf(a, 'x-consumer-timeout'), intOf(p, 'consumer-timeout')),
    policy: policy?.name ?? null,
  };
}

/** The alternate exchange of an exchange: its argument, else its policy's. */
export function alternateExchangeOf(vhost: VhostState, x: ExchangeRecord): string | null {
  const fromArg = stringOf(x.arguments, 'alternate-exchange');
  if (fromArg !== null) return fromArg;
  if (vhost.policies.size === 0) return null;
  return stringOf(policyFor(vhost, 'exchanges', x.name)?.definition, 'alternate-exchange');
}

