// The node's durable tasks as the server command builds them: the task store's Raft groups on
// the cluster's group host over the metadata group's bootstrap voters, and the task service on
// the broker (serving the espresso.tasks exchange); the REST routes go on the HTTP listener.

import type { BrokerServer } from '../broker/server.js';
import { serveTasks } from '../http/task-routes.js';
import type { HttpListener } from '../http/server.js';
import type { Logger } from '../lib/log.js';
import { TaskService } from '../tasks/task-service.js';
import { TaskStore } from '../tasks/task-store.js';
import type { StartedCluster } from './node-cluster.js';

export function startTasks(cluster: StartedCluster, broker: BrokerServer, http: HttpListener, logger: Logger): TaskService {
  const store = new TaskStore({ groupHost: cluster.groupHost, rpc: cluster.rpc, members: cluster.members, logger });
  const service = new TaskService(store, broker.context, logger);
  service.start();
  serveTasks(http, service, broker.context);
  return service;
}
