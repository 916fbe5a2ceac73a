// The node's cluster side as the server command builds it: the cluster secret (given or kept in the
// data directory), the group host on <data-dir>/raft, the metadata group over the --seeds voters (or
// the cluster --join made this node part of), rpc, gossip, links to every registered node, and ctl.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashPassword } from '../broker/auth.js';
import type { BrokerConfig } from '../broker/config.js';
import { GroupHost } from '../cluster/index.js';
import { withRemoteNode } from '../cluster/control-client.js';
import { reportLoad, serveControl, type ControlDeps } from '../cluster/control-service.js';
import { decodeJson, encodeJson, MetaMethod, type JoinAnswer } from '../cluster/metadata-entries.js';
import { exchangePluginDifference, ReplicatedMetadataClient, metadataGroupDefaults, type ClusterNode } from '../cluster/metadata-group.js';
import { GroupRepairDriver, serveGroupRepair } from '../cluster/group-repair.js';
import { ClusterRpc } from '../cluster/rpc.js';
import { isOperatingError, OperatingErrorCode } from '../lib/errors.js';
import { nodeId as toNodeId, type NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import { GossipService, type Seed } from '../membership/index.js';
import type { TlsFiles } from '../transport/index.js';
import { bracketed, hostOf, hostPort, nodeAddresses, refuseLoopbackAmong, type NodeAddresses } from './addresses.js';
import { ConfigError, ExitCode } from './config-loader.js';
import type { ServerConfig } from './options.js';
import { clusterPortOffset, portFromAmqp } from './ports.js';
import { discoverPeers } from './peer-discovery.js';

const secretFile = 'cluster-secret';
/** What a node of a cluster keeps (bootstrap voters, peers), to host the metadata group again after a restart. */
const membershipFile = 'cluster.json';
/** Largest message body on a cluster of several nodes: fits one transport payload with headers. */
const clusterMessageSizeMax = 24 * 1024 * 1024;
export const espressoVersion = '0.1.0';
const joinTimeoutMs = 15_000;
const joinRetryMs = 500;
/** How long a node of a cluster waits at start for the metadata group's quorum. */
const clusterStartTimeoutMs = 600_000;

export interface StartedCluster {
  readonly nodeId: NodeId;
  readonly groupHost: GroupHost;
  readonly metadata: ReplicatedMetadataClient;
  /** The metadata group's bootstrap voters (the same list on every node): other groups of the node's own (tasks) use it too. */
  readonly members: readonly NodeId[];
  /** Calls between nodes over the group host's transport (one instance per node). */
  readonly rpc: ClusterRpc;
  /** Liveness of the other nodes; undefined on a one-node cluster. */
  readonly gossip: GossipService | undefined;
  /** The config record to start the broker with (hand this cluster to startBroker beside it). */
  readonly brokerConfig: BrokerConfig;
  /** Records the AMQP port the broker got (when it asked for any free one) in the registry and gossip. */
  advertiseAmqpPort(port: number): void;
  close(): Promise<void>;
}

export interface SeedAddress {
  id: NodeId;
  /** host:port of its cluster port, as this node dials it. */
  address: string;
}

interface SavedMembership {
  bootstrap: NodeId[];
  peers: SeedAddress[];
}

/** -1 = the AMQP port + 20000, RabbitMQ's inter-node port (any free port when AMQP's is 0 too). */
export function clusterPortOf(config: ServerConfig): number {
  return portFromAmqp(config.clusterPort, config.port, clusterPortOffset, 'cluster port', '--cluster-port');
}

/**
 * The node's cluster secret, kept in <data-dir>/cluster-secret (mode 600) from its first start:
 * the one given (--cluster-secret, ESPRESSO_CLUSTER_SECRET), else a random one. A later start
 * without it reads it back (a node restarts from its `ps` command line, `ctl --data-dir` reads
 * it); one given that differs from the kept one is refused (exit 78), as is a data directory
 * that holds a node but no secret, rather than a node that starts with a new random secret and
 * cannot talk to its cluster.
 */
export function clusterSecretOf(config: ServerConfig): string {
  const path = join(config.dataDir, secretFile);
  let kept = '';
  try {
    kept = readFileSync(path, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError(`cannot read the cluster secret '${path}' (${(e as NodeJS.ErrnoException).code}); fix its permissions or pass --cluster-secret`, ExitCode.CantCreate);
    }
  }
  const given = config.clusterSecret;
  if (kept !== '' && given !== '' && given !== kept) {
    throw new ConfigError(
      `the cluster secret given differs from the one data directory '${config.dataDir}' was created with (kept in ${path}); ` +
      'start the node with its own secret, or without one to use the kept one', ExitCode.Config,
    );
  }
  if (kept !== '') return kept;
  if (given === '' && existsSync(join(config.dataDir, 'raft'))) {
    throw new ConfigError(
      `data directory '${config.dataDir}' holds a node but no cluster secret (${path} is missing); ` +
      'start it with its cluster\'s secret (--cluster-secret or ESPRESSO_CLUSTER_SECRET)', ExitCode.Config,
    );
  }
  const secret = given !== '' ? given : randomBytes(32).toString('hex');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/** id@host:port, one per seed; ids unique. */
export function parseSeeds(list: readonly string[]): SeedAddress[] {
  const out: SeedAddress[] = [];
  for (const s of list) {
    const a = parseNodeAddress(s, '--seeds');
    if (a.id === undefined) throw new ConfigError(`--seeds entry '${s}' needs a node id: ID@HOST:PORT`, ExitCode.Usage);
    if (out.some((o) => o.id === a.id)) throw new ConfigError(`--seeds lists node '${a.id}' twice`, ExitCode.Usage);
    out.push({ id: a.id, address: a.address });
  }
  return out;
}

/** The cluster port's mutual-TLS files: all three flags or none. */
export function clusterTlsOf(c: { clusterTlsCert: string; clusterTlsKey: string; clusterTlsCa: string }): TlsFiles | undefined {
  const given = [c.clusterTlsCert, c.clusterTlsKey, c.clusterTlsCa].filter((f) => f !== '').length;
  if (given === 0) return undefined;
  if (given < 3) throw new ConfigError('mutual TLS on the cluster port needs all of --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca', ExitCode.Usage);
  return { certFile: c.clusterTlsCert, keyFile: c.clusterTlsKey, caFile: c.clusterTlsCa };
}

/** [id@]host:port, the host a name, an IPv4 address or an IPv6 address in brackets ([fd00::1]:25672). */
export function parseNodeAddress(s: string, flag: string): { id: NodeId | undefined; address: string } {
  const m = /^(?:([^@\s]+)@)?((?:\[[0-9a-fA-F:.]+\]|[^@:\s[\]]+):\d{1,5})$/.exec(s.trim());
  if (m === null) throw new ConfigError(`${flag}: '${s}' is not [ID@]HOST:PORT (an IPv6 host in brackets: [fd00::1]:25672)`, ExitCode.Usage);
  return { id: m[1] === undefined ? undefined : toNodeId(m[1]), address: m[2]! };
}

/** The metadata voters a --seeds list bootstraps: the first 5 ids, sorted. */
export function seedVoters(seeds: readonly SeedAddress[]): NodeId[] {
  return seeds.map((s) => s.id).sort().slice(0, metadataGroupDefaults.votersMax);
}

/** `exchangePlugins`: name@version of the loaded plugins that add exchange types (checked at join). */
export async function startNodeCluster(config: ServerConfig, logger: Logger, exchangePlugins: readonly string[] = []): Promise<StartedCluster> {
  const nodeId = toNodeId(config.nodeId !== '' ? config.nodeId : config.nodeName);
  const seeds = parseSeeds(config.seeds);
  if (seeds.length > 0 && !seeds.some((s) => s.id === nodeId)) {
    throw new ConfigError(`--seeds does not list this node's id '${nodeId}'; give every node the same list, this one included (or set --node-id)`, ExitCode.Config);
  }
  if (seeds.length > 0 && config.join !== '') throw new ConfigError('give --seeds (form a cluster) or --join (join one), not both', ExitCode.Usage);
  if (config.discoverDns !== '' && (seeds.length > 0 || config.join !== '')) {
    throw new ConfigError('give one of --seeds, --join or --discover-dns: they are three ways to find the cluster', ExitCode.Usage);
  }
  const clustered = seeds.length > 0 || config.join !== '' || config.discoverDns !== '';
  if (clustered && config.maxMessageSizeBytes > clusterMessageSizeMax) {
    // One replicated message must cross the cluster link as one Raft append (transport payloadBytesMax).
    throw new ConfigError(`--max-message-size ${config.maxMessageSizeBytes} is above ${clusterMessageSizeMax} bytes, the largest message a cluster of several nodes replicates`, ExitCode.Config);
  }
  const dialed = [...seeds.filter((s) => s.id !== nodeId).map((s) => s.address), ...(config.join !== '' ? [parseNodeAddress(config.join, '--join').address] : [])];
  const addresses = await nodeAddresses(config, dialed.map((a) => hostOf(a) ?? a));
  const secret = clusterSecretOf(config);
  const groupHost = await startGroupHost(config, addresses, nodeId, secret, logger);
  try {
    return await formCluster(config, addresses, nodeId, seeds, secret, groupHost, logger, exchangePlugins);
  } catch (e) {
    await groupHost.close();
    throw e;
  }
}

/** --discover-dns on a node that is not part of a cluster yet: the seeds to form one with, or a member to join. */
async function discovered(
  config: ServerConfig, addresses: NodeAddresses, self: ClusterNode, secret: string, port: number, logger: Logger,
): Promise<{ seeds: SeedAddress[]; join: string } | undefined> {
  if (config.discoverDns === '' || readMembership(config.dataDir) !== undefined) return undefined;
  const found = await discoverPeers({
    name: config.discoverDns, port, nodes: config.discoverNodes, dnsServer: config.dnsServer, secret,
    tls: clusterTlsOf(config), self: { id: self.id, address: self.clusterAddress }, logger: logger.child('discovery'),
  });
  refuseLoopbackAmong(addresses.advertise, found.hosts);
  return found.join !== undefined ? { seeds: [], join: found.join } : { seeds: found.seeds, join: '' };
}

async function startGroupHost(config: ServerConfig, addresses: NodeAddresses, nodeId: NodeId, secret: string, logger: Logger): Promise<GroupHost> {
  const port = clusterPortOf(config);
  try {
    const tls = clusterTlsOf(config);
    const listen = { host: bracketed(addresses.clusterBind), port };
    return await GroupHost.start({ nodeId, dataDir: join(config.dataDir, 'raft'), listen, secret, logger, ...(tls !== undefined ? { tls } : {}) });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const text = e instanceof Error ? e.message : String(e);
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EACCES') {
      throw new ConfigError(`cannot read a cluster TLS file: ${text}`, ExitCode.NoInput);
    }
    if (/EADDRINUSE|address already in use/i.test(text)) {
      throw new ConfigError(`cluster port ${port} on ${addresses.clusterBind} is already in use; pick another with --cluster-port`, ExitCode.Unavailable);
    }
    if (/No address added|EADDRNOTAVAIL|Cannot assign/i.test(text)) {
      throw new ConfigError(`cannot listen on ${hostPort(addresses.clusterBind, port)} for the cluster port (in use, or not an address of this host); check --cluster-bind and --cluster-port`, ExitCode.Unavailable);
    }
    throw e;
  }
}

async function formCluster(
  given: ServerConfig, addresses: NodeAddresses, nodeId: NodeId, givenSeeds: readonly SeedAddress[], secret: string, groupHost: GroupHost, logger: Logger,
  exchangePlugins: readonly string[],
): Promise<StartedCluster> {
  const rpc = new ClusterRpc(groupHost.transport, logger.child('rpc'));
  const advertised = (port: number): string => hostPort(addresses.amqpAdvertise, port);
  const self: ClusterNode = { id: nodeId, clusterAddress: hostPort(addresses.advertise, groupHost.port), amqpAddress: advertised(given.port), version: espressoVersion, ...(exchangePlugins.length > 0 ? { exchangePlugins } : {}) };
  // ctl is answered while the node still waits for its metadata group (status says so), and while
  // it looks for its peers by DNS (they ask it who it is and whether it is part of a cluster yet).
  const deps: ControlDeps = { metadata: undefined, groupHost, gossip: undefined, self, audit: logger.child('audit') };
  serveControl(rpc, deps);
  let found: Awaited<ReturnType<typeof discovered>>;
  try {
    found = await discovered(given, addresses, self, secret, groupHost.port, logger);
  } catch (e) {
    rpc.close();
    throw e;
  }
  const config = found === undefined ? given : { ...given, join: found.join };
  const seeds = found?.seeds ?? givenSeeds;
  const pinned = new Map(seeds.filter((s) => s.id !== nodeId).map((s) => [s.id, s.address]));
  const link = linker(groupHost, nodeId, pinned);
  for (const [id, address] of pinned) groupHost.addPeer(id, address);
  const { members, gossipSeeds } = await membersToHost(config, nodeId, seeds, secret, self, link, logger);
  const meta = { amqpAddress: self.amqpAddress, clusterAddress: self.clusterAddress, load: 0, version: espressoVersion, leaders: {} };
  const gossip = gossipSeeds.length === 0 ? undefined : new GossipService({
    transport: groupHost.transport, meta, logger: logger.child('gossip'),
    seeds: gossipSeeds.map((s): Seed => ({ nodeId: s.id, clusterAddress: s.address })),
  });
  deps.gossip = gossip;
  // A group whose log was found damaged here is rebuilt from its peers (the metadata group too:
  // its start below then waits until this node caught up and applied its start entry).
  serveGroupRepair(groupHost, rpc, logger);
  const repair = new GroupRepairDriver({
    host: groupHost, rpc, logger,
    peers: () => [...pinned.keys(), ...(deps.metadata?.nodes().map((n) => n.id) ?? [])],
  });
  const stopLoad = gossip === undefined ? () => {} : reportLoad(gossip, deps, meta);
  const warnPluginMismatch = pluginMismatchWarner(self, logger);
  let metadata: ReplicatedMetadataClient;
  try {
    metadata = await ReplicatedMetadataClient.start({
      groupHost, members, rpc, self, logger,
      // One node elects itself at once; a cluster's node waits for a quorum of voters to come up.
      startTimeoutMs: members.length === 1 && members[0] === nodeId ? metadataGroupDefaults.startTimeoutMs : clusterStartTimeoutMs,
      defaultUser: { name: config.defaultUser, passwordHash: hashPassword(config.defaultPass), tags: ['administrator'] },
      onApplied: (c) => {
        link(c.nodes());
        warnPluginMismatch(c.nodes());
      },
    });
  } catch (e) {
    stopLoad();
    gossip?.stop();
    repair.close();
    rpc.close();
    throw e;
  }
  deps.metadata = metadata;
  return {
    nodeId, groupHost, metadata, members, rpc, gossip, brokerConfig: { ...config },
    advertiseAmqpPort: (port) => {
      meta.amqpAddress = advertised(port);
      gossip?.setMeta({ ...meta, load: groupHost.leaderCount() });
      metadata.addNode({ ...self, amqpAddress: meta.amqpAddress }).catch((e: unknown) => {
        logger.warn('could not record the AMQP port in the node registry', { error: e instanceof Error ? e.message : String(e) });
      });
    },
    close: async () => {
      stopLoad();
      gossip?.stop();
      repair.close();
      rpc.close();
      await metadata.close();
      await groupHost.close();
    },
  };
}

/**
 * Nodes that formed the cluster together (--seeds) are not compared at join: a member whose
 * exchange-type plugins differ from this node's is logged, once per member.
 */
function pluginMismatchWarner(self: ClusterNode, logger: Logger): (nodes: readonly ClusterNode[]) => void {
  const warned = new Set<string>();
  return (nodes) => {
    for (const n of nodes) {
      if (n.id === self.id || warned.has(n.id)) continue;
      const differs = exchangePluginDifference(self.exchangePlugins ?? [], n.exchangePlugins ?? [], 'this node', n.id);
      if (differs === null) continue;
      warned.add(n.id);
      logger.error('a member loads other exchange-type plugins than this node: exchanges of the types that differ will not route alike', {
        member: n.id, difference: differs,
      });
    }
  };
}

/** Keeps a stream to every registered node: at its --seeds address when it has one, else its own. */
function linker(groupHost: GroupHost, self: NodeId, pinned: ReadonlyMap<NodeId, string>): (nodes: readonly ClusterNode[]) => void {
  const linked = new Map<NodeId, string>();
  return (nodes) => {
    for (const n of nodes) {
      const address = pinned.get(n.id) ?? n.clusterAddress;
      if (n.id === self || address === '' || linked.get(n.id) === address) continue;
      linked.set(n.id, address);
      groupHost.addPeer(n.id, address);
    }
    for (const id of [...linked.keys()]) {
      if (pinned.has(id) || nodes.some((n) => n.id === id)) continue;
      linked.delete(id);
      groupHost.transport.disconnect(id);
    }
  };
}

/** The metadata group's bootstrap members for this node, and whom gossip starts from. */
async function membersToHost(
  config: ServerConfig, nodeId: NodeId, seeds: readonly SeedAddress[], secret: string, self: ClusterNode,
  link: (nodes: readonly ClusterNode[]) => void, logger: Logger,
): Promise<{ members: NodeId[]; gossipSeeds: SeedAddress[] }> {
  const saved = readMembership(config.dataDir);
  if (seeds.length > 0) {
    // The group's bootstrap voters never change once it exists: a later --seeds list that sorts
    // differently (a node added to it) must not give this node another idea of the first config.
    const voters = seedVoters(seeds);
    if (saved === undefined) writeMembership(config.dataDir, { bootstrap: voters, peers: seeds.filter((s) => s.id !== nodeId) });
    else if (saved.bootstrap.join(',') !== voters.join(',')) {
      logger.warn('--seeds names other first voters than this node bootstrapped with; keeping the original', {
        bootstrap: saved.bootstrap.join(','), seedVoters: voters.join(','),
      });
    }
    return { members: saved?.bootstrap ?? voters, gossipSeeds: [...seeds] };
  }
  if (saved !== undefined) {
    link(saved.peers.map((p) => ({ id: p.id, clusterAddress: p.address, amqpAddress: '', version: '' })));
    return { members: saved.bootstrap, gossipSeeds: saved.peers };
  }
  if (config.join === '') return { members: [nodeId], gossipSeeds: [] };
  const { via, answer } = await requestJoin(config.join, secret, clusterTlsOf(config), self, logger);
  link(answer.nodes);
  const peers = answer.nodes.filter((n) => n.id !== nodeId).map((n) => ({ id: n.id, address: n.clusterAddress }));
  writeMembership(config.dataDir, { bootstrap: answer.bootstrap, peers });
  logger.info('joined the cluster', { via, bootstrap: answer.bootstrap.join(','), nodes: answer.nodes.length });
  return { members: answer.bootstrap, gossipSeeds: peers };
}

/** Asks the node at --join (through a transient peer that learns its id) to add this node. */
async function requestJoin(target: string, secret: string, tls: TlsFiles | undefined, self: ClusterNode, logger: Logger): Promise<{ via: NodeId; answer: JoinAnswer }> {
  const { id, address } = parseNodeAddress(target, '--join');
  const deadline = Date.now() + joinTimeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const known = { ...(id !== undefined ? { nodeId: id } : {}), ...(tls !== undefined ? { tls } : {}) };
      return await withRemoteNode({ address, secret, timeoutMs: joinTimeoutMs, ...known }, async (call, via) => ({
        via, answer: decodeJson<JoinAnswer>(await call(MetaMethod.join, encodeJson(self))),
      }));
    } catch (e) {
      if (!isOperatingError(e)) throw e;
      // The member may be starting too (a whole cluster restarting): ask again for a while.
      if (e.code === OperatingErrorCode.Unreachable && Date.now() < deadline) {
        logger.info('join: the member does not answer yet; retrying', { address, attempt });
        await new Promise((resolve) => setTimeout(resolve, joinRetryMs));
        continue;
      }
      logger.error('cannot join the cluster', { address, reason: e.message, code: e.code });
      throw new ConfigError(`cannot join the cluster at ${address}: ${e.message}`, ExitCode.Unavailable);
    }
  }
}

function readMembership(dataDir: string): SavedMembership | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, membershipFile), 'utf8')) as SavedMembership;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read '${join(dataDir, membershipFile)}': ${(e as Error).message}`, ExitCode.Config);
  }
}

function writeMembership(dataDir: string, m: SavedMembership): void {
  writeFileSync(join(dataDir, membershipFile), `${JSON.stringify(m)}\n`);
}
