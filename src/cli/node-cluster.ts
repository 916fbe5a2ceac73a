// The node's cluster side as the server command builds it: the cluster secret (given or kept in the
// data directory), the group host on <data-dir>/raft, and its hand-over to the broker's context.

import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashPassword } from '../broker/auth.js';
import type { BrokerConfig } from '../broker/config.js';
import { GroupHost } from '../cluster/index.js';
import { ReplicatedMetadataClient } from '../cluster/metadata-group.js';
import { nodeId as toNodeId, type NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import { ConfigError, ExitCode } from './config-loader.js';
import type { ServerConfig } from './options.js';

const secretFile = 'cluster-secret';
const clusterPortOffset = 10_000;

export interface StartedCluster {
  readonly nodeId: NodeId;
  readonly groupHost: GroupHost;
  readonly metadata: ReplicatedMetadataClient;
  /** The config record to start the broker with (hand this cluster to startBroker beside it). */
  readonly brokerConfig: BrokerConfig;
  close(): Promise<void>;
}

/** -1 = the AMQP port + 10000 (any free port when AMQP's is 0 too). */
export function clusterPortOf(config: ServerConfig): number {
  if (config.clusterPort !== -1) return config.clusterPort;
  if (config.port === 0) return 0;
  const port = config.port + clusterPortOffset;
  if (port > 65535) {
    throw new ConfigError(`cluster port ${port} (AMQP port + ${clusterPortOffset}) is above 65535; set one with --cluster-port`, ExitCode.Config);
  }
  return port;
}

/** The configured secret, else the one kept in the data directory (created on first start). */
export function clusterSecretOf(config: ServerConfig): string {
  if (config.clusterSecret !== '') return config.clusterSecret;
  const path = join(config.dataDir, secretFile);
  try {
    const kept = readFileSync(path, 'utf8').trim();
    if (kept !== '') return kept;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError(`cannot read the cluster secret '${path}' (${(e as NodeJS.ErrnoException).code}); fix its permissions or pass --cluster-secret`, ExitCode.CantCreate);
    }
  }
  const secret = randomBytes(32).toString('hex');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}

export async function startNodeCluster(config: ServerConfig, logger: Logger): Promise<StartedCluster> {
  const nodeId = toNodeId(config.nodeId !== '' ? config.nodeId : config.nodeName);
  const port = clusterPortOf(config);
  let groupHost: GroupHost;
  try {
    groupHost = await GroupHost.start({
      nodeId,
      dataDir: join(config.dataDir, 'raft'),
      listen: { host: '127.0.0.1', port },
      secret: clusterSecretOf(config),
      logger,
    });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const text = e instanceof Error ? e.message : String(e);
    if (/EADDRINUSE|address already in use|No address added/i.test(text)) {
      throw new ConfigError(`cluster port ${port} on 127.0.0.1 is already in use; pick another with --cluster-port`, ExitCode.Unavailable);
    }
    throw e;
  }
  let metadata: ReplicatedMetadataClient;
  try {
    metadata = await ReplicatedMetadataClient.start({
      groupHost,
      members: [nodeId],
      defaultUser: { name: config.defaultUser, passwordHash: hashPassword(config.defaultPass), tags: ['administrator'] },
      logger,
    });
  } catch (e) {
    await groupHost.close();
    throw e;
  }
  const brokerConfig: BrokerConfig = { ...config };
  return {
    nodeId,
    groupHost,
    metadata,
    brokerConfig,
    close: async () => {
      await metadata.close();
      await groupHost.close();
    },
  };
}
