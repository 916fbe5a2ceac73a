// /api/overview, /api/nodes, /api/connections, /api/channels, /api/consumers, the health checks
// and /api/aliveness-test: RabbitMQ's fields, read from every connected node over the cluster rpc
// (api-cluster.ts). Connections are named as RabbitMQ names them ("peer -> local"); DELETE closes
// one with 320 CONNECTION_FORCED on whichever node holds it.

import type { ChannelInfo, ConnectionInfo } from '../broker/connection-info.js';
import type { ClusterStatus } from '../cluster/control-service.js';
import { nodeId } from '../lib/ids.js';
import { listExchanges, listQueues, lookupQueue } from '../model/index.js';
import { clusterView, closeAnywhere, replicatedQueues, upPeers, type GatherDeps, type NodeSnapshot } from './api-cluster.js';
import type { Route } from './api-objects.js';
import { fail, isAdmin, isMonitor, listResponse, requireMonitor, requireVhost, seesVhost, type Who } from './api-request.js';
import type { HttpUser } from './basic-auth.js';
import { jsonResponse, type HttpRequest, type HttpResponse } from './server.js';

export interface NodeDeps extends GatherDeps {
  readonly who: Who;
  readonly status: () => ClusterStatus;
  readonly version: string;
  /** The RabbitMQ management API version whose fields this one follows. */
  readonly apiVersion: string;
  readonly amqpPort: number;
  readonly httpPort: () => number;
}

type Row = Record<string, unknown>;

export const exchangeTypes = ['direct', 'fanout', 'headers', 'topic'].map((name) => ({ name, description: `AMQP ${name} exchange`, enabled: true }));

function connectionRow(c: ConnectionInfo): Row {
  return {
    name: c.name, node: c.node, user: c.user, vhost: c.vhost, host: c.host, port: c.port, peer_host: c.peerHost, peer_port: c.peerPort,
    protocol: 'AMQP 0-9-1', type: 'network', state: c.state, channels: c.channels.length, connected_at: c.connectedAtMs,
    frame_max: c.frameMax, channel_max: c.channelMax, timeout: c.heartbeatSec, auth_mechanism: 'PLAIN', ssl: false,
    client_properties: c.clientProperties, user_provided_name: c.clientProperties['connection_name'] ?? null, user_who_performed_action: c.user,
  };
}

function channelRow(c: ConnectionInfo, ch: ChannelInfo): Row {
  return {
    name: `${c.name} (${ch.number})`, number: ch.number, node: c.node, user: c.user, vhost: c.vhost,
    connection_details: { name: c.name, peer_host: c.peerHost, peer_port: c.peerPort },
    consumer_count: ch.consumers.length, messages_unacknowledged: ch.unacked, messages_unconfirmed: 0, messages_uncommitted: 0, acks_uncommitted: 0,
    prefetch_count: ch.prefetch, global_prefetch_count: ch.globalPrefetch, confirm: ch.confirm, transactional: ch.transactional, state: ch.state,
  };
}

function consumerRows(c: ConnectionInfo, ch: ChannelInfo): Row[] {
  return ch.consumers.map((x) => ({
    consumer_tag: x.tag, queue: { name: x.queue, vhost: c.vhost },
    channel_details: { name: `${c.name} (${ch.number})`, number: ch.number, connection_name: c.name, peer_host: c.peerHost, peer_port: c.peerPort, user: c.user, node: c.node },
    ack_required: x.ackRequired, exclusive: x.exclusive, prefetch_count: x.prefetch, active: true, activity_status: 'up', arguments: {},
  }));
}

/** Connections the user may see: monitoring users every one, others their own. */
async function visibleConnections(d: NodeDeps, u: HttpUser, vhost?: string): Promise<ConnectionInfo[]> {
  const view = await clusterView(d);
  return view.nodes.flatMap((n) => n.connections).filter((c) => (isMonitor(u) || c.user === u.name) && (vhost === undefined || c.vhost === vhost));
}

async function findConnection(d: NodeDeps, u: HttpUser, name: string): Promise<ConnectionInfo> {
  const c = (await visibleConnections(d, u)).find((x) => x.name === name);
  if (c === undefined) fail(404, 'not_found', 'Not Found');
  return c;
}

function nodeRow(d: NodeDeps, s: NodeSnapshot | undefined, id: string, running: boolean): Row {
  const st = s?.stats;
  return {
    name: id, type: 'disc', running, mem_used: st?.memUsed ?? 0, mem_limit: st?.memLimit ?? 0, mem_alarm: st?.memAlarm ?? false,
    disk_free_limit: st?.diskFreeLimit ?? 0, disk_free_alarm: st?.diskAlarm ?? false, uptime: st?.uptimeMs ?? 0,
    processors: st?.processors ?? 0, os_pid: st === undefined ? '' : String(st.osPid), sockets_used: st?.socketsUsed ?? 0, sockets_total: st?.socketsTotal ?? 0,
    partitions: [], rates_mode: 'basic', exchange_types: exchangeTypes, applications: [{ name: 'espresso', description: 'espresso broker', version: d.version }],
    auth_mechanisms: [{ name: 'PLAIN', enabled: true }, { name: 'AMQPLAIN', enabled: true }], enabled_plugins: [],
  };
}

