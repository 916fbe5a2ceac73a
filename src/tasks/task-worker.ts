// The durable-task SDK for workers and submitters: `connectTasks(urls)` (one failover AMQP
// connection), `tasks.work(type, handler)`, `tasks.submit(type, input)`. A worker consumes the
// type's work queue `espresso.tasks.TYPE` with prefetch = concurrency and holds each task by
// holding its message; every report (claim, step start and finish, heartbeat, complete, fail)
// is a publish to the `espresso.tasks` exchange with the report in the `type` property and the
// answer on direct reply-to, given once the task group committed it. `ctx.step(name, fn)` returns
// the saved result of a step a previous attempt finished, and otherwise runs fn and commits its
// result before returning. The message is acked once the task is finished (or no longer ours);
// a failed attempt with attempts left is requeued for the next. A report the store refuses
// (another holder took over, the task was cancelled) aborts the handler: ctx.signal fires and
// ctx.step throws TaskLostError.

import type * as amqp from 'amqplib';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { defaultRpcLimits } from './limits.js';
import { FailoverConnection, type Link, type LinkUser, type RpcEvent } from './rpc-connection.js';

const exchange = 'espresso.tasks';
const replyTo = 'amq.rabbitmq.reply-to';

export interface TaskStepView {
  readonly name: string;
  readonly status: 'running' | 'succeeded';
  readonly attempt: number;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  readonly detail: unknown;
  readonly result?: unknown;
}

/** A task as the store records it (GET /api/tasks/{id} answers the same). */
export interface TaskView {
  readonly id: string;
  readonly type: string;
  readonly vhost: string;
  readonly input: unknown;
  readonly status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  readonly attempts: ReadonlyArray<{ n: number; worker: string; node: string; startedAt: number; endedAt: number | null; error: { message: string; details?: unknown; at: number } | null }>;
  readonly owner: { worker: string; node: string } | null;
  readonly steps: readonly TaskStepView[];
  readonly result?: unknown;
  readonly error: { message: string; details?: unknown; at: number } | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly finishedAt: number | null;
  /** A running attempt is released after this long without a report from its worker. */
  readonly leaseMs: number;
}

export interface TaskContext {
  /** This attempt's number (1 on the first). */
  readonly attempt: number;
  /** Fires when the task is no longer this worker's (cancelled, taken over, connection lost). */
  readonly signal: AbortSignal;
  /** Runs `fn` as step `name` once: a step finished before returns its saved result. */
  step<T>(name: string, fn: () => T | Promise<T>, opts?: { detail?: unknown }): Promise<T>;
  /** Records progress details on the running step and renews the lease. */
  progress(detail: unknown): Promise<void>;
}

export type TaskHandler = (task: TaskView, ctx: TaskContext) => unknown;

export interface WorkOptions {
  /** Tasks run at once by this worker (its prefetch). */
  concurrency?: number;
  /** Defines (or redefines) the type first: schema, max attempts, retention and lease (ms). */
  define?: { schema?: unknown; maxAttempts?: number; retentionMs?: number; leaseMs?: number };
  /** How often a running task's lease is renewed; default a third of the type's lease. */
  heartbeatMs?: number;
}

export interface TasksOptions {
  name?: string;
  onEvent?: (e: RpcEvent | { type: 'task-error'; task: string; reason: string } | { type: 'task-finished'; task: string; status: string }) => void;
  /** How long a report waits for its answer. */
  reportTimeoutMs?: number;
}

export class TaskLostError extends Error {
  constructor(readonly taskId: string, readonly reason: string) {
    super(`task ${taskId} is no longer this worker's: ${reason}`);
    this.name = 'TaskLostError';
  }
}

export class TaskRefusedError extends Error {
  constructor(readonly status: number, readonly error: string, readonly reason: string, readonly problems?: ReadonlyArray<{ path: string; message: string }>) {
    super(`${status} ${error}: ${reason}`);
    this.name = 'TaskRefusedError';
  }
}

interface Answer { ok: boolean; code: number; status?: string; error?: string; reason?: string; refused?: string; task?: TaskView; id?: string; problems?: Array<{ path: string; message: string }> }

