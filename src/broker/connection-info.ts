// What one node says about its open AMQP connections, their channels and consumers: plain data the
// management API lists cluster-wide (named as RabbitMQ names a connection: "peer -> local"), and the
// closing of connections by name (the API's DELETE) or by vhost (a deleted vhost's connections).

import type { Channel } from './channel.js';
import type { FieldTable } from '../amqp/index.js';

export interface ConsumerInfo {
  readonly tag: string;
  readonly queue: string;
  readonly ackRequired: boolean;
  readonly exclusive: boolean;
  readonly prefetch: number;
}

export interface ChannelInfo {
  readonly number: number;
  readonly consumers: readonly ConsumerInfo[];
  readonly unacked: number;
  readonly prefetch: number;
  readonly globalPrefetch: number;
  readonly confirm: boolean;
  readonly transactional: boolean;
  readonly state: string;
}

export interface ConnectionInfo {
  /** RabbitMQ's connection name: "peerHost:peerPort -> host:port", unique in a cluster on one host too. */
  readonly name: string;
  readonly id: string;
  readonly node: string;
  readonly user: string;
  readonly vhost: string;
  readonly host: string;
  readonly port: number;
  readonly peerHost: string;
  readonly peerPort: number;
  /** running, flow (held by credit flow) or blocked (by an alarm). */
  readonly state: string;
  readonly connectedAtMs: number;
  readonly frameMax: number;
  readonly channelMax: number;
  readonly heartbeatSec: number;
  readonly clientProperties: Record<string, unknown>;
  readonly channels: readonly ChannelInfo[];
}

/** RabbitMQ's name of a connection from its socket's two ends. */
export function connectionName(peerHost: string, peerPort: number, host: string, port: number): string {
  return `${bare(peerHost)}:${peerPort} -> ${bare(host)}:${port}`;
}

/** An IPv4 address mapped into IPv6 reads as IPv4, as RabbitMQ shows it. */
function bare(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export function channelInfo(ch: Channel): ChannelInfo {
  return {
    number: ch.number,
    consumers: [...ch.consumers.values()].map((c) => ({ tag: c.tag, queue: c.queueName, ackRequired: !c.noAck, exclusive: c.exclusive, prefetch: c.prefetch })),
    unacked: ch.unacked.size,
    prefetch: ch.prefetchCount,
    globalPrefetch: ch.globalPrefetch,
    confirm: ch.confirms !== null,
    transactional: ch.tx !== null,
    state: ch.state === 'open' ? 'running' : ch.state,
  };
}

/** Client properties as JSON: strings, numbers and booleans kept, nested tables (capabilities) too. */
export function plainProperties(table: FieldTable, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(table)) {
    if (v.tag === 'F' && depth < 2) out[k] = plainProperties(v.value, depth + 1);
    else if (typeof v.value === 'string' || typeof v.value === 'number' || typeof v.value === 'boolean') out[k] = v.value;
    else if (typeof v.value === 'bigint') out[k] = Number(v.value);
    else if (v.value instanceof Uint8Array) out[k] = Buffer.from(v.value).toString('utf8');
  }
  return out;
}

interface Closable {
  readonly opened: boolean;
  readonly vhost: string;
  forceClose(text: string): void;
}

/**
 * A vhost deleted (on any node: the metadata entry applies everywhere) takes its connections on
 * this node with it: 320 CONNECTION_FORCED, RabbitMQ's "vhost 'v' is deleted". Checked when the
 * number of vhosts changes, so a phase of queue declares costs one comparison.
 */
export function closeOnVhostDeleted(metadata: unknown, ctx: { readonly metadata: { readonly state: { readonly vhosts: ReadonlyMap<string, unknown> } } },
  connections: () => Iterable<Closable>): () => void {
  const m = metadata as { onApplied?: (listener: () => void) => () => void } | undefined;
  if (m === undefined || typeof m.onApplied !== 'function') return () => undefined;
  let count = ctx.metadata.state.vhosts.size;
  return m.onApplied(() => {
    const vhosts = ctx.metadata.state.vhosts;
    if (vhosts.size === count) return;
    const shrank = vhosts.size < count;
    count = vhosts.size;
    if (!shrank) return;
    for (const c of [...connections()]) {
      if (c.opened && !vhosts.has(c.vhost)) c.forceClose(`CONNECTION_FORCED - vhost '${c.vhost}' is deleted`);
    }
  });
}
