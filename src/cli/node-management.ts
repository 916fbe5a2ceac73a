// The management API as the server command wires it: on the node's HTTP listener, with the broker's
// connections, the cluster's rpc and transport for cluster-wide lists, and the cluster status for
// /api/nodes.

import type { BrokerServer } from '../broker/server.js';
import { clusterStatus } from '../cluster/control-service.js';
import { brokerAuthenticator } from '../http/basic-auth.js';
import { serveManagement } from '../http/management.js';
import type { HttpListener } from '../http/server.js';
import { espressoVersion, type StartedCluster } from './node-cluster.js';

export function serveNodeManagement(http: HttpListener, cluster: StartedCluster, broker: BrokerServer): void {
  const self = (): { id: typeof cluster.nodeId; clusterAddress: string; amqpAddress: string; version: string } =>
    cluster.metadata.nodes().find((n) => n.id === cluster.nodeId) ?? { id: cluster.nodeId, clusterAddress: '', amqpAddress: '', version: espressoVersion };
  serveManagement({
    http, ctx: broker.context, rpc: cluster.rpc, transport: cluster.groupHost.transport,
    connections: () => broker.connections(), closeConnection: (name, reason) => broker.closeConnection(name, reason),
    status: () => clusterStatus({ metadata: cluster.metadata, groupHost: cluster.groupHost, gossip: cluster.gossip, self: self() }),
    authenticate: brokerAuthenticator(broker.context), version: espressoVersion, amqpPort: broker.port,
  });
}
