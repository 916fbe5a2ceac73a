// Dead-lettering as RabbitMQ writes it, on plain data: the x-death header (one entry per
// {queue, reason}, newest first), x-first-death-* / x-last-death-*, the routing keys to republish
// with, and cycle detection. Field values go through a small adapter, so this file does not
// depend on how the codec represents typed values.

import type { DeadLetterReason } from './types.js';

/**
 * How to read and make field-table values. Readers accept any value the codec or a client may
 * produce (plain or tagged); builders make the types RabbitMQ uses in x-death.
 */
export interface FieldValues {
  longstr(s: string): unknown;
  long(n: number): unknown;
  /** AMQP timestamps are whole seconds; `ms` is converted by the adapter. */
  timestamp(ms: number): unknown;
  array(items: unknown[]): unknown;
  table(t: Record<string, unknown>): unknown;
  asString(v: unknown): string | undefined;
  asNumber(v: unknown): number | undefined;
  asArray(v: unknown): readonly unknown[] | undefined;
  asTable(v: unknown): Readonly<Record<string, unknown>> | undefined;
}

export type HeaderTable = Readonly<Record<string, unknown>>;

export interface Death {
  /** The queue the message dies in. */
  readonly queue: string;
  readonly reason: DeadLetterReason;
  /** Exchange and routing key the message was published with. */
  readonly exchange: string;
  readonly routingKey: string;
  /** The message's `expiration` property, if any (kept as original-expiration). */
  readonly expiration: string | undefined;
  readonly timeMs: number;
}

export interface DeadLettered {
  /** The headers to republish with (x-death updated, BCC removed, CC removed if rk replaced). */
  readonly headers: Record<string, unknown>;
  /** Routing keys for the dead-letter exchange. */
  readonly routingKeys: string[];
}

/** Original routing keys: the publish key, then the CC header's keys. */
function originalKeys(headers: HeaderTable, routingKey: string, fv: FieldValues): string[] {
  const cc = fv.asArray(headers['CC']) ?? [];
  const keys = [routingKey];
  for (const v of cc) {
    const s = fv.asString(v);
    if (s !== undefined) keys.push(s);
  }
  return keys;
}

function newEntry(death: Death, keys: string[], fv: FieldValues): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    count: fv.long(1),
    reason: fv.longstr(death.reason),
    queue: fv.longstr(death.queue),
    time: fv.timestamp(death.timeMs),
    exchange: fv.longstr(death.exchange),
    'routing-keys': fv.array(keys.map((k) => fv.longstr(k))),
  };
  if (death.expiration !== undefined) entry['original-expiration'] = fv.longstr(death.expiration);
  return entry;
}

/**
 * Records one death in the message's headers and says where to republish it. An existing entry
 * for the same {queue, reason} has its count incremented and moves to the front (keeping its
 * first time, exchange and keys); otherwise a new entry goes in front.
 */
export function deadLetter(
  headersIn: HeaderTable | undefined,
  death: Death,
  target: { readonly routingKey: string | null },
  fv: FieldValues,
): DeadLettered {
  const headers: Record<string, unknown> = { ...(headersIn ?? {}) };
  const keys = originalKeys(headers, death.routingKey, fv);
  const previous = fv.asArray(headers['x-death']) ?? [];
  const entries: unknown[] = [];
  let merged: Record<string, unknown> | undefined;
  for (const e of previous) {
    const table = fv.asTable(e);
    if (table === undefined) continue; // not a table: not ours, drop it
    const same = fv.asString(table['queue']) === death.queue && fv.asString(table['reason']) === death.reason;
    if (same && merged === undefined) {
      merged = { ...table, count: fv.long((fv.asNumber(table['count']) ?? 0) + 1) };
    } else {
      entries.push(e);
    }
  }
  entries.unshift(fv.table(merged ?? newEntry(death, keys, fv)));
  headers['x-death'] = fv.array(entries);
  if (headers['x-first-death-queue'] === undefined) {
    headers['x-first-death-queue'] = fv.longstr(death.queue);
    headers['x-first-death-reason'] = fv.longstr(death.reason);
    headers['x-first-death-exchange'] = fv.longstr(death.exchange);
  }
  headers['x-last-death-queue'] = fv.longstr(death.queue);
  headers['x-last-death-reason'] = fv.longstr(death.reason);
  headers['x-last-death-exchange'] = fv.longstr(death.exchange);
  delete headers['BCC'];
  if (target.routingKey !== null) delete headers['CC'];
  return { headers, routingKeys: target.routingKey !== null ? [target.routingKey] : keys };
}

/**
 * Would routing this dead-lettered message to `targetQueue` close a cycle? Yes when the message
 * already died in that queue and no death since then (including that one) was a rejection: a
 * rejected message may go round, since a consumer decided.
 */
export function isDeadLetterCycle(headers: HeaderTable | undefined, targetQueue: string, fv: FieldValues): boolean {
  const deaths = fv.asArray(headers?.['x-death']) ?? [];
  for (const e of deaths) {
    const table = fv.asTable(e);
    if (table === undefined) continue;
    if (fv.asString(table['reason']) === 'rejected') return false;
    if (fv.asString(table['queue']) === targetQueue) return true;
  }
  return false;
}

/** A plain adapter: strings, numbers, arrays and objects as themselves (tests, plain tables). */
export const plainFieldValues: FieldValues = {
  longstr: (s) => s,
  long: (n) => n,
  timestamp: (ms) => Math.floor(ms / 1000),
  array: (items) => items,
  table: (t) => t,
  asString: (v) => (typeof v === 'string' ? v : undefined),
  asNumber: (v) => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined),
  asArray: (v) => (Array.isArray(v) ? (v as unknown[]) : undefined),
  asTable: (v) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined),
};
