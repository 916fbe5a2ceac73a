// Everything one node's connections share: configuration, logger, clock, the metadata client,
// the live queues, the direct reply-to registry, the memory alarm state and the node's group host.

import type { GroupHost } from '../cluster/index.js';
import type { Logger } from '../lib/log.js';
import type { Clock } from '../lib/random.js';
import { createMetadataState } from '../model/index.js';
import { hashPassword } from './auth.js';
import type { BrokerConfig } from './config.js';
import { DirectReplyRegistry } from './direct-reply-to.js';
import { LocalMetadataClient, type MetadataClient } from './metadata-client.js';
import type { FlowParty } from './publisher-flow.js';
import { deadLetterSinkFor } from './publish.js';
import { QueueRegistry } from './queue-registry.js';

export interface NodeContext {
  readonly config: BrokerConfig;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly nodeId: string;
  readonly metadata: MetadataClient;
  readonly queues: QueueRegistry;
  readonly replies: DirectReplyRegistry;
  /** The node's Raft groups (null when the broker runs without a cluster, as in broker unit tests). */
  readonly groupHost: GroupHost | null;
  /** True while RSS is above the watermark: publishers are blocked. */
  memoryAlarm: boolean;
  /** Connections not being read because queues they publish to are backed up (publisher-flow.ts). */
  readonly inFlow: Set<FlowParty>;
  connectionCount: () => number;
  shutdown(): void;
}

/** A node's cluster parts, built (async) by the composition root before the broker starts. */
export interface NodeCluster {
  readonly groupHost: GroupHost;
  readonly metadata: MetadataClient;
}

/** Without `cluster` (broker unit tests), metadata lives in memory and there is no group host. */
export function createNodeContext(config: BrokerConfig, logger: Logger, clock: Clock, cluster?: NodeCluster): NodeContext {
  const metadata = cluster?.metadata ?? new LocalMetadataClient(createMetadataState({
    users: [{ name: config.defaultUser, passwordHash: hashPassword(config.defaultPass), tags: ['administrator'] }],
  }));
  let context: NodeContext | undefined;
  const queues = new QueueRegistry(metadata, clock, logger.child('queue'), (vhost) => deadLetterSinkFor(() => context!, vhost), cluster?.groupHost ?? null);
  context = {
    config,
    logger,
    clock,
    // Queues record their home node by this id, so it must be the cluster id when there is a cluster.
    nodeId: cluster?.groupHost.nodeId ?? config.nodeName,
    metadata,
    queues,
    replies: new DirectReplyRegistry(),
    groupHost: cluster?.groupHost ?? null,
    memoryAlarm: false,
    inFlow: new Set(),
    connectionCount: () => 0,
    shutdown: () => queues.closeAll(),
  };
  const recovered = queues.recoverReplicated();
  if (recovered > 0) logger.info('replicated queues recovering', { queues: recovered });
  return context;
}
