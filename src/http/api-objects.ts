// /api/queues, /api/exchanges, /api/bindings: RabbitMQ's paths, field names and statuses. Changes
// run as the AMQP methods would for the HTTP user (queue.declare, queue.delete, queue.purge,
// exchange.declare, queue.bind ...: the same permission checks and errors), through the node's
// metadata client and queues. Queue rows carry RabbitMQ's fields and, as extra fields, the Raft
// view gathered from every node: leader, replicas, commit_index, follower_lag.

import type { NodeContext } from '../broker/node-context.js';
import type { QueueStats, StoredMessage } from '../broker/queue-backend.js';
import { targetQueues } from '../broker/publish.js';
import type { QueueListing } from '../cluster/queue-listing.js';
import { nodeId } from '../lib/ids.js';
import {
  bindingsOfQueue, checkPublish, checkQueueAccess, checkTopicAccess, listBindings, listExchanges, listQueues, lookupExchange, lookupQueue, policyFor,
  type BindingRecord, type ExchangeRecord, type MetadataCommand, type MetadataOk, type QueueRecord,
} from '../model/index.js';
import { replicatedQueues, clusterView, type GatherDeps, type LocalQueueRow } from './api-cluster.js';
import { created, fail, field, jsonBody, listResponse, modelFailure, noContent, requireVhost, vhostsOf, type Who } from './api-request.js';
import type { HttpUser } from './basic-auth.js';
import { jsonResponse, type HttpRequest, type HttpResponse } from './server.js';

type Row = Record<string, unknown>;

/** The default exchange's name in a path segment. */
function exchangeName(segment: string): string {
  return segment === 'amq.default' ? '' : segment;
}

async function applied(ctx: NodeContext, command: MetadataCommand): Promise<MetadataOk> {
  const r = await ctx.metadata.apply(command);
  if (!r.ok) modelFailure(r);
  if (r.deletedQueues.length > 0) ctx.queues.dropDeleted(r.deletedQueues);
  return r;
}

/** The API's own pseudo-connection on this node (owner of nothing: the API declares no exclusive queue). */
function apiConnection(ctx: NodeContext): { connectionId: string; nodeId: ReturnType<typeof nodeId> } {
  return { connectionId: 'http-api', nodeId: nodeId(ctx.nodeId) };
}

// ---- rows ------------------------------------------------------------------------------------

function queueType(q: QueueRecord): string {
  const t = q.arguments['x-queue-type'];
  return typeof t === 'string' ? t : 'classic';
}

function queueRow(ctx: NodeContext, q: QueueRecord, raft: QueueListing | undefined, local: LocalQueueRow | undefined): Row {
  const vhost = ctx.metadata.state.vhosts.get(q.vhost);
  const policy = vhost === undefined ? undefined : policyFor(vhost, 'queues', q.name);
  const ready = raft?.ready ?? local?.ready ?? 0;
  const unacked = raft?.unacked ?? local?.unacked ?? 0;
  const row: Row = {
    name: q.name, vhost: q.vhost, durable: q.durable, auto_delete: q.autoDelete, exclusive: q.exclusiveOwner !== null,
    arguments: q.arguments, type: queueType(q), node: raft?.leader ?? q.homeNode, state: raft === undefined || raft.leader !== null ? 'running' : 'minority',
    messages: ready + unacked, messages_ready: ready, messages_unacknowledged: unacked,
    consumers: raft?.consumers ?? local?.consumers ?? 0, policy: policy?.name ?? null,
    effective_policy_definition: policy?.definition ?? {},
  };
  if (local !== undefined) row['message_bytes'] = local.bytes;
  if (q.kind === 'replicated') {
    // RabbitMQ's quorum queue fields, then espresso's extras (never renamed ones).
    row['leader'] = raft?.leader ?? null;
    row['members'] = raft?.members ?? q.replicas;
    row['online'] = raft?.reportedBy ?? [];
    row['replicas'] = q.replicas;
    row['commit_index'] = raft?.commitIndex ?? null;
    row['follower_lag'] = raft?.followerLag ?? null;
  }
  return row;
}