async function nodes(d: NodeDeps): Promise<Row[]> {
  const [status, view] = await Promise.all([d.status(), clusterView(d)]);
  const by = new Map(view.nodes.map((n) => [n.node, n]));
  return status.nodes.map((n) => nodeRow(d, by.get(n.id), n.id, n.status === 'alive' || by.has(n.id)));
}

async function overview(d: NodeDeps, u: HttpUser): Promise<Row> {
  const state = d.ctx.metadata.state;
  const [view, raft] = await Promise.all([clusterView(d), replicatedQueues(d)]);
  const vhosts = [...state.vhosts.keys()].filter((v) => seesVhost(state, u, v));
  const seen = new Set(vhosts);
  const conns = view.nodes.flatMap((n) => n.connections).filter((c) => isMonitor(u) || c.user === u.name);
  let ready = 0;
  let unacked = 0;
  for (const r of raft) if (seen.has(r.vhost)) { ready += r.ready; unacked += r.unacked; }
  for (const r of view.nodes.flatMap((n) => n.localQueues)) if (seen.has(r.vhost)) { ready += r.ready; unacked += r.unacked; }
  const channels = conns.flatMap((c) => c.channels);
  const row: Row = {
    management_version: d.apiVersion, rates_mode: 'basic', exchange_types: exchangeTypes, product_version: d.version, product_name: 'espresso',
    rabbitmq_version: d.apiVersion, cluster_name: d.status().nodes.map((n) => n.id).join(','), node: d.ctx.nodeId,
    message_stats: {}, churn_rates: {},
    queue_totals: { messages: ready + unacked, messages_ready: ready, messages_unacknowledged: unacked },
    object_totals: {
      consumers: channels.reduce((n, ch) => n + ch.consumers.length, 0), queues: vhosts.reduce((n, v) => n + listQueues(state, v).length, 0),
      exchanges: vhosts.reduce((n, v) => n + listExchanges(state, v).length, 0), connections: conns.length, channels: channels.length,
    },
    statistics_db_event_queue: 0,
  };
  if (isMonitor(u)) {
    row['listeners'] = view.nodes.map((n) => ({ node: n.node, protocol: 'amqp', ip_address: d.ctx.config.bind, port: n.node === d.ctx.nodeId ? d.amqpPort : null }));
    row['contexts'] = [{ node: d.ctx.nodeId, description: 'espresso management', path: '/', port: String(d.httpPort()) }];
  }
  return row;
}

async function alarms(d: NodeDeps): Promise<HttpResponse> {
  const view = await clusterView(d);
  const found = view.nodes.flatMap((n) => [
    ...(n.stats.memAlarm ? [{ node: n.node, resource: 'memory' }] : []),
    ...(n.stats.diskAlarm ? [{ node: n.node, resource: 'disk' }] : []),
  ]);
  if (found.length === 0) return jsonResponse(200, { status: 'ok' });
  return jsonResponse(503, { status: 'failed', reason: 'There are alarms in effect in the cluster', alarms: found });
}

/** Queues with a replica here that would lose their majority if this node stopped. */
async function quorumCritical(d: NodeDeps): Promise<HttpResponse> {
  const status = d.status();
  if (status.nodes.length <= 1) return jsonResponse(200, { status: 'ok', reason: 'single node cluster' });
  const alive = new Set([d.ctx.nodeId, ...upPeers(d.transport)]);
  const critical = (await replicatedQueues(d)).filter((q) => {
    if (!q.members.includes(d.ctx.nodeId)) return false;
    const onlineWithout = q.members.filter((m) => m !== d.ctx.nodeId && alive.has(nodeId(m))).length;
    return onlineWithout < Math.floor(q.members.length / 2) + 1;
  });
  if (critical.length === 0) return jsonResponse(200, { status: 'ok' });
  return jsonResponse(503, {
    status: 'failed', reason: 'There are quorum queues that would lose their quorum if the target node is shut down',
    queues: critical.map((q) => ({ name: q.name, readable_name: `queue '${q.name}' in vhost '${q.vhost}'`, node: d.ctx.nodeId, replicas: q.members, virtual_host: q.vhost })),
  });
}

/** RabbitMQ 3.10's aliveness test: declare 'aliveness-test', publish to it, get it back, as the caller. */
async function aliveness(d: NodeDeps, req: HttpRequest): Promise<HttpResponse> {
  const u = d.who(req);
  const vhost = req.params['vhost']!;
  requireVhost(d.ctx.metadata.state, u, vhost);
  const name = 'aliveness-test';
  const r = await d.ctx.metadata.apply({
    kind: 'declareQueue', vhost, name, passive: false, durable: false, exclusive: false, autoDelete: false, arguments: {},
    connection: { connectionId: 'http-api', nodeId: nodeId(d.ctx.nodeId) }, user: u.name,
  });
  if (!r.ok) return jsonResponse(503, { status: 'failed', reason: r.replyText });
  const record = r.queue ?? lookupQueue(d.ctx.metadata.state, vhost, name);
  if (record === undefined) return jsonResponse(503, { status: 'failed', reason: `queue '${name}' vanished` });
  const q = d.ctx.queues.ensure(record);
  await q.enqueue({ exchange: '', routingKey: name, properties: {}, body: Buffer.from('test_message') });
  const got = await q.get({ node: d.ctx.nodeId, connection: 'http-api', channel: `${d.ctx.nodeId}/http-api/aliveness` }, true);
  if (got === null || got.message.body.toString() !== 'test_message') return jsonResponse(503, { status: 'failed', reason: 'the test message did not come back' });
  return jsonResponse(200, { status: 'ok' });
}

