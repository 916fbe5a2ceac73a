// /api/users, /api/vhosts, /api/permissions, /api/policies and /api/whoami as RabbitMQ answers
// them: administrators change users, vhosts and permissions (the same changes as `espresso ctl`,
// cluster/access-service.ts); policymakers change policies; every management user sees the
// vhosts it has permissions in. Passwords are hashed here with RabbitMQ's salted SHA-256; a
// supplied password_hash is kept as given.

import { hashPassword } from '../broker/auth.js';
import { AccessRefused, changeAccess, type AccessChange, type AccessMetadata } from '../cluster/access-service.js';
import { isOperatingError } from '../lib/errors.js';
import { findUser, isSha256Hash, listPolicies, parseTags, sha256Algorithm, type PermissionRecord, type PolicyApplyTo, type TopicPermissionRecord, type PolicyRecord, type UserRecord } from '../model/index.js';
import {
  created, fail, field, isMonitor, jsonBody, listResponse, modelFailure, noContent, requireAdmin, requirePolicymaker, requireVhost,
  seesVhost, vhostsOf, type Who,
} from './api-request.js';
import type { Route } from './api-objects.js';
import { jsonResponse, type HttpRequest, type HttpResponse } from './server.js';


export interface AccessDeps {
  readonly metadata: AccessMetadata;
  readonly who: Who;
  /** Node ids for vhosts' cluster_state. */
  readonly nodes: () => string[];
}

type Row = Record<string, unknown>;

/** An access change; a refusal becomes 404 (user/vhost missing) or 400, RabbitMQ's statuses. */
async function change(d: AccessDeps, c: AccessChange): Promise<boolean> {
  try {
    return (await changeAccess(d.metadata, c)).created;
  } catch (e) {
    if (e instanceof AccessRefused) fail(e.notFound ? 404 : 400, e.notFound ? 'not_found' : 'bad_request', e.message);
    if (isOperatingError(e)) fail(503, 'service_unavailable', e.message);
    throw e;
  }
}

export function userRow(u: UserRecord): Row {
  return { name: u.name, password_hash: u.passwordHash, hashing_algorithm: sha256Algorithm, tags: [...u.tags], limits: {} };
}

function permissionRow(p: PermissionRecord): Row {
  return { user: p.user, vhost: p.vhost, configure: p.configure, write: p.write, read: p.read };
}

export function policyRow(p: PolicyRecord): Row {
  return { vhost: p.vhost, name: p.name, pattern: p.pattern, 'apply-to': p.applyTo, definition: p.definition, priority: p.priority };
}

function vhostRow(d: AccessDeps, name: string): Row {
  const cluster = Object.fromEntries(d.nodes().map((n) => [n, 'running']));
  return {
    name, description: '', tags: [], default_queue_type: 'quorum', metadata: { description: '', tags: [], default_queue_type: 'quorum' },
    tracing: false, cluster_state: cluster,
  };
}

/** Tags as RabbitMQ takes them: an array, or a comma-separated string ('' = none). */
function tagsOf(v: unknown): string[] {
  return parseTags(v) ?? fail(400, 'bad_request', `field 'tags' must be a string ("a,b") or an array of strings`);
}

/** A user's stored hash from a body: password (hashed here), password_hash (as given, SHA-256 only) or neither (''). */
export function passwordHashOf(body: Row, where: string): string {
  const password = body['password'];
  const hash = body['password_hash'];
  if (password !== undefined && hash !== undefined) fail(400, 'bad_request', `${where}: give password or password_hash, not both`);
  if (password !== undefined) {
    if (typeof password !== 'string') fail(400, 'bad_request', `${where}: field 'password' must be a string`);
    return hashPassword(password);
  }
  if (hash === undefined) return '';
  if (typeof hash !== 'string') fail(400, 'bad_request', `${where}: field 'password_hash' must be a string`);
  const algorithm = body['hashing_algorithm'] ?? sha256Algorithm;
  if (algorithm !== sha256Algorithm) fail(400, 'bad_request', `${where}: hashing_algorithm '${String(algorithm)}' is not supported (only ${sha256Algorithm})`);
  if (!isSha256Hash(hash)) fail(400, 'bad_request', `${where}: password_hash is not a base64 ${sha256Algorithm} hash (4-byte salt + 32-byte digest)`);
  return hash;
}

async function putUser(d: AccessDeps, req: HttpRequest): Promise<HttpResponse> {
  requireAdmin(d.who(req));
  const name = req.params['name']!;
  const body = await jsonBody(req);
  if (body['tags'] === undefined) fail(400, 'bad_request', '[{key_missing,tags}]');
  const c = await change(d, { op: 'put-user', name, passwordHash: passwordHashOf(body, `user '${name}'`), tags: tagsOf(body['tags']) });
  return c ? created : noContent;
}

