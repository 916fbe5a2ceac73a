// What a node offers on durable tasks, whatever the way in (REST, AMQP, CLI): defining types,
// submitting (input checked against the type's schema), reading, listing, cancelling, watching,
// and the workers' reports (claim, step start and finish, heartbeat, complete, fail). It
// authorizes with the broker's users and vhost permissions on the type's work queue
// `espresso.tasks.TYPE` (configure to define, write to submit and cancel, read to view and work),
// dispatches work into that queue, and serves the `espresso.tasks` exchange (publish-hooks.ts):
// a message's `type` property names a worker report; any other message submits a task of the type
// its routing key names, with its message id as the task id when it has one.

import { randomUUID } from 'node:crypto';
import type { HookedPublish, PublishHookAnswer } from '../broker/publish-hooks.js';
import type { NodeContext } from '../broker/node-context.js';
import { isOperatingError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { checkPermission, lookupQueue } from '../model/index.js';
import { checkSchema, validate, type SchemaProblem } from './task-schema.js';
import { isFinished, publicRecord, type TaskRecord, type TaskResult, type TaskStatus, type TaskType } from './task-machine.js';
import type { TaskPage, TaskStore } from './task-store.js';

export const tasksExchange = 'espresso.tasks';

export function workQueueName(type: string): string {
  return `espresso.tasks.${type}`;
}

export const taskLimits = {
  /** Largest task input, step result or task result (bytes of JSON). */
  inputBytesMax: 1024 * 1024,
  nameLengthMax: 200,
  idLengthMax: 128,
  listLimitMax: 1000,
  listLimitDefault: 100,
  maxAttemptsMax: 100,
  defaultMaxAttempts: 3,
  defaultRetentionMs: 7 * 24 * 3600 * 1000,
  defaultLeaseMs: 60_000,
  leaseMsMin: 1000,
} as const;

/** An answer as REST shapes it: `status` is the HTTP status, also carried in AMQP replies. */
export type Outcome<T> =
  | { readonly ok: true; readonly status: number; readonly value: T }
  | { readonly ok: false; readonly status: number; readonly error: string; readonly reason: string; readonly problems?: readonly SchemaProblem[] };

type Failure = Extract<Outcome<never>, { ok: false }>;

function fail(status: number, error: string, reason: string, problems?: readonly SchemaProblem[]): Failure {
  return problems === undefined ? { ok: false, status, error, reason } : { ok: false, status, error, reason, problems };
}

export interface TypeOptions {
  schema?: unknown;
  maxAttempts?: number;
  retentionMs?: number;
  leaseMs?: number;
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const idPattern = /^[A-Za-z0-9._:-]+$/;

export const WorkerOp = {
  define: 'espresso.task.define',
  claim: 'espresso.task.claim',
  stepStart: 'espresso.task.step-start',
  stepDone: 'espresso.task.step-done',
  heartbeat: 'espresso.task.heartbeat',
  complete: 'espresso.task.complete',
  fail: 'espresso.task.fail',
  /** Not a worker's: reads a task's record (read permission), as GET /api/tasks/{id}. */
  get: 'espresso.task.get',
} as const;

export class TaskService {
  private readonly log: Logger;
  /** The last enqueue of each work queue sent from here (vhost NUL type). */
  private readonly enqueues = new Map<string, Promise<void>>();

  constructor(private readonly store: TaskStore, private readonly ctx: NodeContext, logger: Logger) {
    this.log = logger.child('tasks');
  }

  /**
   * Serves espresso.tasks and hosts the groups. The exchange is declared in a vhost when a type is
   * first defined there (and by the SDK), so a node without tasks lists no exchange of its own.
   */
  start(): void {
    this.ctx.publishHooks.set(tasksExchange, (p) => this.onPublish(p));
    this.store.start((task, d) => this.enqueue(task, d));
  }

  close(): Promise<void> {
    return this.store.close();
  }

  // ---- types ----

  async define(user: string | undefined, vhost: string, name: string, o: TypeOptions): Promise<Outcome<TaskType>> {
    const bad = this.checkVhost(vhost) ?? checkName(name);
    if (bad !== null) return bad;
    if (!this.permitted(user, vhost, name, 'configure')) return denied(user, vhost, name, 'configure');
    const problems: SchemaProblem[] = [];
    const schema = o.schema ?? null;
    if (schema !== null) problems.push(...checkSchema(schema));
    const maxAttempts = o.maxAttempts ?? taskLimits.defaultMaxAttempts;
    const retentionMs = o.retentionMs ?? taskLimits.defaultRetentionMs;
    const leaseMs = o.leaseMs ?? taskLimits.defaultLeaseMs;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > taskLimits.maxAttemptsMax) problems.push({ path: 'maxAttempts', message: `must be an integer from 1 to ${taskLimits.maxAttemptsMax}` });
    if (!Number.isInteger(retentionMs) || retentionMs < 0) problems.push({ path: 'retentionMs', message: 'must be a non-negative integer (ms)' });
    if (!Number.isInteger(leaseMs) || leaseMs < taskLimits.leaseMsMin) problems.push({ path: 'leaseMs', message: `must be an integer of at least ${taskLimits.leaseMsMin} (ms)` });
    if (problems.length > 0) return fail(400, 'bad_request', `invalid task type: ${describe(problems)}`, problems);
    const r = await this.store.types.propose({ k: 'define', type: { name, vhost, schema, maxAttempts, retentionMs, leaseMs } });
    if (!r.ok || r.type === undefined) return fail(500, 'internal_error', r.ok ? 'no type answered' : r.message);
    await this.declareExchange(vhost);
    await this.workQueue(vhost, name);
    this.log.info('task type defined', { vhost, type: name, maxAttempts, retentionMs, leaseMs });
    return { ok: true, status: 200, value: r.type };
  }

  async types(user: string | undefined, vhost?: string): Promise<TaskType[]> {
    const all = await this.store.listTypes(vhost);
    return all.filter((t) => this.permitted(user, t.vhost, t.name, 'read'));
  }

  // ---- callers ----

  async submit(user: string | undefined, vhost: string, type: string, input: unknown, id?: string): Promise<Outcome<{ id: string; status: TaskStatus }>> {
    const bad = this.checkVhost(vhost) ?? checkName(type, 'type');
    if (bad !== null) return bad;
    if (id !== undefined && (id.length === 0 || id.length > taskLimits.idLengthMax || !idPattern.test(id))) {
      return fail(400, 'bad_request', `id: must be 1-${taskLimits.idLengthMax} characters of A-Z a-z 0-9 . _ : -`, [{ path: 'id', message: 'invalid' }]);
    }
    const t = await this.store.getType(vhost, type);
    if (t === null) return fail(404, 'not_found', `no task type '${type}' in vhost '${vhost}'`);
    if (!this.permitted(user, vhost, type, 'write')) return denied(user, vhost, type, 'write');
    const bytes = Buffer.byteLength(JSON.stringify(input ?? null));
    if (bytes > taskLimits.inputBytesMax) return fail(413, 'payload_too_large', `input is ${bytes} bytes; the limit is ${taskLimits.inputBytesMax} bytes`);
    if (t.schema !== null) {
      const problems = validate(t.schema, input);
      if (problems.length > 0) return fail(400, 'bad_request', `input does not match the schema of '${type}': ${describe(problems)}`, problems);
    }
    const taskId = id ?? randomUUID();
    const r = await this.store.propose(taskId, {
      k: 'submit', id: taskId, type, vhost, input, user: user ?? '', maxAttempts: t.maxAttempts, retentionMs: t.retentionMs, leaseMs: t.leaseMs,
    });
    if (!r.ok && r.refusal !== 'exists') return fail(500, 'internal_error', r.message);
    const rec = r.task!;
    if (!r.ok && (rec.type !== type || rec.vhost !== vhost)) return fail(409, 'conflict', `task '${taskId}' exists with another type or vhost`);
    return { ok: true, status: r.ok ? 201 : 200, value: { id: rec.id, status: rec.status } };
  }

  async get(user: string | undefined, id: string): Promise<Outcome<Record<string, unknown>>> {
    const t = await this.store.get(id);
    if (t === null) return fail(404, 'not_found', `no task '${id}'`);
    if (!this.permitted(user, t.vhost, t.type, 'read')) return denied(user, t.vhost, t.type, 'read');
    return { ok: true, status: 200, value: publicRecord(t) };
  }

  async list(user: string | undefined, q: { vhost?: string; type?: string; status?: string; limit?: string; after?: string }): Promise<Outcome<{ items: Record<string, unknown>[]; next: string | null }>> {
    const problems: SchemaProblem[] = [];
    const statuses = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
    if (q.status !== undefined && !statuses.includes(q.status)) problems.push({ path: 'status', message: `must be one of ${statuses.join(', ')}` });
    const limit = q.limit === undefined ? taskLimits.listLimitDefault : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > taskLimits.listLimitMax) problems.push({ path: 'limit', message: `must be an integer from 1 to ${taskLimits.listLimitMax}` });
    if (problems.length > 0) return fail(400, 'bad_request', describe(problems), problems);
    const page: TaskPage = await this.store.list({
      kind: 'list', limit: limit * 2 + 10,
      ...(q.vhost !== undefined ? { vhost: q.vhost } : {}), ...(q.type !== undefined ? { type: q.type } : {}),
      ...(q.status !== undefined ? { status: q.status as TaskStatus } : {}), ...(q.after !== undefined ? { after: q.after } : {}),
    });
    // Only what the user may read; the cursor continues after the last item shown.
    const visible = page.items.filter((t) => this.permitted(user, t.vhost, t.type, 'read'));
    const items = visible.slice(0, limit);
    const more = visible.length > limit || page.next !== null;
    const last = items[items.length - 1];
    return { ok: true, status: 200, value: { items: items.map(publicRecord), next: more && last !== undefined ? `${last.createdAt}_${last.id}` : null } };
  }

  async cancel(user: string | undefined, id: string): Promise<Outcome<Record<string, unknown>>> {
    const t = await this.store.get(id);
    if (t === null) return fail(404, 'not_found', `no task '${id}'`);
    if (!this.permitted(user, t.vhost, t.type, 'write')) return denied(user, t.vhost, t.type, 'write');
    const r = await this.store.propose(id, { k: 'cancel', id, user: user ?? '' });
    if (!r.ok) return fail(409, 'conflict', r.message);
    this.log.info('task cancelled', { task: id, by: user ?? '' });
    return { ok: true, status: 200, value: publicRecord(r.task!) };
  }

  /**
   * Calls `listener` with the record now and after each change (from this node's copy when it
   * hosts the task's group, else by polling its leader) until it finishes or the stop function runs.
   */
  watch(id: string, listener: (t: Record<string, unknown> | null) => void): () => void {
    const g = this.store.groupOf(id);
    let stopped = false;
    let last = '';
    const push = (t: TaskRecord | null): void => {
      if (stopped) return;
      const text = JSON.stringify(t);
      if (text === last) return;
      last = text;
      listener(t === null ? null : publicRecord(JSON.parse(text) as TaskRecord));
    };
    const poll = setInterval(() => {
      this.store.get(id).then(push, () => undefined);
    }, g.hosted ? 5000 : 500);
    const off = g.hosted ? g.onChange((e, r) => {
      if ('id' in e && e.id === id) push(r.task ?? g.state.tasks.get(id) ?? null);
    }) : () => true;
    this.store.get(id).then(push, () => undefined);
    return () => {
      stopped = true;
      clearInterval(poll);
      off();
    };
  }

  // ---- workers and AMQP ----

  /** A publish to espresso.tasks: a worker report (type property) or a submission. */
  private async onPublish(p: HookedPublish): Promise<PublishHookAnswer> {
    const op = typeof p.properties['type'] === 'string' ? (p.properties['type'] as string) : '';
    let out: Outcome<unknown>;
    try {
      out = op.startsWith('espresso.task.') ? await this.workerOp(p, op) : await this.amqpSubmit(p);
    } catch (e) {
      if (!isOperatingError(e)) throw e;
      out = fail(503, 'unavailable', `the task store did not answer: ${e.message}`);
    }
    const { status: code, ...rest } = out;
    const body = Buffer.from(JSON.stringify(out.ok ? { ok: true, code, ...(out.value as object) } : { ...rest, code }));
    return { ok: out.ok, reply: { body } };
  }

  private async amqpSubmit(p: HookedPublish): Promise<Outcome<unknown>> {
    if (p.body.length > taskLimits.inputBytesMax) return fail(413, 'payload_too_large', `input is ${p.body.length} bytes; the limit is ${taskLimits.inputBytesMax} bytes`);
    const input = parseJson(p.body);
    if (input === undefined) return fail(400, 'bad_request', 'the message body is not JSON');
    const mid = p.properties['messageId'];
    return await this.submit(p.user, p.vhost, p.routingKey, input.value, typeof mid === 'string' && mid !== '' ? mid : undefined);
  }

  private async workerOp(p: HookedPublish, op: string): Promise<Outcome<unknown>> {
    const parsed = parseJson(p.body);
    if (parsed === undefined || parsed.value === null || typeof parsed.value !== 'object') return fail(400, 'bad_request', `${op}: the body must be a JSON object`);
    const b = parsed.value as Record<string, unknown>;
    const type = p.routingKey;
    if (op === WorkerOp.define) return await this.define(p.user, p.vhost, type, b as TypeOptions);
    if (op === WorkerOp.get) {
      const got = await this.get(p.user, String(b['id'] ?? ''));
      return got.ok ? { ...got, value: { task: got.value } } : got;
    }
    if (!this.permitted(p.user, p.vhost, type, 'read')) return denied(p.user, p.vhost, type, 'read');
    const id = typeof b['id'] === 'string' ? b['id'] : '';
    const attempt = typeof b['attempt'] === 'number' ? b['attempt'] : -1;
    const entry = ((): Parameters<TaskStore['propose']>[1] | null => {
      switch (op) {
        case WorkerOp.claim: return { k: 'claim', id, dispatch: Number(b['dispatch']), worker: String(b['worker'] ?? ''), node: this.ctx.nodeId };
        case WorkerOp.stepStart: return { k: 'stepStart', id, attempt, name: String(b['name'] ?? ''), ...(b['detail'] !== undefined ? { detail: b['detail'] } : {}) };
        case WorkerOp.stepDone: return { k: 'stepDone', id, attempt, name: String(b['name'] ?? ''), result: b['result'] ?? null, ...(b['detail'] !== undefined ? { detail: b['detail'] } : {}) };
        case WorkerOp.heartbeat: return { k: 'heartbeat', id, attempt, ...(b['detail'] !== undefined ? { detail: b['detail'] } : {}) };
        case WorkerOp.complete: return { k: 'complete', id, attempt, result: b['result'] ?? null };
        case WorkerOp.fail: return { k: 'fail', id, attempt, message: String(b['message'] ?? 'failed'), ...(b['details'] !== undefined ? { details: b['details'] } : {}) };
        default: return null;
      }
    })();
    if (entry === null) return fail(400, 'bad_request', `unknown worker report '${op}'`);
    if (id === '') return fail(400, 'bad_request', `${op}: id is required`);
    const r: TaskResult = await this.store.propose(id, entry);
    const task = r.task === undefined ? undefined : publicRecord(r.task);
    if (r.ok) return { ok: true, status: 200, value: { task } };
    return { ok: true, status: 409, value: { refused: r.refusal, reason: r.message, task } };
  }

  /** Puts `{id, dispatch}` in the type's work queue (declared when missing); true once it is there. */
  private async enqueue(task: { id: string; type: string; vhost: string }, dispatch: number): Promise<boolean> {
    const queue = await this.workQueue(task.vhost, task.type);
    if (queue === undefined) return false;
    const body = Buffer.from(JSON.stringify({ id: task.id, dispatch }));
    const message = {
      exchange: '', routingKey: workQueueName(task.type), body,
      properties: { contentType: 'application/json', deliveryMode: 2, messageId: task.id, type: 'espresso.task.dispatch' },
    };
    try {
      // One enqueue of a work queue at a time from this node: many at once (dispatches committed
      // together) cost the queue mesh's ordering of concurrent enqueues far more than they gain.
      const key = `${task.vhost}\u0000${task.type}`;
      const sent = (this.enqueues.get(key) ?? Promise.resolve()).then(() => queue.enqueue(message));
      const tail = sent.then(() => undefined, () => undefined);
      this.enqueues.set(key, tail);
      void tail.then(() => {
        if (this.enqueues.get(key) === tail) this.enqueues.delete(key);
      });
      return (await sent) === 'ok';
    } catch (e) {
      if (!isOperatingError(e)) throw e;
      return false;
    }
  }

  private async workQueue(vhost: string, type: string): Promise<ReturnType<NodeContext['queues']['ensure']> | undefined> {
    const name = workQueueName(type);
    let record = lookupQueue(this.ctx.metadata.state, vhost, name);
    if (record === undefined) {
      const r = await this.ctx.metadata.apply({
        kind: 'declareQueue', vhost, name, passive: false, durable: true, exclusive: false, autoDelete: false, arguments: {},
        connection: { connectionId: 'espresso-tasks', nodeId: this.ctx.nodeId as never },
      });
      if (!r.ok) {
        this.log.warn('task work queue not declared', { vhost, queue: name, error: r.replyText });
        return undefined;
      }
      record = r.queue ?? lookupQueue(this.ctx.metadata.state, vhost, name);
    }
    return record === undefined ? undefined : this.ctx.queues.ensure(record);
  }

  private async declareExchange(vhost: string): Promise<void> {
    const r = await this.ctx.metadata.apply({
      kind: 'declareExchange', vhost, name: tasksExchange, type: 'topic', passive: false, durable: true, autoDelete: false, internal: false, arguments: {},
    });
    if (!r.ok) this.log.warn('espresso.tasks exchange not declared', { vhost, error: r.replyText });
  }

  // ---- checks ----

  private checkVhost(vhost: string): Failure | null {
    return this.ctx.metadata.state.vhosts.has(vhost) ? null : fail(404, 'not_found', `no vhost '${vhost}'`);
  }

  private permitted(user: string | undefined, vhost: string, type: string, perm: 'configure' | 'write' | 'read'): boolean {
    return checkPermission(this.ctx.metadata.state, user, vhost, 'queue', workQueueName(type), perm) === null;
  }
}

function denied(user: string | undefined, vhost: string, type: string, perm: string): Failure {
  return fail(403, 'access_refused', `user '${user ?? ''}' has no ${perm} permission on task type '${type}' (queue '${workQueueName(type)}') in vhost '${vhost}'`);
}

function checkName(name: string, what = 'name'): Failure | null {
  if (name.length > 0 && name.length <= taskLimits.nameLengthMax && namePattern.test(name)) return null;
  return fail(400, 'bad_request', `${what}: '${name}' is not a task type name (1-${taskLimits.nameLengthMax} characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit)`, [{ path: what, message: 'invalid' }]);
}

function describe(problems: readonly SchemaProblem[]): string {
  return problems.map((p) => `${p.path} ${p.message}`).join('; ');
}

function parseJson(b: Buffer): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(b.toString('utf8')) as unknown };
  } catch {
    return undefined;
  }
}

export { isFinished };