function exchangeRow(x: ExchangeRecord): Row {
  return { name: x.name, vhost: x.vhost, type: x.type, durable: x.durable, auto_delete: x.autoDelete, internal: x.internal, arguments: x.arguments, user_who_performed_action: '' };
}

function bindingRow(b: BindingRecord): Row {
  return {
    source: b.source, vhost: b.vhost, destination: b.destination, destination_type: b.destinationKind, routing_key: b.routingKey,
    arguments: b.arguments, properties_key: propertiesKey(b),
  };
}

/** RabbitMQ's binding id in URLs: "~" for an empty key without arguments, else the key (plus a hash of the arguments). */
function propertiesKey(b: BindingRecord): string {
  const args = Object.keys(b.arguments).length === 0 ? '' : `~${Buffer.from(JSON.stringify(b.arguments)).toString('base64url')}`;
  return b.routingKey === '' && args === '' ? '~' : `${b.routingKey.replaceAll('%', '%25').replaceAll('~', '%7E')}${args}`;
}

// ---- queues ----------------------------------------------------------------------------------

export interface ObjectDeps extends GatherDeps {
  readonly who: Who;
}

async function queueRows(d: ObjectDeps, user: HttpUser, vhost: string | undefined): Promise<Row[]> {
  const state = d.ctx.metadata.state;
  const vhosts = vhostsOf(state, user, vhost);
  const [raft, view] = await Promise.all([replicatedQueues(d), clusterView(d)]);
  const raftBy = new Map(raft.map((r) => [`${r.vhost}\u0000${r.name}`, r]));
  const localBy = new Map(view.nodes.flatMap((n) => n.localQueues).map((r) => [`${r.vhost}\u0000${r.name}`, r]));
  const rows: Row[] = [];
  for (const v of vhosts) {
    for (const q of listQueues(state, v)) {
      const key = `${v}\u0000${q.name}`;
      rows.push(queueRow(d.ctx, q, raftBy.get(key), localBy.get(key)));
    }
  }
  return rows;
}

