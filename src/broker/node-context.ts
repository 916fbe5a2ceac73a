// Everything one node's connections share: configuration, logger, clock, the metadata client,
// the live queues, the direct reply-to registry, the resource alarms (memory, disk), the
// node's group host, and the counters and trace hook the metrics layer reads.

import type { GroupHost } from '../cluster/index.js';
import { withPlacement } from '../cluster/placement.js';
import { QueueMesh } from '../cluster/queue-service.js';
import { ReplyRelay } from '../cluster/reply-relay.js';
import { ClusterRpc } from '../cluster/rpc.js';
import type { NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import type { Clock } from '../lib/random.js';
import { createMetadataState } from '../model/index.js';
import { hashPassword } from './auth.js';
import type { BrokerConfig } from './config.js';
import { createBrokerCounters, noTracing, type BrokerCounters, type TraceRecorder } from './counters.js';
import { DirectReplyRegistry } from './direct-reply-to.js';
import { ConnectionTracking } from './connection-tracking.js';
import { limits } from './limits.js';
import { LoginThrottle } from './login-throttle.js';
import { LocalMetadataClient, type MetadataClient } from './metadata-client.js';
import { deadLetterSinkFor } from './publish.js';
import { PublishHooks } from './publish-hooks.js';
import { incarnation, QueueRegistry } from './queue-registry.js';
import type { PluginHost } from './plugin-host.js';

/** Peers coming and going and Raft leaders changing, as the plugins' lifecycle events. */
function clusterEventsTo(plugins: PluginHost, host: GroupHost): void {
  host.transport.onPeerState((peer, state) => plugins.emit(state === 'up' ? 'node.up' : 'node.down', { node: peer }));
  host.onLeaderChange((group, leader) => plugins.emit('leader.changed', { group, leader }));
}

export interface NodeContext {
  readonly config: BrokerConfig;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly nodeId: string;
  readonly metadata: MetadataClient;
  readonly queues: QueueRegistry;
  readonly replies: DirectReplyRegistry;
  /** The node's plugins (null: none loaded). */
  readonly plugins: PluginHost | null;
  /** The node's Raft groups (null when the broker runs without a cluster, as in broker unit tests). */
  readonly groupHost: GroupHost | null;
  /** Exchanges a higher layer serves (espresso.tasks). */
  readonly publishHooks: PublishHooks;
  /** True while RSS is above the watermark: publishers are blocked. */
  memoryAlarm: boolean;
  /** True while free disk space is below the limit or the WAL's writes fail: publishers are blocked. */
  diskAlarm: boolean;
  /** Sockets of the node, handshakes included. */
  connectionCount: () => number;
  /** Connections past connection.open (what --max-connections bounds). */
  openConnections: number;
  /** Failed logins per source address and user (login-throttle.ts). */
  readonly loginThrottle: LoginThrottle;
  /** Open connections per vhost and user, channels per user, the connection rate (connection-tracking.ts). */
  readonly tracking: ConnectionTracking;
  /** Plain counters for /metrics (counters.ts). */
  readonly counters: BrokerCounters;
  /** Where 1 in N publishes' stage traces go (no-op without the metrics layer). */
  readonly tracer: TraceRecorder;
  shutdown(): void;
}

/** A node's cluster parts, built (async) by the composition root before the broker starts. */
export interface NodeCluster {
  readonly groupHost: GroupHost;
  readonly metadata: MetadataClient;
  /**
   * The node's one ClusterRpc on groupHost.transport (two on one transport would answer each
   * other's methods); created here when the cluster side has none.
   */
  readonly rpc?: ClusterRpc;
}

/** What the cluster's metadata client offers beyond MetadataClient (duck-typed: optional). */
interface ClusterMetadataExtras {
  nodes?: () => ReadonlyArray<{ readonly id: NodeId }>;
  onApplied?: (listener: () => void) => () => void;
}

/** The queue mesh of a node with a cluster, and the metadata client with placement on declares. */
function meshOf(cluster: NodeCluster, logger: Logger, replies: DirectReplyRegistry): { mesh: QueueMesh; metadata: MetadataClient; extras: ClusterMetadataExtras } {
  const host = cluster.groupHost;
  const rpc = cluster.rpc ?? new ClusterRpc(host.transport, logger.child('rpc'));
  const mesh = new QueueMesh({ host, rpc, incarnation, logger: logger.child('mesh') });
  replies.attachRelay(new ReplyRelay(rpc, replies, logger.child('direct-reply-to'), mesh.limits.callTimeoutMs));
  const extras = cluster.metadata as MetadataClient & ClusterMetadataExtras;
  const nodes = (): readonly NodeId[] => (typeof extras.nodes === 'function' ? extras.nodes().map((n) => n.id) : [host.nodeId]);
  const live = (n: NodeId): boolean => n === host.nodeId || host.transport.isUp(n);
  return { mesh, metadata: withPlacement(cluster.metadata, nodes, mesh.limits.defaultReplicas, live), extras };
}

/** Without `cluster` (broker unit tests), metadata lives in memory and there is no group host. */
export function createNodeContext(
  config: BrokerConfig, logger: Logger, clock: Clock, cluster?: NodeCluster, tracer: TraceRecorder = noTracing, plugins?: PluginHost,
): NodeContext {
  // Queues record their home node by this id, so it must be the cluster id when there is a cluster.
  const nodeId = cluster?.groupHost.nodeId ?? config.nodeName;
  const replies = new DirectReplyRegistry(nodeId);
  const meshed = cluster === undefined ? undefined : meshOf(cluster, logger, replies);
  const metadata = meshed?.metadata ?? new LocalMetadataClient(createMetadataState({
    users: [{ name: config.defaultUser, passwordHash: hashPassword(config.defaultPass), tags: ['administrator'] }],
  }));
  let context: NodeContext | undefined;
  const queues = new QueueRegistry(metadata, clock, logger.child('queue'), (vhost) => deadLetterSinkFor(() => context!, vhost), cluster?.groupHost ?? null);
  if (meshed !== undefined) {
    queues.attachMesh(meshed.mesh);
    // Every node in a queue's replica set hosts its group once the declare is applied here.
    if (typeof meshed.extras.onApplied === 'function') meshed.extras.onApplied(() => queues.reconcileSoon());
  }
  context = {
    config,
    logger,
    clock,
    nodeId,
    metadata,
    queues,
    replies,
    plugins: plugins ?? null,
    groupHost: cluster?.groupHost ?? null,
    publishHooks: new PublishHooks(),
    memoryAlarm: false,
    diskAlarm: false,
    connectionCount: () => 0,
    openConnections: 0,
    tracking: new ConnectionTracking(),
    loginThrottle: new LoginThrottle(() => ({ failuresMax: config.loginFailuresMax, lockoutMs: config.loginLockoutMs, entriesMax: limits.loginThrottleEntriesMax })),
    counters: createBrokerCounters(),
    tracer,
    shutdown: () => queues.closeAll(),
  };
  if (plugins !== undefined && cluster !== undefined) clusterEventsTo(plugins, cluster.groupHost);
  const recovered = queues.recoverReplicated();
  if (recovered > 0) logger.debug('replicated queues recovering', { queues: recovered });
  return context;
}
