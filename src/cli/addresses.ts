// Which addresses a node listens on and which it tells the others: the AMQP bind, the cluster port's
// bind (--cluster-bind, default --bind) and the advertised host (--advertise, default the cluster
// bind, or the host's first non-loopback address when bound to a wildcard), IPv4 and IPv6; and the
// checks that keep a node from advertising an address nobody can reach it at.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { ConfigError, ExitCode } from './config-loader.js';

/** host:port, with an IPv6 literal in brackets ([fd00::1]:25672) as gRPC and URLs want it. */
export function hostPort(host: string, port: number): string {
  return `${bracketed(host)}:${port}`;
}

/** An IPv6 literal in brackets, anything else as it is. */
export function bracketed(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** The host part of host:port or [v6]:port (without brackets); undefined when it is neither. */
export function hostOf(address: string): string | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):\d{1,5}$/.exec(address);
  return m === null ? undefined : (m[1] ?? m[2]);
}

export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** 127.0.0.0/8, ::1, ::ffff:127.x and localhost: reachable from this host only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || h.startsWith('127.') || h.startsWith('::ffff:127.');
}

/** One address of this host as node:os reports it. */
export interface LocalAddress {
  address: string;
  family: 4 | 6;
  internal: boolean;
}

export function localAddresses(): LocalAddress[] {
  const out: LocalAddress[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      out.push({ address: a.address, family: a.family === 'IPv6' ? 6 : 4, internal: a.internal });
    }
  }
  return out;
}

/**
 * The address a node bound to a wildcard advertises: 0.0.0.0, the first non-loopback IPv4 address;
 * ::, the first non-loopback IPv6 address that is not link-local (those need a zone), else IPv4.
 */
export function firstNonLoopback(wildcard: string, local: readonly LocalAddress[]): string | undefined {
  const usable = local.filter((a) => !a.internal && !isLoopbackHost(a.address) && !a.address.toLowerCase().startsWith('fe80:'));
  const v4 = usable.find((a) => a.family === 4)?.address;
  if (wildcard === '0.0.0.0') return v4;
  return usable.find((a) => a.family === 6)?.address ?? v4;
}

export interface AddressSettings {
  bind: string;
  /** '' = --bind. */
  clusterBind: string;
  /** '' = the cluster bind, or the host's first non-loopback address when that is a wildcard. */
  advertise: string;
}

export interface NodeAddresses {
  amqpBind: string;
  clusterBind: string;
  /** The host other nodes dial and clients are told (an IP literal or a DNS name). */
  advertise: string;
  /** The host clients are told for AMQP: the advertised one, unless AMQP listens on another address only. */
  amqpAdvertise: string;
}

/**
 * The addresses to use, or a ConfigError saying why they cannot work. `peerHosts` are the hosts of
 * the other nodes this one dials (--seeds but itself, --join); `advertisedIps` what the advertised
 * host is (itself when an IP literal, else what the resolver said; empty when it did not resolve).
 */
