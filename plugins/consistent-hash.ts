// x-consistent-hash, with the semantics of RabbitMQ's rabbitmq_consistent_hash_exchange: a
// binding's key is its weight (that many buckets on the ring, appended in binding order; a
// destination's first binding counts); a message goes to one destination, picked by a jump
// consistent hash of its routing key, of a header (exchange argument hash-header) or of a property
// (hash-property: message_id, correlation_id or timestamp). A missing header or property hashes as
// "undefined". The bucket-to-key mapping is our own (FNV-1a seeding a xorshift generator): the
// same weights, stability and edge cases as RabbitMQ, not the same bits.

import type { EspressoPlugin, ExchangeInfo, PluginBinding, PluginMessage } from '../src/broker/plugin-api.js';

const weightMax = 10_000;
const properties: Record<string, (m: PluginMessage) => unknown> = {
  message_id: (m) => m.properties.messageId,
  correlation_id: (m) => m.properties.correlationId,
  timestamp: (m) => m.properties.timestamp,
};

interface Ring {
  /** bucket -> binding, buckets numbered from 0 in binding order */
  readonly buckets: PluginBinding[];
}

const rings = new WeakMap<readonly PluginBinding[], Ring>();

function ringOf(bindings: readonly PluginBinding[]): Ring {
  let ring = rings.get(bindings);
  if (ring !== undefined) return ring;
  const buckets: PluginBinding[] = [];
  const seen = new Set<string>();
  for (const b of bindings) {
    const key = `${b.destinationKind}\u0000${b.destination}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const weight = Number(b.routingKey);
    for (let i = 0; i < weight; i++) buckets.push(b);
  }
  ring = { buckets };
  rings.set(bindings, ring);
  return ring;
}

/** FNV-1a over the UTF-8 bytes of `text`, 32 bits. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Lamping & Veach's jump consistent hash, its random steps drawn from xorshift32 seeded by `hash`. */
export function jumpBucket(hash: number, buckets: number): number {
  let state = hash === 0 ? 0x9e3779b9 : hash;
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    const r = (state + 1) / 0x1_0000_0000; // (0, 1]
    j = Math.floor((b + 1) / r);
  }
  return b;
}

function text(v: unknown): string {
  if (v === undefined || v === null) return 'undefined';
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

function hashedValue(m: PluginMessage, x: ExchangeInfo): string {
  const header = x.arguments['hash-header'];
  if (typeof header === 'string') return text(m.headers[header]);
  const property = x.arguments['hash-property'];
  if (typeof property === 'string') return text(properties[property]?.(m));
  return m.routingKey;
}

const plugin: EspressoPlugin = {
  name: 'consistent-hash',
  version: '1.0.0',
  setup(api) {
    api.exchangeType('x-consistent-hash', {
      route(message, bindings, exchange) {
        const ring = ringOf(bindings);
        if (ring.buckets.length === 0) return [];
        return [ring.buckets[jumpBucket(fnv1a(hashedValue(message, exchange)), ring.buckets.length)]!];
      },
      validateExchange(x) {
        const header = x.arguments['hash-header'];
        const property = x.arguments['hash-property'];
        if (header !== undefined && property !== undefined) return 'hash-header and hash-property are mutually exclusive';
        if (header !== undefined && typeof header !== 'string') return `hash-header must be a string, got ${JSON.stringify(header)}`;
        if (property !== undefined && (typeof property !== 'string' || !(property in properties))) {
          return `Unsupported property: ${String(property)} (hash-property takes ${Object.keys(properties).join(', ')})`;
        }
        return null;
      },
      validateBinding(b) {
        const weight = /^\d+$/.test(b.routingKey) ? Number(b.routingKey) : NaN;
        if (!Number.isInteger(weight) || weight < 1 || weight > weightMax) {
          return `binding key of a consistent-hash exchange is the destination's weight: an integer 1..${weightMax}, got '${b.routingKey}'`;
        }
        return null;
      },
    });
  },
};

export default plugin;