export function nodeRoutes(d: NodeDeps): Route[] {
  const who = d.who;
  const connectionsOf = async (req: HttpRequest, vhost?: string): Promise<HttpResponse> =>
    listResponse((await visibleConnections(d, who(req), vhost)).map(connectionRow), req.query, ['name']);
  const channelsOf = async (req: HttpRequest, vhost?: string): Promise<HttpResponse> =>
    listResponse((await visibleConnections(d, who(req), vhost)).flatMap((c) => c.channels.map((ch) => channelRow(c, ch))), req.query, ['name']);
  const vhostParam = (req: HttpRequest): string => {
    requireVhost(d.ctx.metadata.state, who(req), req.params['vhost']!);
    return req.params['vhost']!;
  };
  return [
    ['GET', '/api/overview', async (req) => jsonResponse(200, await overview(d, who(req)))],
    ['GET', '/api/nodes', async (req) => {
      requireMonitor(who(req));
      return jsonResponse(200, await nodes(d));
    }],
    ['GET', '/api/nodes/:name', async (req) => {
      requireMonitor(who(req));
      const row = (await nodes(d)).find((n) => n['name'] === req.params['name']);
      if (row === undefined) fail(404, 'not_found', 'Not Found');
      return jsonResponse(200, row);
    }],
    ['GET', '/api/connections', (req) => connectionsOf(req)],
    ['GET', '/api/vhosts/:vhost/connections', (req) => connectionsOf(req, vhostParam(req))],
    ['GET', '/api/connections/:name', async (req) => jsonResponse(200, connectionRow(await findConnection(d, who(req), req.params['name']!)))],
    ['DELETE', '/api/connections/:name', async (req) => {
      const u = who(req);
      const c = await findConnection(d, u, req.params['name']!);
      if (!isAdmin(u) && c.user !== u.name) fail(401, 'not_authorised', 'User not authorised to access object');
      const reason = String(req.headers['x-reason'] ?? 'Closed via management plugin');
      if (!(await closeAnywhere(d, c.node, c.name, reason))) fail(404, 'not_found', 'Not Found');
      return { status: 204 };
    }],
    ['GET', '/api/connections/:name/channels', async (req) => {
      const c = await findConnection(d, who(req), req.params['name']!);
      return jsonResponse(200, c.channels.map((ch) => channelRow(c, ch)));
    }],
    ['GET', '/api/channels', (req) => channelsOf(req)],
    ['GET', '/api/vhosts/:vhost/channels', (req) => channelsOf(req, vhostParam(req))],
    ['GET', '/api/channels/:name', async (req) => {
      const row = (await visibleConnections(d, who(req))).flatMap((c) => c.channels.map((ch) => channelRow(c, ch))).find((r) => r['name'] === req.params['name']);
      if (row === undefined) fail(404, 'not_found', 'Not Found');
      return jsonResponse(200, row);
    }],
    ['GET', '/api/consumers', async (req) => jsonResponse(200, (await visibleConnections(d, who(req))).flatMap((c) => c.channels.flatMap((ch) => consumerRows(c, ch))))],
    ['GET', '/api/consumers/:vhost', async (req) => {
      const vhost = vhostParam(req);
      return jsonResponse(200, (await visibleConnections(d, who(req), vhost)).flatMap((c) => c.channels.flatMap((ch) => consumerRows(c, ch))));
    }],
    ['GET', '/api/health/checks/alarms', (req) => {
      who(req);
      return alarms(d);
    }],
    ['GET', '/api/health/checks/local-alarms', (req) => {
      who(req);
      const a = [...(d.ctx.memoryAlarm ? [{ node: d.ctx.nodeId, resource: 'memory' }] : []), ...(d.ctx.diskAlarm ? [{ node: d.ctx.nodeId, resource: 'disk' }] : [])];
      return a.length === 0 ? jsonResponse(200, { status: 'ok' }) : jsonResponse(503, { status: 'failed', reason: 'There are alarms in effect on the node', alarms: a });
    }],
    ['GET', '/api/health/checks/node-is-quorum-critical', (req) => {
      who(req);
      return quorumCritical(d);
    }],
    ['GET', '/api/health/checks/virtual-hosts', (req) => {
      who(req);
      return jsonResponse(200, { status: 'ok' });
    }],
    ['GET', '/api/aliveness-test/:vhost', (req) => aliveness(d, req)],
  ];
}