/** One channel with a direct reply-to consumer: reports and submissions, answers by correlation id. */
class Reporter {
  private ch: amqp.Channel | undefined;
  private seq = 0;
  private readonly waiting = new Map<string, { resolve: (a: Answer) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();

  constructor(private readonly timeoutMs: number) {}

  async up(link: Link): Promise<void> {
    const ch = await link.conn.createChannel();
    ch.on('error', () => undefined);
    ch.on('close', () => {
      if (this.ch === ch) this.down();
    });
    await ch.consume(replyTo, (m) => {
      if (m === null) return;
      const w = this.waiting.get(String(m.properties.correlationId));
      if (w === undefined) return;
      this.waiting.delete(String(m.properties.correlationId));
      clearTimeout(w.timer);
      try {
        w.resolve(JSON.parse(m.content.toString('utf8')) as Answer);
      } catch (e) {
        w.reject(e as Error);
      }
    }, { noAck: true });
    await ch.assertExchange(exchange, 'topic', { durable: true });
    this.ch = ch;
  }

  down(): void {
    this.ch = undefined;
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new Error('connection lost'));
      this.waiting.delete(id);
    }
  }

  ask(routingKey: string, op: string | undefined, body: unknown, messageId?: string): Promise<Answer> {
    const ch = this.ch;
    if (ch === undefined) return Promise.reject(new Error('not connected'));
    const id = `${++this.seq}`;
    return new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no answer to ${op ?? 'submit'} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      ch.publish(exchange, routingKey, Buffer.from(JSON.stringify(body ?? null)), {
        replyTo, correlationId: id, contentType: 'application/json', persistent: true,
        ...(op !== undefined ? { type: op } : {}), ...(messageId !== undefined ? { messageId } : {}),
      });
    });
  }
}

class TypeWorker implements LinkUser {
  readonly name: string;
  private ch: amqp.Channel | undefined;
  private readonly running = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    readonly type: string,
    private readonly handler: TaskHandler,
    private readonly opts: WorkOptions,
    private readonly reporter: Reporter,
    private readonly workerId: string,
    private readonly emit: NonNullable<TasksOptions['onEvent']>,
  ) {
    this.name = `work ${type}`;
  }

  async up(link: Link): Promise<void> {
    if (this.opts.define !== undefined) {
      const a = await this.reporter.ask(this.type, 'espresso.task.define', this.opts.define);
      if (!a.ok) throw new TaskRefusedError(a.code, a.error ?? '', a.reason ?? '', a.problems);
    }
    const ch = await link.conn.createChannel();
    ch.on('error', () => undefined);
    const queue = `espresso.tasks.${this.type}`;
    await ch.assertQueue(queue, { durable: true });
    await ch.prefetch(this.opts.concurrency ?? 1);
    await ch.consume(queue, (m) => {
      if (m === null || this.stopped) return;
      const run = this.run(ch, m).catch((e: unknown) => this.emit({ type: 'task-error', task: m.properties.messageId ?? '', reason: e instanceof Error ? e.message : String(e) }));
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    });
    this.ch = ch;
  }

  down(): void {
    this.ch = undefined;
  }

  /** Stops taking tasks; running handlers get closeDrainMs to finish (their tasks return to the queue otherwise). */
  async stop(): Promise<void> {
    this.stopped = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = new Promise<void>((r) => (timer = setTimeout(r, defaultRpcLimits.closeDrainMs)));
    await Promise.race([Promise.allSettled([...this.running]), drained]);
    clearTimeout(timer);
    await this.ch?.close().catch(() => undefined);
  }

  private async run(ch: amqp.Channel, m: amqp.ConsumeMessage): Promise<void> {
    const { id, dispatch } = JSON.parse(m.content.toString('utf8')) as { id: string; dispatch: number };
    const claimed = await this.reporter.ask(this.type, 'espresso.task.claim', { id, dispatch, worker: this.workerId });
    if (!claimed.ok || claimed.code !== 200 || claimed.task === undefined) {
      ch.ack(m); // finished, stale or unknown: not ours to run
      return;
    }
    const task = claimed.task;
    const attempt = task.attempts.length;
    const abort = new AbortController();
    const lost = (reason: string): TaskLostError => {
      const e = new TaskLostError(id, reason);
      abort.abort(e);
      return e;
    };
    const report = async (op: string, body: Record<string, unknown>): Promise<Answer> => {
      let a: Answer;
      try {
        a = await this.reporter.ask(this.type, op, { id, attempt, ...body });
      } catch (e) {
        throw lost(e instanceof Error ? e.message : String(e));
      }
      if (!a.ok || a.code !== 200) throw lost(a.reason ?? a.refused ?? `${a.code}`);
      return a;
    };
    const done = new Map(task.steps.filter((s) => s.status === 'succeeded').map((s) => [s.name, s.result]));
    const ctx: TaskContext = {
      attempt,
      signal: abort.signal,
      step: async <T>(name: string, fn: () => T | Promise<T>, o: { detail?: unknown } = {}): Promise<T> => {
        if (done.has(name)) return done.get(name) as T;
        if (abort.signal.aborted) throw abort.signal.reason as Error;
        await report('espresso.task.step-start', { name, ...(o.detail !== undefined ? { detail: o.detail } : {}) });
        const result = await fn();
        if (abort.signal.aborted) throw abort.signal.reason as Error;
        await report('espresso.task.step-done', { name, result: result ?? null });
        done.set(name, result);
        return result;
      },
      progress: async (detail: unknown) => {
        await report('espresso.task.heartbeat', { detail });
      },
    };
    const beat = setInterval(() => {
      report('espresso.task.heartbeat', {}).catch(() => undefined);
    }, this.opts.heartbeatMs ?? Math.max(300, task.leaseMs / 3));
    try {
      let result: unknown;
      try {
        result = await this.handler(task, ctx);
      } catch (e) {
        if (abort.signal.aborted) return ch.ack(m); // no longer ours: drop our message
        const details = e instanceof Error ? { name: e.name, stack: e.stack } : { value: String(e) };
        const a = await report('espresso.task.fail', { message: e instanceof Error ? e.message : String(e), details });
        // Attempts left: back to the queue for the next one; else the task failed for good.
        if (a.task?.status === 'queued') ch.nack(m, false, true);
        else ch.ack(m);
        return;
      }
      if (abort.signal.aborted) return ch.ack(m);
      await report('espresso.task.complete', { result: result ?? null });
      ch.ack(m);
      this.emit({ type: 'task-finished', task: id, status: 'succeeded' });
    } catch (e) {
      // A refused report: the task is someone else's or cancelled. A lost connection: the broker returns the message.
      if (e instanceof TaskLostError && !/connection lost|not connected|no answer/.test(e.reason)) ch.ack(m);
    } finally {
      clearInterval(beat);
    }
  }
}