async function putPermission(d: AccessDeps, req: HttpRequest): Promise<HttpResponse> {
  requireAdmin(d.who(req));
  const { vhost, user } = req.params as { vhost: string; user: string };
  const body = await jsonBody(req);
  const configure = field(body, 'configure', 'string', true)!;
  const write = field(body, 'write', 'string', true)!;
  const read = field(body, 'read', 'string', true)!;
  if (findUser(d.metadata.state, user) === undefined || !d.metadata.state.vhosts.has(vhost)) fail(400, 'bad_request', 'vhost_or_user_not_found');
  return (await change(d, { op: 'set-permissions', user, vhost, configure, write, read })) ? created : noContent;
}

async function putPolicy(d: AccessDeps, req: HttpRequest): Promise<HttpResponse> {
  const user = d.who(req);
  requirePolicymaker(user);
  const { vhost, name } = req.params as { vhost: string; name: string };
  requireVhost(d.metadata.state, user, vhost);
  const body = await jsonBody(req);
  const pattern = field(body, 'pattern', 'string', true)!;
  const definition = field(body, 'definition', 'object', true)!;
  const applyTo = field(body, 'apply-to', 'string') ?? 'all';
  if (applyTo !== 'all' && applyTo !== 'queues' && applyTo !== 'exchanges') fail(400, 'bad_request', `apply-to must be all, queues or exchanges, got '${applyTo}'`);
  const priority = field(body, 'priority', 'number') ?? 0;
  const existed = d.metadata.state.vhosts.get(vhost)?.policies.has(name) === true;
  const r = await d.metadata.apply({ kind: 'setPolicy', vhost, name, pattern, applyTo: applyTo as PolicyApplyTo, priority, definition });
  if (!r.ok) modelFailure(r);
  return existed ? noContent : created;
}

async function deletePolicy(d: AccessDeps, req: HttpRequest): Promise<HttpResponse> {
  const user = d.who(req);
  requirePolicymaker(user);
  const { vhost, name } = req.params as { vhost: string; name: string };
  requireVhost(d.metadata.state, user, vhost);
  const r = await d.metadata.apply({ kind: 'clearPolicy', vhost, name });
  if (!r.ok) modelFailure(r);
  return noContent;
}

function topicPermissionsWhere(d: AccessDeps, keep: (p: TopicPermissionRecord) => boolean): Row[] {
  return [...d.metadata.state.vhosts.values()].flatMap((v) => [...v.topicPermissions.values()].flatMap((m) => [...m.values()]))
    .filter(keep).map((p) => ({ user: p.user, vhost: p.vhost, exchange: p.exchange, write: p.write, read: p.read }));
}

/** PUT /api/topic-permissions/{vhost}/{user} {exchange, write, read}. */
async function putTopicPermission(d: AccessDeps, req: HttpRequest): Promise<HttpResponse> {
  requireAdmin(d.who(req));
  const { vhost, user } = req.params as { vhost: string; user: string };
  const body = await jsonBody(req);
  const exchange = field(body, 'exchange', 'string', true)!;
  const write = field(body, 'write', 'string', true)!;
  const read = field(body, 'read', 'string', true)!;
  if (findUser(d.metadata.state, user) === undefined || !d.metadata.state.vhosts.has(vhost)) fail(400, 'bad_request', 'vhost_or_user_not_found');
  const existed = d.metadata.state.vhosts.get(vhost)?.topicPermissions.get(user)?.has(exchange) === true;
  const r = await d.metadata.apply({ kind: 'setTopicPermissions', user, vhost, exchange, write, read });
  if (!r.ok) modelFailure(r);
  return existed ? noContent : created;
}

function permissionsWhere(d: AccessDeps, keep: (p: PermissionRecord) => boolean): Row[] {
  return [...d.metadata.state.vhosts.values()].flatMap((v) => [...v.permissions.values()].filter(keep).map(permissionRow));
}

