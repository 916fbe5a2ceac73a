// The queue's dead-letter helper reads and makes header values through this adapter: values are
// the wire codec's tagged values ({tag, value}); x-death gets the tags RabbitMQ writes (S l T A F).

import type { FieldValues } from '../queue/dead-letter.js';
import { fromFieldValue, isFieldValue } from '../amqp/index.js';

function plain(v: unknown): unknown {
  if (isFieldValue(v)) return fromFieldValue(v);
  return Buffer.isBuffer(v) ? v.toString('utf8') : v;
}

function tagged(v: unknown): { tag: string; value: unknown } | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Buffer.isBuffer(v)) return undefined;
  const t = v as { tag?: unknown; value?: unknown };
  return typeof t.tag === 'string' && 'value' in t ? (t as { tag: string; value: unknown }) : undefined;
}

export const wireFieldValues: FieldValues = {
  longstr: (s) => ({ tag: 'S', value: Buffer.from(s) }),
  long: (n) => ({ tag: 'l', value: n }),
  timestamp: (ms) => ({ tag: 'T', value: Math.floor(ms / 1000) }),
  array: (items) => ({ tag: 'A', value: items }),
  table: (t) => ({ tag: 'F', value: t }),
  asString: (v) => {
    const p = plain(v);
    return typeof p === 'string' ? p : undefined;
  },
  asNumber: (v) => {
    const p = tagged(v)?.value ?? v;
    if (typeof p === 'number') return p;
    if (typeof p === 'bigint') return Number(p);
    return undefined;
  },
  asArray: (v) => {
    const t = tagged(v);
    const p = t !== undefined ? t.value : v;
    return Array.isArray(p) ? p : undefined;
  },
  asTable: (v) => {
    const t = tagged(v);
    if (t !== undefined) return t.tag === 'F' ? (t.value as Record<string, unknown>) : undefined;
    return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) ? (v as Record<string, unknown>) : undefined;
  },
};
