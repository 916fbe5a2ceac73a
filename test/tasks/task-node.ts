// One real node in the test process for the task tests: group host, metadata group, broker, the
// task store's groups and service, and the HTTP listener with the task routes, on free ports;
// stop() closes it all, and starting again on the same directory is a restart.

import { hashPassword } from '../../src/broker/auth.js';
import { defaultBrokerConfig } from '../../src/broker/config.js';
import { startBroker, type BrokerServer } from '../../src/broker/server.js';
import { GroupHost } from '../../src/cluster/group-host.js';
import { ReplicatedMetadataClient } from '../../src/cluster/metadata-group.js';
import { ClusterRpc } from '../../src/cluster/rpc.js';
import { serveTasks } from '../../src/http/task-routes.js';
import { HttpListener } from '../../src/http/server.js';
import { nodeId } from '../../src/lib/ids.js';
import { silentLogger } from '../../src/lib/log.js';
import { TaskService } from '../../src/tasks/task-service.js';
import { TaskStore } from '../../src/tasks/task-store.js';

export interface TaskNode {
  host: GroupHost;
  metadata: ReplicatedMetadataClient;
  broker: BrokerServer;
  service: TaskService;
  http: HttpListener;
  /** http://127.0.0.1:PORT */
  base: string;
  amqpUrl: string;
  stop(): Promise<void>;
}

export async function startTaskNode(dataDir: string): Promise<TaskNode> {
  const host = await GroupHost.start({ nodeId: nodeId('n1'), dataDir, listen: { host: '127.0.0.1', port: 0 }, secret: 's' });
  const rpc = new ClusterRpc(host.transport, silentLogger);
  const metadata = await ReplicatedMetadataClient.start({
    groupHost: host, members: [host.nodeId], rpc, defaultUser: { name: 'guest', passwordHash: hashPassword('guest'), tags: ['administrator'] },
  });
  const broker = await startBroker({ ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0 }, {
    logger: silentLogger, clock: { nowMs: () => Date.now() }, cluster: { groupHost: host, metadata, rpc },
  });
  broker.context.queues.attachGroupHost(host);
  const service = new TaskService(new TaskStore({ groupHost: host, rpc, members: [host.nodeId], logger: silentLogger }), broker.context, silentLogger);
  service.start();
  const http = await HttpListener.start({ host: '127.0.0.1', port: 0, logger: silentLogger });
  serveTasks(http, service, broker.context);
  return {
    host, metadata, broker, service, http, base: `http://127.0.0.1:${http.port}`, amqpUrl: `amqp://guest:guest@127.0.0.1:${broker.port}`,
    stop: async () => {
      await http.close();
      await broker.close();
      await service.close();
      rpc.close();
      await metadata.close();
      await host.close();
    },
  };
}