export function accessRoutes(d: AccessDeps): Route[] {
  const state = (): AccessMetadata['state'] => d.metadata.state;
  const admin = (req: HttpRequest): void => requireAdmin(d.who(req));
  const user = (name: string): UserRecord => findUser(state(), name) ?? fail(404, 'not_found', 'Not Found');
  return [
    ['GET', '/api/whoami', (req) => {
      const u = d.who(req);
      return jsonResponse(200, { name: u.name, tags: [...u.tags], is_internal_user: true });
    }],
    ['GET', '/api/users', (req) => {
      admin(req);
      return listResponse([...state().users.values()].map(userRow), req.query, ['name']);
    }],
    ['GET', '/api/users/without-permissions', (req) => {
      admin(req);
      const permitted = new Set([...state().vhosts.values()].flatMap((v) => [...v.permissions.keys()]));
      return jsonResponse(200, [...state().users.values()].filter((u) => !permitted.has(u.name)).map(userRow));
    }],
    ['GET', '/api/users/:name', (req) => {
      admin(req);
      return jsonResponse(200, userRow(user(req.params['name']!)));
    }],
    ['PUT', '/api/users/:name', (req) => putUser(d, req)],
    ['DELETE', '/api/users/:name', async (req) => {
      admin(req);
      await change(d, { op: 'delete-user', name: req.params['name']! });
      return noContent;
    }],
    ['GET', '/api/users/:name/permissions', (req) => {
      admin(req);
      const name = user(req.params['name']!).name;
      return jsonResponse(200, permissionsWhere(d, (p) => p.user === name));
    }],
    ['GET', '/api/vhosts', (req) => {
      const u = d.who(req);
      const names = [...state().vhosts.keys()].filter((v) => isMonitor(u) || seesVhost(state(), u, v));
      return listResponse(names.map((n) => vhostRow(d, n)), req.query, ['name']);
    }],
    ['GET', '/api/vhosts/:name', (req) => {
      admin(req);
      if (!state().vhosts.has(req.params['name']!)) fail(404, 'not_found', 'Not Found');
      return jsonResponse(200, vhostRow(d, req.params['name']!));
    }],
    ['PUT', '/api/vhosts/:name', async (req) => {
      admin(req);
      await jsonBody(req); // description, tags, default_queue_type, tracing: accepted, not kept yet
      return (await change(d, { op: 'add-vhost', name: req.params['name']! })) ? created : noContent;
    }],
    ['DELETE', '/api/vhosts/:name', async (req) => {
      admin(req);
      await change(d, { op: 'delete-vhost', name: req.params['name']! });
      return noContent;
    }],
    ['GET', '/api/vhosts/:name/permissions', (req) => {
      admin(req);
      const v = req.params['name']!;
      if (!state().vhosts.has(v)) fail(404, 'not_found', 'Not Found');
      return jsonResponse(200, permissionsWhere(d, (p) => p.vhost === v));
    }],
    ['GET', '/api/permissions', (req) => {
      admin(req);
      return jsonResponse(200, permissionsWhere(d, () => true));
    }],
    ['GET', '/api/permissions/:vhost/:user', (req) => {
      admin(req);
      const p = state().vhosts.get(req.params['vhost']!)?.permissions.get(req.params['user']!);
      if (p === undefined) fail(404, 'not_found', 'Not Found');
      return jsonResponse(200, permissionRow(p));
    }],
    ['PUT', '/api/permissions/:vhost/:user', (req) => putPermission(d, req)],
    ['DELETE', '/api/permissions/:vhost/:user', async (req) => {
      admin(req);
      const { vhost, user: name } = req.params as { vhost: string; user: string };
      if (state().vhosts.get(vhost)?.permissions.has(name) !== true) fail(404, 'not_found', 'Not Found');
      await change(d, { op: 'clear-permissions', user: name, vhost });
      return noContent;
    }],
    ['GET', '/api/topic-permissions', (req) => {
      admin(req);
      return jsonResponse(200, topicPermissionsWhere(d, () => true));
    }],
    ['GET', '/api/topic-permissions/:vhost/:user', (req) => {
      admin(req);
      const { vhost, user: name } = req.params as { vhost: string; user: string };
      const rows = topicPermissionsWhere(d, (p) => p.vhost === vhost && p.user === name);
      if (rows.length === 0) fail(404, 'not_found', 'Not Found');
      return jsonResponse(200, rows);
    }],
    ['PUT', '/api/topic-permissions/:vhost/:user', (req) => putTopicPermission(d, req)],
    ['DELETE', '/api/topic-permissions/:vhost/:user', async (req) => {
      admin(req);
      const { vhost, user: name } = req.params as { vhost: string; user: string };
      if (state().vhosts.get(vhost)?.topicPermissions.has(name) !== true) fail(404, 'not_found', 'Not Found');
      const r = await d.metadata.apply({ kind: 'clearTopicPermissions', user: name, vhost });
      if (!r.ok) modelFailure(r);
      return noContent;
    }],
    ['GET', '/api/users/:name/topic-permissions', (req) => {
      admin(req);
      const name = user(req.params['name']!).name;
      return jsonResponse(200, topicPermissionsWhere(d, (p) => p.user === name));
    }],
    ['GET', '/api/vhosts/:name/topic-permissions', (req) => {
      admin(req);
      const v = req.params['name']!;
      if (!state().vhosts.has(v)) fail(404, 'not_found', 'Not Found');
      return jsonResponse(200, topicPermissionsWhere(d, (p) => p.vhost === v));
    }],
    ['GET', '/api/policies', (req) => listResponse(vhostsOf(state(), d.who(req), undefined).flatMap((v) => listPolicies(state(), v).map(policyRow)), req.query)],
    ['GET', '/api/policies/:vhost', (req) => listResponse(vhostsOf(state(), d.who(req), req.params['vhost']).flatMap((v) => listPolicies(state(), v).map(policyRow)), req.query)],
    ['GET', '/api/policies/:vhost/:name', (req) => {
      requireVhost(state(), d.who(req), req.params['vhost']!);
      const p = state().vhosts.get(req.params['vhost']!)?.policies.get(req.params['name']!);
      if (p === undefined) fail(404, 'not_found', 'Not Found');
      return jsonResponse(200, policyRow(p));
    }],
    ['PUT', '/api/policies/:vhost/:name', (req) => putPolicy(d, req)],
    ['DELETE', '/api/policies/:vhost/:name', (req) => deletePolicy(d, req)],
  ];
}
