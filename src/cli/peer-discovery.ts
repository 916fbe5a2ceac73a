// Peer discovery by DNS, as RabbitMQ's and Kubernetes' headless Services do it: a name whose A/AAAA
// records are the addresses of the cluster's nodes. Each address's cluster port is asked who it is
// (the transport handshake names the node) and whether it is already part of a running cluster. A
// running cluster is joined; else, once --discover-nodes nodes answer, they form one from that list,
// which every node of the first start computes alike (so they agree on the first voters).
//
// The system resolver (getaddrinfo: /etc/hosts, resolv.conf) is used unless --dns-server names one.

import { lookup } from 'node:dns/promises';
import { Resolver } from 'node:dns/promises';
import { withRemoteNode } from '../cluster/control-client.js';
import { CtlMethod, type ClusterStatus } from '../cluster/control-service.js';
import { decodeJson, encodeJson } from '../cluster/metadata-entries.js';
import type { NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import type { TlsFiles } from '../transport/index.js';
import { hostOf, hostPort } from './addresses.js';
import { ConfigError, ExitCode } from './config-loader.js';

export interface DiscoveryOptions {
  name: string;
  /** The nodes' cluster port (every node of a discovered cluster uses the same one). */
  port: number;
  /** How many nodes to wait for before forming a new cluster. */
  nodes: number;
  /** host[:port] of the DNS server to ask; '' = the system resolver. */
  dnsServer: string;
  secret: string;
  tls: TlsFiles | undefined;
  /** This node, as the others will dial it. */
  self: { id: NodeId; address: string };
  logger: Logger;
  /** Bounds: the whole search, and each probe of one address. */
  timeoutMs?: number;
  probeMs?: number;
}

export type Discovered =
  | { join: string; seeds?: undefined; hosts: string[] }
  | { join?: undefined; seeds: Array<{ id: NodeId; address: string }>; hosts: string[] };

export const discoveryDefaults = { timeoutMs: 600_000, probeMs: 2_000, retryMs: 1_000 } as const;

/** Waits until DNS names a running cluster (join it) or enough starting nodes (form one with them). */
export async function discoverPeers(o: DiscoveryOptions): Promise<Discovered> {
  if (o.port === 0) throw new ConfigError('--discover-dns needs a fixed --cluster-port: every node is dialed at the same port', ExitCode.Config);
  const resolve = resolverFor(o.dnsServer);
  const deadline = Date.now() + (o.timeoutMs ?? discoveryDefaults.timeoutMs);
  let lastSeen = '';
  // Ids learned at each address: later rounds dial the node by id (no refused probe logged there).
  const ids = new Map<string, NodeId>();
  for (let round = 1; ; round++) {
    const addresses = await resolve(o.name).catch((e: unknown) => {
      o.logger.info('discovery: the name does not resolve yet', { name: o.name, error: (e as Error).message });
      return [] as string[];
    });
    const found = await Promise.all(addresses.map((ip) => probe(o, hostPort(ip, o.port), ids)));
    const answered = found.filter((f): f is Probed => f !== undefined);
    const running = answered.find((f) => !f.status.starting && f.status.metaLeader !== null && f.id !== o.self.id);
    const hosts = answered.map((f) => hostOf(f.address) ?? f.address);
    if (running !== undefined) {
      o.logger.info('discovery: found a running cluster; joining it', { name: o.name, via: running.address, node: running.id });
      return { join: `${running.id}@${running.address}`, hosts };
    }
    // Each node as it advertises itself (a stable DNS name in Kubernetes), not the address DNS gave
    // for it now (a pod's IP changes when it restarts).
    const seeds = new Map(answered.map((f) => [f.id, f.status.nodes.find((n) => n.id === f.id)?.clusterAddress || f.address]));
    if (!seeds.has(o.self.id)) seeds.set(o.self.id, o.self.address);
    const seen = [...seeds.keys()].sort().join(',');
    if (seen !== lastSeen) o.logger.info('discovery: nodes found', { name: o.name, addresses: addresses.join(','), nodes: seen, want: o.nodes, round });
    lastSeen = seen;
    if (seeds.size >= o.nodes) {
      const list = [...seeds].map(([id, address]) => ({ id, address })).sort((a, b) => (a.id < b.id ? -1 : 1));
      o.logger.info('discovery: forming a new cluster', { seeds: list.map((s) => `${s.id}@${s.address}`).join(',') });
      return { seeds: list, hosts };
    }
    if (Date.now() >= deadline) {
      throw new ConfigError(`--discover-dns ${o.name}: found ${seeds.size} of the ${o.nodes} nodes wanted (${seen}) and no running cluster within ${Math.round((o.timeoutMs ?? discoveryDefaults.timeoutMs) / 1000)} s`, ExitCode.Unavailable);
    }
    await new Promise((r) => setTimeout(r, discoveryDefaults.retryMs));
  }
}

interface Probed {
  id: NodeId;
  address: string;
  status: ClusterStatus;
}

/** Who answers at `address`, and its view of the cluster; undefined when nothing (or no espresso node with our secret) does. */
async function probe(o: DiscoveryOptions, address: string, ids: Map<string, NodeId>): Promise<Probed | undefined> {
  const known = ids.get(address);
  const options = {
    address, secret: o.secret, timeoutMs: o.probeMs ?? discoveryDefaults.probeMs, ...(o.tls !== undefined ? { tls: o.tls } : {}), ...(known !== undefined ? { nodeId: known } : {}),
  };
  try {
    return await withRemoteNode(options, async (call, id) => {
      ids.set(address, id);
      return { id, address, status: decodeJson<ClusterStatus>(await call(CtlMethod.status, encodeJson({}))) };
    });
  } catch (e) {
    // Another node may have taken the address since (a rescheduled pod): learn its id again.
    ids.delete(address);
    o.logger.debug('discovery: no answer', { address, error: (e as Error).message });
    return undefined;
  }
}

/** A function from a name to its IPv4 and IPv6 addresses, sorted. */
export function resolverFor(dnsServer: string): (name: string) => Promise<string[]> {
  if (dnsServer === '') {
    return async (name) => (await lookup(name, { all: true })).map((a) => a.address).sort();
  }
  const resolver = new Resolver({ timeout: 2_000, tries: 2 });
  try {
    resolver.setServers([dnsServer]);
  } catch (e) {
    throw new ConfigError(`--dns-server '${dnsServer}' is not HOST[:PORT] ([v6]:PORT for IPv6): ${(e as Error).message}`, ExitCode.Config);
  }
  return async (name) => {
    const [v4, v6] = await Promise.all([
      resolver.resolve4(name).catch(() => [] as string[]),
      resolver.resolve6(name).catch(() => [] as string[]),
    ]);
    if (v4.length + v6.length === 0) throw new Error(`no A or AAAA record for ${name} at ${dnsServer}`);
    return [...v4, ...v6].sort();
  };
}
