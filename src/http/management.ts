// The management API on the node's HTTP listener: RabbitMQ's /api paths (queues, exchanges,
// bindings, connections, channels, consumers, users, vhosts, permissions, policies, definitions,
// overview, nodes, health checks, aliveness test) behind HTTP Basic with the broker's users and
// RabbitMQ's tags, and the cluster rpc methods it gathers cluster-wide lists with.
//
//   api-request.ts      who may see what, JSON bodies, RabbitMQ's errors, sorting and paging
//   api-cluster.ts      every node's connections, local queues and replica rows over the rpc
//   api-objects.ts      /api/queues, /api/exchanges, /api/bindings
//   api-access.ts       /api/users, /api/vhosts, /api/permissions, /api/policies, /api/whoami
//   api-node.ts         /api/overview, /api/nodes, connections, channels, consumers, health
//   api-definitions.ts  /api/definitions and the ctl methods behind export / diff / apply
//   dashboard.ts        the web page at /

import type { ConnectionInfo } from '../broker/connection-info.js';
import type { NodeContext } from '../broker/node-context.js';
import type { ClusterStatus } from '../cluster/control-service.js';
import type { ClusterRpc } from '../cluster/rpc.js';
import type { Transport } from '../transport/index.js';
import { accessRoutes } from './api-access.js';
import { serveGathering } from './api-cluster.js';
import { definitionRoutes, serveDefinitions } from './api-definitions.js';
import { serveDashboard } from './dashboard.js';
import { nodeRoutes } from './api-node.js';
import { objectRoutes } from './api-objects.js';
import { requireUser, type Authenticate } from './basic-auth.js';
import type { HttpListener } from './server.js';

/** The RabbitMQ management API version whose paths and fields this one follows. */
export const followedApiVersion = '3.10.8';

export interface ManagementOptions {
  readonly http: HttpListener;
  readonly ctx: NodeContext;
  readonly connections: () => ConnectionInfo[];
  readonly closeConnection: (name: string, reason: string) => boolean;
  readonly rpc: ClusterRpc;
  readonly transport: Transport;
  readonly status: () => ClusterStatus;
  readonly authenticate: Authenticate;
  readonly version: string;
  readonly amqpPort: number;
}

export function serveManagement(o: ManagementOptions): void {
  const who = (req: Parameters<typeof requireUser>[1]): ReturnType<typeof requireUser> => requireUser(o.authenticate, req);
  const gather = { ctx: o.ctx, rpc: o.rpc, transport: o.transport, connections: o.connections, closeConnection: o.closeConnection };
  serveGathering(gather);
  serveDefinitions(o.rpc, { ctx: o.ctx, version: o.version });
  const routes = [
    ...nodeRoutes({ ...gather, who, status: o.status, version: o.version, apiVersion: followedApiVersion, amqpPort: o.amqpPort, httpPort: () => o.http.port }),
    ...objectRoutes({ ...gather, who }),
    ...accessRoutes({ metadata: o.ctx.metadata, who, nodes: () => o.status().nodes.map((n) => n.id) }),
    ...definitionRoutes({ ctx: o.ctx, version: o.version }, who),
  ];
  for (const [method, pattern, handler] of routes) o.http.route(method, pattern, handler);
  serveDashboard(o.http, o.authenticate);
}
