// Test helper: one in-process node with a group host, its metadata group and a broker on
// loopback ports, so durable queues are replicated queues (Raft groups on the node's WAL).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword } from '../../src/broker/auth.js';
import { defaultBrokerConfig, type BrokerConfig } from '../../src/broker/config.js';
import { startBroker, type BrokerServer } from '../../src/broker/server.js';
import { GroupHost, type GroupHostOptions } from '../../src/cluster/group-host.js';
import { ReplicatedMetadataClient } from '../../src/cluster/metadata-group.js';
import { nodeId } from '../../src/lib/ids.js';
import { silentLogger } from '../../src/lib/log.js';

export interface ReplicatedNode {
  readonly dir: string;
  readonly host: GroupHost;
  readonly broker: BrokerServer;
  readonly url: string;
  stop(): Promise<void>;
}

export async function startReplicatedNode(
  hostExtra: Partial<GroupHostOptions> = {},
  config: Partial<BrokerConfig> = {},
): Promise<ReplicatedNode> {
  const dir = mkdtempSync(join(tmpdir(), 'espresso-node-'));
  const host = await GroupHost.start({ nodeId: nodeId('n1'), dataDir: dir, listen: { host: '127.0.0.1', port: 0 }, secret: 's', ...hostExtra });
  const metadata = await ReplicatedMetadataClient.start({
    groupHost: host, members: [host.nodeId], defaultUser: { name: 'guest', passwordHash: hashPassword('guest'), tags: ['administrator'] },
  });
  const broker = await startBroker({ ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0, dataDir: dir, ...config }, {
    logger: hostExtra.logger ?? silentLogger, clock: { nowMs: () => Date.now() }, cluster: { groupHost: host, metadata },
  });
  let stopped = false;
  return {
    dir, host, broker, url: `amqp://guest:guest@127.0.0.1:${broker.port}`,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await broker.close();
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