export function planAddresses(
  s: AddressSettings, peerHosts: readonly string[], local: readonly LocalAddress[], advertisedIps: (host: string) => readonly string[],
): NodeAddresses {
  const clusterBind = s.clusterBind !== '' ? s.clusterBind : s.bind;
  if (s.advertise !== '' && isWildcard(s.advertise)) {
    throw new ConfigError(`--advertise ${s.advertise} is a wildcard: advertise an address or name other nodes can dial`, ExitCode.Config);
  }
  if (isIP(clusterBind) === 0 && clusterBind !== 'localhost') {
    throw new ConfigError(`--cluster-bind '${clusterBind}' is not an IP address`, ExitCode.Config);
  }
  const fallback = isWildcard(clusterBind) ? firstNonLoopback(clusterBind, local) ?? (clusterBind === '::' ? '::1' : '127.0.0.1') : clusterBind;
  const advertise = s.advertise !== '' ? s.advertise : fallback;
  const ips = advertisedIps(advertise);
  const source = s.advertise !== '' ? `--advertise ${advertise}` : `the advertised address ${advertise} (from ${isWildcard(clusterBind) ? 'this host\'s interfaces' : '--cluster-bind/--bind'})`;
  if (ips.length === 0) {
    throw new ConfigError(`${source} does not resolve to an address of this host; other nodes could not dial it`, ExitCode.Config);
  }
  const mine = new Set(local.map((a) => a.address.toLowerCase()));
  const bindable = ips.filter((ip) => isLoopbackHost(ip) ? isWildcard(clusterBind) || isLoopbackHost(clusterBind) || mine.has(ip) : mine.has(ip.toLowerCase()));
  if (bindable.length === 0) {
    throw new ConfigError(`${source} (${ips.join(', ')}) is not an address of this host, so this node cannot be reached there; use one of ${[...mine].join(', ')}`, ExitCode.Config);
  }
  if (!isWildcard(clusterBind) && !bindable.some((ip) => sameIp(ip, clusterBind))) {
    throw new ConfigError(`${source} is not where the cluster port listens (--cluster-bind ${clusterBind}); advertise that address, or bind the cluster port to ${bindable[0]} or a wildcard`, ExitCode.Config);
  }
  if (ips.every(isLoopbackHost)) refuseLoopbackAmong(ips[0]!, peerHosts);
  const amqpAdvertise = isWildcard(s.bind) || sameIp(s.bind, clusterBind) ? advertise : s.bind;
  return { amqpBind: s.bind, clusterBind, advertise, amqpAdvertise };
}

/** A loopback advertised address is refused when any node this one dials is on another host. */
export function refuseLoopbackAmong(advertise: string, peerHosts: readonly string[]): void {
  if (!isLoopbackHost(advertise)) return;
  const remote = peerHosts.filter((h) => !isLoopbackHost(h));
  if (remote.length === 0) return;
  throw new ConfigError(`the advertised address ${advertise} is loopback, but the nodes this one dials are not (${remote.join(', ')}): they would dial themselves back; set --bind, --cluster-bind or --advertise to an address they can reach`, ExitCode.Config);
}

function sameIp(a: string, b: string): boolean {
  const norm = (x: string): string => (x === 'localhost' ? '127.0.0.1' : x.toLowerCase());
  return norm(a) === norm(b) || (isLoopbackHost(a) && isLoopbackHost(b) && (b === 'localhost' || a === 'localhost'));
}

/** How long a node waits for its advertised name to resolve (a Kubernetes pod's record comes a moment after the pod). */
const advertiseResolveMs = 30_000;

/** The addresses of this node for `settings`, resolving an advertised name with the system resolver. */
export async function nodeAddresses(settings: AddressSettings, peerHosts: readonly string[]): Promise<NodeAddresses> {
  const local = localAddresses();
  const clusterBind = settings.clusterBind !== '' ? settings.clusterBind : settings.bind;
  const named = settings.advertise !== '' && isIP(settings.advertise) === 0 && !isWildcard(settings.advertise) ? settings.advertise : undefined;
  let resolved: string[] = [];
  if (named !== undefined) resolved = await resolveWithin(named, advertiseResolveMs, local, clusterBind);
  return planAddresses(settings, peerHosts, local, (host) => (isIP(host) !== 0 ? [host] : host === named ? resolved : host === 'localhost' ? ['127.0.0.1'] : []));
}

/** The name's addresses; retried until one is this host's (or the time is up). */
async function resolveWithin(name: string, ms: number, local: readonly LocalAddress[], clusterBind: string): Promise<string[]> {
  const deadline = Date.now() + ms;
  const mine = new Set(local.map((a) => a.address.toLowerCase()));
  let last: string[] = [];
  for (let attempt = 0; attempt < 1000; attempt++) {
    try {
      last = (await lookup(name, { all: true })).map((a) => a.address);
      if (last.some((ip) => mine.has(ip.toLowerCase()) || (isLoopbackHost(ip) && isLoopbackHost(clusterBind)))) return last;
    } catch {
      last = [];
    }
    if (Date.now() >= deadline) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  return last;
}
