// The durable-task REST API on the node's HTTP listener, under /api/tasks: HTTP Basic with the
// broker's users (any user; no management tag needed), authorized by vhost permissions on the
// type's work queue (task-service.ts). Errors are RabbitMQ's JSON bodies {"error", "reason"},
// plus "problems" [{path, message}] naming each failing field of a 400.
//
//   POST   /api/tasks                       {"type", "input", "vhost"?, "id"?} -> 201 {"id", "status"} (200 when "id" existed)
//   GET    /api/tasks?vhost=&type=&status=&limit=&after=                      -> 200 {"items": [...], "next": cursor|null}
//   GET    /api/tasks/{id}                                                    -> 200 the record
//   DELETE /api/tasks/{id}                  cancel (its worker is refused from then on) -> 200 the record; 409 when finished
//   GET    /api/tasks/{id}/events           text/event-stream: `event: task` with the record now and after each change, until it finishes
//   PUT    /api/tasks/types/{vhost}/{name}  {"schema"?, "maxAttempts"?, "retentionMs"?, "leaseMs"?} -> 200 the type
//   GET    /api/tasks/types?vhost=                                            -> 200 [types]

import { Readable } from 'node:stream';
import { checkPassword, isLoopback } from '../broker/auth.js';
import type { NodeContext } from '../broker/node-context.js';
import { findUser } from '../model/index.js';
import { isFinished, taskLimits, type Outcome, type TaskService, type TypeOptions } from '../tasks/task-service.js';
import { basicCredentials } from './basic-auth.js';
import { errorResponse, jsonResponse, type HttpListener, type HttpRequest, type HttpResponse } from './server.js';

/** A POST body: the input at its limit plus room for the envelope. */
const bodyBytesMax = taskLimits.inputBytesMax + 64 * 1024;
const sseKeepAliveMs = 15_000;

export function serveTasks(http: HttpListener, tasks: TaskService, ctx: NodeContext): void {
  const user = (req: HttpRequest): string | HttpResponse => authenticate(ctx, req);
  const guarded = (f: (req: HttpRequest, user: string) => Promise<HttpResponse>) => async (req: HttpRequest): Promise<HttpResponse> => {
    const u = user(req);
    return typeof u === 'string' ? await f(req, u) : u;
  };
  http.route('GET', '/api/tasks/types', guarded(async (req, u) => jsonResponse(200, await tasks.types(u, req.query.get('vhost') ?? undefined))));
  http.route('PUT', '/api/tasks/types/:vhost/:name', guarded(async (req, u) => {
    const body = await jsonBody(req);
    if ('status' in body) return body;
    if (body.value === null || typeof body.value !== 'object' || Array.isArray(body.value)) return errorResponse(400, 'bad_request', 'the body must be a JSON object');
    return answer(await tasks.define(u, req.params['vhost']!, req.params['name']!, body.value as TypeOptions));
  }));
  http.route('POST', '/api/tasks', guarded(async (req, u) => {
    const body = await jsonBody(req);
    if ('status' in body) return body;
    const b = body.value as Record<string, unknown> | null;
    if (b === null || typeof b !== 'object' || Array.isArray(b)) return errorResponse(400, 'bad_request', 'the body must be a JSON object {"type", "input", "vhost"}');
    const problems: Array<{ path: string; message: string }> = [];
    if (typeof b['type'] !== 'string') problems.push({ path: 'type', message: 'is required (a string)' });
    if (b['vhost'] !== undefined && typeof b['vhost'] !== 'string') problems.push({ path: 'vhost', message: 'must be a string' });
    if (b['id'] !== undefined && typeof b['id'] !== 'string') problems.push({ path: 'id', message: 'must be a string' });
    if (!('input' in b)) problems.push({ path: 'input', message: 'is required (any JSON)' });
    if (problems.length > 0) return jsonResponse(400, { error: 'bad_request', reason: problems.map((p) => `${p.path} ${p.message}`).join('; '), problems });
    const vhost = (b['vhost'] as string | undefined) ?? '/';
    return answer(await tasks.submit(u, vhost, b['type'] as string, b['input'], b['id'] as string | undefined));
  }));
  http.route('GET', '/api/tasks', guarded(async (req, u) => {
    const q: Record<string, string> = {};
    for (const k of ['vhost', 'type', 'status', 'limit', 'after']) {
      const v = req.query.get(k);
      if (v !== null && v !== '') q[k] = v;
    }
    return answer(await tasks.list(u, q));
  }));
  http.route('GET', '/api/tasks/:id', guarded(async (req, u) => answer(await tasks.get(u, req.params['id']!))));
  http.route('DELETE', '/api/tasks/:id', guarded(async (req, u) => answer(await tasks.cancel(u, req.params['id']!))));
  http.route('GET', '/api/tasks/:id/events', guarded(async (req, u) => {
    const first = await tasks.get(u, req.params['id']!);
    if (!first.ok) return answer(first);
    return { status: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' }, body: events(tasks, req.params['id']!) };
  }));
}

/** Server-sent events of one task until it finishes or the client goes. */
function events(tasks: TaskService, id: string): Readable {
  let stop = (): void => {};
  const keepAlive = setInterval(() => stream.push(': keep-alive\n\n'), sseKeepAliveMs);
  const end = (): void => {
    clearInterval(keepAlive);
    stop();
  };
  const stream = new Readable({ read() {} });
  stream.once('unpipe', end);
  stream.once('close', end);
  stop = tasks.watch(id, (t) => {
    if (t === null) {
      stream.push('event: gone\ndata: {}\n\n');
      stream.push(null);
      end();
      return;
    }
    stream.push(`event: task\ndata: ${JSON.stringify(t)}\n\n`);
    if (isFinished(t['status'] as never)) {
      stream.push(null);
      end();
    }
  });
  return stream;
}

function answer<T>(o: Outcome<T>): HttpResponse {
  if (o.ok) return jsonResponse(o.status, o.value);
  return jsonResponse(o.status, { error: o.error, reason: o.reason, ...(o.problems !== undefined ? { problems: o.problems } : {}) });
}

async function jsonBody(req: HttpRequest): Promise<{ value: unknown } | HttpResponse> {
  const raw = await req.body(bodyBytesMax);
  try {
    return { value: JSON.parse(raw.toString('utf8')) as unknown };
  } catch (e) {
    return errorResponse(400, 'bad_request', `the body is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The request's broker user, or the 401 refusing it (RabbitMQ's answers, as basic-auth.ts gives them). */
function authenticate(ctx: NodeContext, req: HttpRequest): string | HttpResponse {
  const creds = basicCredentials(req.headers.authorization);
  if (creds === null) return errorResponse(401, 'not_authorized', 'HTTP Basic credentials of a broker user are required', { 'www-authenticate': 'Basic realm="espresso"' });
  const user = findUser(ctx.metadata.state, creds.user);
  if (user === undefined || !checkPassword(creds.pass, user.passwordHash)) return errorResponse(401, 'not_authorized', 'Not_Authorized');
  if (ctx.config.loopbackUsers.includes(creds.user) && !isLoopback(req.remoteAddress)) return errorResponse(401, 'not_authorised', 'User can only log in via localhost');
  return user.name;
}
