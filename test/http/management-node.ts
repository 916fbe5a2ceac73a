// Test helper: one in-process node (group host, replicated metadata, broker) with the management
// API on its own HTTP listener, and a fetch helper that sends HTTP Basic credentials.

import { clusterStatus } from '../../src/cluster/control-service.js';
import type { ReplicatedMetadataClient } from '../../src/cluster/metadata-group.js';
import { ClusterRpc } from '../../src/cluster/rpc.js';
import { brokerAuthenticator } from '../../src/http/basic-auth.js';
import { serveManagement } from '../../src/http/management.js';
import { HttpListener } from '../../src/http/server.js';
import { silentLogger } from '../../src/lib/log.js';
import { startReplicatedNode, type ReplicatedNode } from '../broker/replicated-node.js';

export interface ManagedNode {
  readonly node: ReplicatedNode;
  readonly base: string;
  api(method: string, path: string, body?: unknown, who?: [string, string], headers?: Record<string, string>): Promise<{ status: number; json: unknown; headers: Headers }>;
  stop(): Promise<void>;
}

export async function startManagedNode(): Promise<ManagedNode> {
  const node = await startReplicatedNode();
  const http = await HttpListener.start({ host: '127.0.0.1', port: 0, logger: silentLogger });
  const base = `http://127.0.0.1:${http.port}`;
  const rpc = new ClusterRpc(node.host.transport, silentLogger);
  const ctx = node.broker.context;
  const self = { id: node.host.nodeId, clusterAddress: '', amqpAddress: '', version: 'test' };
  serveManagement({
    http, ctx, connections: () => node.broker.connections(), closeConnection: (n, r) => node.broker.closeConnection(n, r), rpc,
    transport: node.host.transport, authenticate: brokerAuthenticator(ctx), version: '0.1.0', amqpPort: node.broker.port,
    status: () => clusterStatus({ metadata: ctx.metadata as unknown as ReplicatedMetadataClient, groupHost: node.host, gossip: undefined, self }),
  });
  return {
    node, base,
    api: async (method, path, body, who = ['guest', 'guest'], headers = {}) => {
      const r = await fetch(`${base}${path}`, {
        method, headers: { authorization: `Basic ${Buffer.from(`${who[0]}:${who[1]}`).toString('base64')}`, ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      const text = await r.text();
      return { status: r.status, json: text === '' ? null : JSON.parse(text) as unknown, headers: r.headers };
    },
    stop: async () => {
      await http.close();
      rpc.close();
      await node.stop();
    },
  };
}