export interface Working {
  readonly type: string;
  stop(): Promise<void>;
}

export class Tasks {
  private readonly workers = new Map<string, TypeWorker>();
  readonly workerId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

  /** Use connectTasks. */
  constructor(private readonly connection: FailoverConnection, private readonly reporter: Reporter, private readonly emit: NonNullable<TasksOptions['onEvent']>) {}

  /** Works tasks of `type` with `handler` until stopped; resolves once consuming. */
  async work(type: string, handler: TaskHandler, opts: WorkOptions = {}): Promise<Working> {
    if (this.workers.has(type)) throw new TypeError(`type '${type}' is already worked by this client`);
    const w = new TypeWorker(type, handler, opts, this.reporter, this.workerId, this.emit);
    this.workers.set(type, w);
    await this.connection.attach(w);
    return {
      type,
      stop: async () => {
        this.workers.delete(type);
        this.connection.detach(w);
        await w.stop();
      },
    };
  }

  /** Defines (or redefines) a task type. */
  async define(type: string, def: NonNullable<WorkOptions['define']>): Promise<void> {
    const a = await this.reporter.ask(type, 'espresso.task.define', def);
    if (!a.ok) throw new TaskRefusedError(a.code, a.error ?? '', a.reason ?? '', a.problems);
  }

  /** Submits a task; resolves with its id once recorded. `id` makes a retried submit idempotent. */
  async submit(type: string, input: unknown, opts: { id?: string } = {}): Promise<{ id: string; status: string }> {
    const a = await this.reporter.ask(type, undefined, input, opts.id);
    if (!a.ok) throw new TaskRefusedError(a.code, a.error ?? '', a.reason ?? '', a.problems);
    return { id: a.id!, status: a.status ?? '' };
  }

  /** The task's record (the type names the queue whose read permission it needs). */
  async get(type: string, id: string): Promise<TaskView> {
    const a = await this.reporter.ask(type, 'espresso.task.get', { id });
    if (!a.ok || a.task === undefined) throw new TaskRefusedError(a.code, a.error ?? '', a.reason ?? '', a.problems);
    return a.task;
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
    this.workers.clear();
    await this.connection.close();
  }
}

/** Connects to the first of `urls` that accepts, failing over to the others when it drops. */
export async function connectTasks(urls: string | readonly string[], opts: TasksOptions = {}): Promise<Tasks> {
  const list = typeof urls === 'string' ? [urls] : [...urls];
  const emit = (e: Parameters<NonNullable<TasksOptions['onEvent']>>[0]): void => {
    try {
      opts.onEvent?.(e);
    } catch {
      // a listener's failure is not the SDK's
    }
  };
  const connection = new FailoverConnection(list, defaultRpcLimits, emit, opts.name ?? 'espresso-tasks');
  const reporter = new Reporter(opts.reportTimeoutMs ?? 30_000);
  await connection.attach({ name: 'reports', up: (l) => reporter.up(l), down: () => reporter.down() });
  await connection.start();
  return new Tasks(connection, reporter, emit);
}