async function getQueue(d: ObjectDeps, req: HttpRequest): Promise<HttpResponse> {
  const user = d.who(req);
  const { vhost, name } = req.params as { vhost: string; name: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  const q = lookupQueue(d.ctx.metadata.state, vhost, name);
  if (q === undefined) fail(404, 'not_found', 'Not Found');
  const rows = await queueRows(d, user, vhost);
  const row = rows.find((r) => r['name'] === name) ?? queueRow(d.ctx, q, undefined, undefined);
  return jsonResponse(200, { ...row, consumer_details: [], incoming: [], deliveries: [], bindings: bindingsOfQueue(d.ctx.metadata.state, vhost, name).map(bindingRow) });
}

async function putQueue(d: ObjectDeps, req: HttpRequest): Promise<HttpResponse> {
  const user = d.who(req);
  const { vhost, name } = req.params as { vhost: string; name: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  const body = await jsonBody(req);
  const args = field(body, 'arguments', 'object') ?? {};
  const type = field(body, 'type', 'string');
  const r = await applied(d.ctx, {
    kind: 'declareQueue', vhost, name, passive: false, durable: field(body, 'durable', 'boolean') ?? true,
    exclusive: false, autoDelete: field(body, 'auto_delete', 'boolean') ?? false,
    arguments: type !== undefined && args['x-queue-type'] === undefined ? { ...args, 'x-queue-type': type } : args,
    connection: apiConnection(d.ctx), user: user.name,
  });
  const record = r.queue ?? lookupQueue(d.ctx.metadata.state, vhost, name);
  if (record !== undefined) d.ctx.queues.ensure(record);
  return r.created ? created : noContent;
}

async function queueStats(ctx: NodeContext, record: QueueRecord): Promise<QueueStats> {
  const backend = ctx.queues.ensure(record);
  return backend.refresh === undefined ? backend.stats() : backend.refresh().catch(() => backend.stats());
}

async function deleteQueue(d: ObjectDeps, req: HttpRequest): Promise<HttpResponse> {
  const user = d.who(req);
  const { vhost, name } = req.params as { vhost: string; name: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  const record = lookupQueue(d.ctx.metadata.state, vhost, name);
  if (record === undefined) fail(404, 'not_found', 'Not Found');
  const stats = await queueStats(d.ctx, record);
  await applied(d.ctx, {
    kind: 'deleteQueue', vhost, name, ifUnused: req.query.get('if-unused') === 'true', ifEmpty: req.query.get('if-empty') === 'true',
    consumerCount: stats.consumers, messageCount: stats.messagesReady, connection: apiConnection(d.ctx), user: user.name,
  });
  return noContent;
}

async function purgeQueue(d: ObjectDeps, req: HttpRequest): Promise<HttpResponse> {
  const user = d.who(req);
  const { vhost, name } = req.params as { vhost: string; name: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  const r = await applied(d.ctx, { kind: 'purgeQueue', vhost, name, connection: apiConnection(d.ctx), user: user.name });
  const record = r.queue ?? lookupQueue(d.ctx.metadata.state, vhost, name);
  if (record !== undefined) await d.ctx.queues.ensure(record).purge();
  return noContent;
}

let getSeq = 0;

/** POST .../get: takes up to `count` messages, then requeues, acks or rejects them as `ackmode` says. */
async function getMessages(d: ObjectDeps, req: HttpRequest): Promise<HttpResponse> {
  const user = d.who(req);
  const { vhost, name } = req.params as { vhost: string; name: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  const body = await jsonBody(req);
  const count = field(body, 'count', 'number', true)!;
  const ackmode = field(body, 'ackmode', 'string', true)!;
  const encoding = field(body, 'encoding', 'string', true)!;
  const truncate = field(body, 'truncate', 'number');
  if (!['ack_requeue_true', 'ack_requeue_false', 'reject_requeue_true', 'reject_requeue_false'].includes(ackmode)) fail(400, 'bad_request', `ackmode must be ack_requeue_true, ack_requeue_false, reject_requeue_true or reject_requeue_false, got '${ackmode}'`);
  if (encoding !== 'auto' && encoding !== 'base64') fail(400, 'bad_request', `encoding must be auto or base64, got '${encoding}'`);
  if (!Number.isInteger(count) || count < 1) fail(400, 'bad_request', `count must be a positive integer, got ${count}`);
  // basic.get's checks: read permission (403), exists (404), exclusive to another connection (405).
  const access = checkQueueAccess(d.ctx.metadata.state, user.name, vhost, name, null);
  if ('ok' in access) modelFailure(access);
  const backend = d.ctx.queues.ensure(access);
  const owner = { node: d.ctx.nodeId, connection: 'http-api', channel: `${d.ctx.nodeId}/http-api/get-${++getSeq}` };
  const noAck = ackmode === 'ack_requeue_false';
  const out: Row[] = [];
  const held = [];
  for (let i = 0; i < Math.min(count, 10_000); i++) {
    const m = await backend.get(owner, noAck);
    if (m === null) break;
    if (!noAck) held.push(m.msgId);
    out.push(messageRow(m.message, m.redelivered, m.messageCount, encoding, truncate));
  }
  if (held.length > 0) {
    if (ackmode.endsWith('requeue_true')) await backend.requeue(owner.channel, held);
    else await backend.discard(owner.channel, held);
  }
  return jsonResponse(200, out);
}

function messageRow(m: StoredMessage, redelivered: boolean, left: number, encoding: string, truncate: number | undefined): Row {
  const body = truncate !== undefined && truncate >= 0 ? m.body.subarray(0, truncate) : m.body;
  const text = body.toString('utf8');
  const utf8 = encoding === 'auto' && Buffer.from(text, 'utf8').equals(body);
  const props = propertiesJson(m.properties as Record<string, unknown>);
  return {
    payload_bytes: m.body.length, redelivered, exchange: m.exchange, routing_key: m.routingKey, message_count: left,
    properties: props, payload: utf8 ? text : body.toString('base64'), payload_encoding: utf8 ? 'string' : 'base64',
  };
}

const propertyNames: ReadonlyArray<[string, string]> = [
  ['contentType', 'content_type'], ['contentEncoding', 'content_encoding'], ['deliveryMode', 'delivery_mode'], ['priority', 'priority'],
  ['correlationId', 'correlation_id'], ['replyTo', 'reply_to'], ['expiration', 'expiration'], ['messageId', 'message_id'],
  ['timestamp', 'timestamp'], ['type', 'type'], ['userId', 'user_id'], ['appId', 'app_id'], ['clusterId', 'cluster_id'],
];

function propertiesJson(p: Record<string, unknown>): Row {
  const out: Row = {};
  for (const [ours, theirs] of propertyNames) if (p[ours] !== undefined) out[theirs] = p[ours];
  if (p['headers'] !== undefined) out['headers'] = plainTable(p['headers'] as Record<string, unknown>);
  return out;
}

/** A decoded field table as plain JSON (typed values unwrapped, bytes as UTF-8). */
function plainTable(t: Record<string, unknown>): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(t)) out[k] = plainValue(v);
  return out;
}

function plainValue(v: unknown): unknown {
  const inner = typeof v === 'object' && v !== null && 'tag' in v && 'value' in v ? (v as { value: unknown }).value : v;
  if (Buffer.isBuffer(inner) || inner instanceof Uint8Array) return Buffer.from(inner).toString('utf8');
  if (typeof inner === 'bigint') return Number(inner);
  if (Array.isArray(inner)) return inner.map(plainValue);
  if (typeof inner === 'object' && inner !== null) return plainTable(inner as Record<string, unknown>);
  return inner;
}

// ---- exchanges -------------------------------------------------------------------------------

function getExchanges(d: ObjectDeps, req: HttpRequest): HttpResponse {
  const user = d.who(req);
  const state = d.ctx.metadata.state;
  const rows = vhostsOf(state, user, req.params['vhost']).flatMap((v) => listExchanges(state, v).map(exchangeRow));
  return listResponse(rows, req.query);
}

function getExchange(d: ObjectDeps, req: HttpRequest): HttpResponse {
  const user = d.who(req);
  const { vhost, name } = req.params as { vhost: string; name: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  const x = lookupExchange(d.ctx.metadata.state, vhost, exchangeName(name));
  if (x === undefined) fail(404, 'not_found', 'Not Found');
  return jsonResponse(200, { ...exchangeRow(x), incoming: [], outgoing: [] });
}

async function putExchange(d: ObjectDeps, req: HttpRequest): Promise<HttpResponse> {
  const user = d.who(req);
  const { vhost, name } = req.params as { vhost: string; name: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  const body = await jsonBody(req);
  const r = await applied(d.ctx, {
    kind: 'declareExchange', vhost, name: exchangeName(name), type: field(body, 'type', 'string', true)!, passive: false,
    durable: field(body, 'durable', 'boolean') ?? true, autoDelete: field(body, 'auto_delete', 'boolean') ?? false,
    internal: field(body, 'internal', 'boolean') ?? false, arguments: field(body, 'arguments', 'object') ?? {}, user: user.name,
  });
  return r.created ? created : noContent;
}

async function deleteExchange(d: ObjectDeps, req: HttpRequest): Promise<HttpResponse> {
  const user = d.who(req);
  const { vhost, name } = req.params as { vhost: string; name: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  if (lookupExchange(d.ctx.metadata.state, vhost, exchangeName(name)) === undefined) fail(404, 'not_found', 'Not Found');
  await applied(d.ctx, { kind: 'deleteExchange', vhost, name: exchangeName(name), ifUnused: req.query.get('if-unused') === 'true', user: user.name });
  return noContent;
}

/** POST .../publish {routing_key, payload, payload_encoding, properties} → {routed}. */
async function publish(d: ObjectDeps, req: HttpRequest): Promise<HttpResponse> {
  const user = d.who(req);
  const { vhost, name } = req.params as { vhost: string; name: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  const body = await jsonBody(req);
  const routingKey = field(body, 'routing_key', 'string', true)!;
  const payload = field(body, 'payload', 'string', true)!;
  const payloadEncoding = field(body, 'payload_encoding', 'string', true)!;
  const props = field(body, 'properties', 'object', true)!;
  if (payloadEncoding !== 'string' && payloadEncoding !== 'base64') fail(400, 'bad_request', `payload_encoding must be string or base64, got '${payloadEncoding}'`);
  const x = checkPublish(d.ctx.metadata.state, user.name, vhost, exchangeName(name));
  if ('ok' in x) modelFailure(x);
  const topicDenied = checkTopicAccess(d.ctx.metadata.state, user.name, vhost, x, routingKey, 'write');
  if (topicDenied !== null) modelFailure(topicDenied);
  const properties: Record<string, unknown> = {};
  for (const [ours, theirs] of propertyNames) if (props[theirs] !== undefined) properties[ours] = props[theirs];
  if (props['headers'] !== undefined) properties['headers'] = tableOf(props['headers']);
  const message: StoredMessage = { exchange: x.name, routingKey, properties, body: Buffer.from(payload, payloadEncoding === 'base64' ? 'base64' : 'utf8') };
  const targets = targetQueues(d.ctx, vhost, x.name, routingKey, (properties['headers'] ?? null) as never, null);
  await Promise.all(targets.map((q) => q.enqueue(message)));
  return jsonResponse(200, { routed: targets.length > 0 });
}

/** JSON headers as an AMQP field table (strings as longstr, integers as long, floats as double). */
function tableOf(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(400, 'bad_request', 'properties.headers must be a JSON object');
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Row)) out[k] = fieldValue(x);
  return out;
}

function fieldValue(x: unknown): unknown {
  if (typeof x === 'string') return { tag: 'S', value: Buffer.from(x, 'utf8') };
  if (typeof x === 'boolean') return { tag: 't', value: x };
  if (typeof x === 'number') return Number.isInteger(x) ? { tag: 'l', value: x } : { tag: 'd', value: x };
  if (x === null) return { tag: 'V', value: null };
  if (Array.isArray(x)) return { tag: 'A', value: x.map(fieldValue) };
  return { tag: 'F', value: tableOf(x) };
}

// ---- bindings --------------------------------------------------------------------------------

function getBindings(d: ObjectDeps, req: HttpRequest): HttpResponse {
  const user = d.who(req);
  const state = d.ctx.metadata.state;
  const rows = vhostsOf(state, user, req.params['vhost']).flatMap((v) => listBindings(state, v).map(bindingRow));
  return listResponse(rows, req.query, ['vhost', 'source', 'destination', 'routing_key']);
}

/** GET /api/bindings/{vhost}/e/{source}/{q|e}/{destination}: the bindings between the two. */
function getBindingsBetween(d: ObjectDeps, req: HttpRequest, kind: 'queue' | 'exchange'): HttpResponse {
  const user = d.who(req);
  const { vhost, source, destination } = req.params as { vhost: string; source: string; destination: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  const rows = listBindings(d.ctx.metadata.state, vhost)
    .filter((b) => b.source === exchangeName(source) && b.destination === destination && b.destinationKind === kind).map(bindingRow);
  return jsonResponse(200, rows);
}

/** POST /api/bindings/{vhost}/e/{source}/{q|e}/{destination} {routing_key, arguments}: 201 + Location. */
async function postBinding(d: ObjectDeps, req: HttpRequest, kind: 'queue' | 'exchange'): Promise<HttpResponse> {
  const user = d.who(req);
  const { vhost, source, destination } = req.params as { vhost: string; source: string; destination: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  const body = await jsonBody(req);
  const routingKey = field(body, 'routing_key', 'string') ?? '';
  const args = field(body, 'arguments', 'object') ?? {};
  const src = exchangeName(source);
  if (kind === 'queue') {
    await applied(d.ctx, { kind: 'bindQueue', vhost, queue: destination, exchange: src, routingKey, arguments: args, connection: null, user: user.name });
  } else {
    await applied(d.ctx, { kind: 'bindExchange', vhost, source: src, destination, routingKey, arguments: args, user: user.name });
  }
  const b: BindingRecord = { vhost, source: src, destinationKind: kind, destination, routingKey, arguments: args as never };
  const location = `${req.path.replace(/\/$/, '')}/${encodeURIComponent(propertiesKey(b))}`;
  return { status: 201, headers: { location } };
}

async function deleteBinding(d: ObjectDeps, req: HttpRequest, kind: 'queue' | 'exchange'): Promise<HttpResponse> {
  const user = d.who(req);
  const { vhost, source, destination, props } = req.params as { vhost: string; source: string; destination: string; props: string };
  requireVhost(d.ctx.metadata.state, user, vhost);
  const b = listBindings(d.ctx.metadata.state, vhost)
    .find((x) => x.source === exchangeName(source) && x.destination === destination && x.destinationKind === kind && propertiesKey(x) === props);
  if (b === undefined) fail(404, 'not_found', 'Not Found');
  if (kind === 'queue') {
    await applied(d.ctx, { kind: 'unbindQueue', vhost, queue: destination, exchange: b.source, routingKey: b.routingKey, arguments: b.arguments, connection: null, user: user.name });
  } else {
    await applied(d.ctx, { kind: 'unbindExchange', vhost, source: b.source, destination, routingKey: b.routingKey, arguments: b.arguments, user: user.name });
  }
  return noContent;
}

export type Route = [method: string, pattern: string, handler: (req: HttpRequest) => HttpResponse | Promise<HttpResponse>];

export function objectRoutes(d: ObjectDeps): Route[] {
  const list = async (req: HttpRequest): Promise<HttpResponse> => listResponse(await queueRows(d, d.who(req), req.params['vhost']), req.query);
  const routes: Route[] = [
    ['GET', '/api/queues', list],
    ['GET', '/api/queues/:vhost', list],
    ['GET', '/api/queues/:vhost/:name', (req) => getQueue(d, req)],
    ['PUT', '/api/queues/:vhost/:name', (req) => putQueue(d, req)],
    ['DELETE', '/api/queues/:vhost/:name', (req) => deleteQueue(d, req)],
    ['DELETE', '/api/queues/:vhost/:name/contents', (req) => purgeQueue(d, req)],
    ['POST', '/api/queues/:vhost/:name/get', (req) => getMessages(d, req)],
    ['GET', '/api/queues/:vhost/:name/bindings', (req) => {
      const user = d.who(req);
      requireVhost(d.ctx.metadata.state, user, req.params['vhost']!);
      return jsonResponse(200, bindingsOfQueue(d.ctx.metadata.state, req.params['vhost']!, req.params['name']!).map(bindingRow));
    }],
    ['GET', '/api/exchanges', (req) => getExchanges(d, req)],
    ['GET', '/api/exchanges/:vhost', (req) => getExchanges(d, req)],
    ['GET', '/api/exchanges/:vhost/:name', (req) => getExchange(d, req)],
    ['PUT', '/api/exchanges/:vhost/:name', (req) => putExchange(d, req)],
    ['DELETE', '/api/exchanges/:vhost/:name', (req) => deleteExchange(d, req)],
    ['POST', '/api/exchanges/:vhost/:name/publish', (req) => publish(d, req)],
    ['GET', '/api/bindings', (req) => getBindings(d, req)],
    ['GET', '/api/bindings/:vhost', (req) => getBindings(d, req)],
  ];
  for (const [seg, kind] of [['q', 'queue'], ['e', 'exchange']] as const) {
    routes.push(
      ['GET', `/api/bindings/:vhost/e/:source/${seg}/:destination`, (req) => getBindingsBetween(d, req, kind)],
      ['POST', `/api/bindings/:vhost/e/:source/${seg}/:destination`, (req) => postBinding(d, req, kind)],
      ['DELETE', `/api/bindings/:vhost/e/:source/${seg}/:destination/:props`, (req) => deleteBinding(d, req, kind)],
    );
  }
  return routes;
}
