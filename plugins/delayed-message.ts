// x-delayed-message, compatible with rabbitmq-delayed-message-exchange (declare with
// x-delayed-type, delay a message by its x-delay header in ms, routed like x-delayed-type when
// due), except that held messages are replicated: they wait in durable (Raft-replicated) queues of
// the exchange, so a delay survives the loss of any one node, the one that received them included.
//
// How: the exchange owns 32 "delay queues" espresso-delay.<exchange>.<k>, k = 0..31, each with
// x-message-ttl = 2^k ms and the exchange itself as dead-letter exchange. A message with delay d
// goes through the queues of d's set bits, largest first: it waits 2^k ms at the head-expiring
// FIFO of level k (one TTL per queue, so expiry order is arrival order and exact), is dead-lettered
// back to the exchange, and the exchange sends it on to the next bit's queue; once every bit is
// passed (the x-death entries say which), it is routed as x-delayed-type routes it, with the
// bindings of that moment. Each queue is passed at most once, so dead-letter cycle detection never
// fires; time runs on each queue leader's clock, so a delay is d plus a few ms per hop.
//
// Kept from RabbitMQ's plugin: x-delay parsing (integers, truncated floats, numeric strings; none,
// <= 0, > 2^32-1 or another type: routed at once). Different on purpose: a delayed message counts
// as routed when it enters the first delay queue (no immediate NO_ROUTE return, no alternate
// exchange copy), and its publisher confirm means replicated on a majority. As RabbitMQ's plugin,
// a delivered message that was delayed carries x-delay negated; the delay queues' x-death entries
// are taken off the delivered copy (a deliver hook: one header lookup per delivery otherwise).

import type { BuiltinExchangeType, EspressoPlugin, ExchangeInfo, Headers, PluginMessage } from '../src/broker/plugin-api.js';

const delayMaxMs = 4_294_967_295;
const levels = 32;
const delayedTypes: readonly BuiltinExchangeType[] = ['direct', 'fanout', 'topic', 'headers'];

export function delayQueueName(exchange: string, level: number): string {
  return `espresso-delay.${exchange}.${level}`;
}

/** x-delay as RabbitMQ's plugin reads it; 0 when the message is not delayed. */
export function delayOf(headers: Headers): number {
  const v = headers['x-delay'];
  let n: number;
  if (typeof v === 'number') n = Math.trunc(v);
  else if (typeof v === 'bigint') n = Number(v);
  else if (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v)) n = Math.trunc(Number(v));
  else return 0;
  return n > 0 && n <= delayMaxMs ? n : 0;
}

/** Levels already waited in, from the x-death entries of this exchange's delay queues. */
function passedLevels(headers: Headers, exchange: string): Set<number> {
  const passed = new Set<number>();
  const deaths = headers['x-death'];
  if (!Array.isArray(deaths)) return passed;
  const prefix = `espresso-delay.${exchange}.`;
  for (const d of deaths as readonly unknown[]) {
    const queue = (d as { queue?: unknown } | null)?.queue;
    if (typeof queue === 'string' && queue.startsWith(prefix)) passed.add(Number(queue.slice(prefix.length)));
  }
  return passed;
}

/** The next delay queue level for the message (highest unpassed set bit of its delay), or -1: due. */
export function nextLevel(delayMs: number, passed: ReadonlySet<number>): number {
  for (let k = levels - 1; k >= 0; k--) {
    if (Math.floor(delayMs / 2 ** k) % 2 === 1 && !passed.has(k)) return k;
  }
  return -1;
}

function delayedType(x: ExchangeInfo): BuiltinExchangeType {
  return x.arguments['x-delayed-type'] as BuiltinExchangeType;
}

const plugin: EspressoPlugin = {
  name: 'delayed-message',
  version: '1.0.0',
  setup(api) {
    api.onDeliver((m) => {
      const delay = m.header('x-delay');
      if (delay === undefined || !Array.isArray(m.header('x-death'))) return undefined;
      const deaths = (m.headers['x-death'] as readonly unknown[]).filter((d) => !String((d as { queue?: unknown } | null)?.queue ?? '').startsWith('espresso-delay.'));
      const delayed = deaths.length < (m.headers['x-death'] as readonly unknown[]).length;
      if (!delayed) return undefined;
      const rest: Record<string, Headers[string]> = {};
      for (const [key, value] of Object.entries(m.headers)) {
        if (key === 'x-death') continue;
        // x-first-death-* / x-last-death-* that name a delay queue go with its x-death entry.
        const group = /^x-(first|last)-death-/.exec(key)?.[1];
        if (group !== undefined && String(m.headers[`x-${group}-death-queue`] ?? '').startsWith('espresso-delay.')) continue;
        rest[key] = value;
      }
      const n = delayOf({ 'x-delay': delay });
      return { headers: { ...rest, ...(deaths.length > 0 ? { 'x-death': deaths as Headers[string] } : {}), 'x-delay': n > 0 ? -n : delay } };
    });
    api.exchangeType('x-delayed-message', {
      route(message: PluginMessage, bindings, exchange) {
        const delay = delayOf(message.headers);
        if (delay > 0) {
          const level = nextLevel(delay, passedLevels(message.headers, exchange.name));
          if (level >= 0) return [delayQueueName(exchange.name, level)];
        }
        return api.routeAs(delayedType(exchange), message, bindings);
      },
      validateExchange(x) {
        const t = x.arguments['x-delayed-type'];
        if (t === undefined) return "Invalid argument, 'x-delayed-type' must be an existing exchange type";
        if (typeof t !== 'string' || !delayedTypes.includes(t as BuiltinExchangeType)) {
          return `Invalid argument, 'x-delayed-type' must be one of ${delayedTypes.join(', ')}, got ${JSON.stringify(t)}`;
        }
        return null;
      },
      validateBinding(b, x) {
        if (delayedType(x) === 'topic' && b.routingKey.split('.').some((w) => w.length > 255)) return 'topic binding key word too long';
        return null;
      },
      async declared(x, admin) {
        const missing: number[] = [];
        for (let k = 0; k < levels; k++) if (!admin.hasQueue(delayQueueName(x.name, k))) missing.push(k);
        await Promise.all(missing.map((k) => admin.declareQueue(delayQueueName(x.name, k), {
          durable: true,
          arguments: { 'x-message-ttl': 2 ** k, 'x-dead-letter-exchange': x.name },
        })));
        if (missing.length > 0) api.log.info('delay queues declared', { exchange: x.name, vhost: x.vhost, queues: missing.length });
      },
      // As RabbitMQ's plugin drops an exchange's held messages with it: its delay queues go too.
      async deleted(x, admin) {
        await Promise.all(Array.from({ length: levels }, (_, k) => admin.deleteQueue(delayQueueName(x.name, k))));
      },
    });
  },
};

export default plugin;
