// Everything one node's connections share: configuration, logger, clock, the metadata client,
// the live queues, the direct reply-to registry and the memory alarm state.

import type { Logger } from '../lib/log.js';
import type { Clock } from '../lib/random.js';
import { createMetadataState } from '../model/index.js';
import { hashPassword } from './auth.js';
import type { BrokerConfig } from './config.js';
import { DirectReplyRegistry } from './direct-reply-to.js';
import { LocalMetadataClient, type MetadataClient } from './metadata-client.js';
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
  /** True while RSS is above the watermark: publishers are blocked. */
  memoryAlarm: boolean;
  connectionCount: () => number;
  shutdown(): void;
}

export function createNodeContext(config: BrokerConfig, logger: Logger, clock: Clock): NodeContext {
  const state = createMetadataState({
    users: [{ name: config.defaultUser, passwordHash: hashPassword(config.defaultPass), tags: ['administrator'] }],
  });
  const metadata = new LocalMetadataClient(state);
  let context: NodeContext | undefined;
  const queues = new QueueRegistry(metadata, clock, logger.child('queue'), (vhost) => deadLetterSinkFor(() => context!, vhost));
  context = {
    config,
    logger,
    clock,
    nodeId: config.nodeName,
    metadata,
    queues,
    replies: new DirectReplyRegistry(),
    memoryAlarm: false,
    connectionCount: () => 0,
    shutdown: () => queues.closeAll(),
  };
  return context;
}
