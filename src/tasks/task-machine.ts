// The durable-task state machine: task types and task records as a Raft group's state,
// `applyTask(state, entry) -> result`, pure (no clock: every entry carries the time its leader
// stamped, and the state's clock only moves forward with them).
//
// Design (issue 16). Records live in replicated state, never in one node's memory: a fixed number
// of task groups (`tasks.0` .. `tasks.N-1`, placed by hashing the task id) plus one `tasks.types`
// group for the definitions, all Raft groups of the cluster's group host over the metadata
// group's bootstrap voters (task-store.ts). Every change is an entry of this file's `TaskEntry`.
//
// Ownership and failover: a task becomes work by a *dispatch* (an entry numbering it d), after
// which the dispatching node puts `{id, d}` in the type's durable replicated work queue
// `espresso.tasks.TYPE`. A worker holds a task by holding that message through its AMQP consumer
// and *claims* it with d: a claim of the current dispatch always wins (the queue hands a message
// to one holder at a time, so a second claim of d means the first holder lost it: its connection,
// channel or node went) and opens a new attempt whose number fences every later write; a claim of
// an older dispatch is stale. A hung holder is released by its lease: the leader's sweep proposes
// a new dispatch once `leaseUntil` (from the log's time, extended by each write of the owner)
// passed, which makes the hung holder's message stale and its writes fenced.
//
// Steps: `stepDone` commits a step's result before the SDK runs the next; a claim answers the
// finished steps with their results, so after a takeover a finished step is never run again.
// Retention: `prune` (proposed by the leader's sweep) drops finished tasks whose retention ran
// out at the entry's time; tasks that are queued or running are never pruned.

export type TaskStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface TaskError {
  readonly message: string;
  readonly details?: unknown;
  readonly at: number;
}

export interface TaskType {
  readonly name: string;
  readonly vhost: string;
  /** JSON schema the input must satisfy (task-schema.ts subset); null accepts any JSON. */
  readonly schema: unknown;
  readonly maxAttempts: number;
  readonly retentionMs: number;
  /** A running attempt with no write from its owner for this long is released. */
  readonly leaseMs: number;
  readonly definedAt: number;
  readonly updatedAt: number;
}

export interface TaskStep {
  readonly name: string;
  status: 'running' | 'succeeded';
  /** The attempt that started it (and, once succeeded, finished it). */
  attempt: number;
  startedAt: number;
  finishedAt: number | null;
  detail: unknown;
  /** The saved result of a succeeded step (what ctx.step returns after a takeover). */
  result?: unknown;
}

export interface TaskAttempt {
  readonly n: number;
  readonly worker: string;
  readonly node: string;
  readonly startedAt: number;
  endedAt: number | null;
  error: TaskError | null;
}

export interface TaskRecord {
  readonly id: string;
  readonly type: string;
  readonly vhost: string;
  readonly input: unknown;
  readonly submittedBy: string;
  status: TaskStatus;
  readonly maxAttempts: number;
  readonly retentionMs: number;
  readonly leaseMs: number;
  attempts: TaskAttempt[];
  owner: { worker: string; node: string } | null;
  steps: TaskStep[];
  result?: unknown;
  error: TaskError | null;
  readonly createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  /** Number of the current dispatch (0: none yet). */
  dispatch: number;
  dispatchedAt: number;
  /** The current dispatch's message is in the work queue (a `dispatched` entry came). */
  dispatchConfirmed: boolean;
  leaseUntil: number | null;
  cancelRequested: boolean;
}

export interface TaskState {
  /** The latest time any entry carried (ms since the epoch, the leaders' clocks, never decreasing). */
  clock: number;
  readonly tasks: Map<string, TaskRecord>;
  /** Key: `${vhost}\u0000${name}`. */
  readonly types: Map<string, TaskType>;
}

interface Stamped {
  /** The proposing leader's wall clock when it proposed (the state uses max(at, clock)). */
  readonly at: number;
}

export type TaskEntry = Stamped & (
  | { readonly k: 'define'; readonly type: Omit<TaskType, 'definedAt' | 'updatedAt'> }
  | { readonly k: 'submit'; readonly id: string; readonly type: string; readonly vhost: string; readonly input: unknown; readonly user: string;
      readonly maxAttempts: number; readonly retentionMs: number; readonly leaseMs: number }
  | { readonly k: 'dispatch'; readonly id: string; readonly redispatchMs: number }
  | { readonly k: 'dispatched'; readonly id: string; readonly dispatch: number }
  | { readonly k: 'claim'; readonly id: string; readonly dispatch: number; readonly worker: string; readonly node: string }
  | { readonly k: 'stepStart'; readonly id: string; readonly attempt: number; readonly name: string; readonly detail?: unknown }
  | { readonly k: 'stepDone'; readonly id: string; readonly attempt: number; readonly name: string; readonly result: unknown; readonly detail?: unknown }
  | { readonly k: 'heartbeat'; readonly id: string; readonly attempt: number; readonly detail?: unknown }
  | { readonly k: 'complete'; readonly id: string; readonly attempt: number; readonly result: unknown }
  | { readonly k: 'fail'; readonly id: string; readonly attempt: number; readonly message: string; readonly details?: unknown }
  | { readonly k: 'cancel'; readonly id: string; readonly user: string }
  | { readonly k: 'prune' }
);

/** Why a write was refused: the worker stops (and acks its message) on every one. */
export type Refusal = 'unknown' | 'stale' | 'fenced' | 'finished' | 'cancelled' | 'exists' | 'not-running';

export type TaskResult =
  | { readonly ok: true; readonly task?: TaskRecord; readonly dispatch?: number; readonly pruned?: number; readonly type?: TaskType }
  | { readonly ok: false; readonly refusal: Refusal; readonly message: string; readonly task?: TaskRecord };

export function createTaskState(): TaskState {
  return { clock: 0, tasks: new Map(), types: new Map() };
}

export function typeKey(vhost: string, name: string): string {
  return `${vhost}\u0000${name}`;
}

export function isFinished(s: TaskStatus): boolean {
  return s === 'succeeded' || s === 'failed' || s === 'cancelled';
}

/** Applies one committed entry; the result goes back to its proposer. */
export function applyTask(state: TaskState, e: TaskEntry): TaskResult {
  state.clock = Math.max(state.clock, e.at);
  const now = state.clock;
  switch (e.k) {
    case 'define': return define(state, e.type, now);
    case 'submit': return submit(state, e, now);
    case 'prune': return { ok: true, pruned: prune(state, now) };
    default: break;
  }
  const t = state.tasks.get(e.id);
  if (t === undefined) return refuse('unknown', `no task '${e.id}'`);
  switch (e.k) {
    case 'dispatch': return dispatch(t, e.redispatchMs, now);
    case 'dispatched':
      if (e.dispatch === t.dispatch) t.dispatchConfirmed = true;
      return { ok: true, task: t };
    case 'claim': return claim(t, e, now);
    case 'cancel': return cancel(t, now);
    default: return ownerWrite(t, e, now);
  }
}

function refuse(refusal: Refusal, message: string, task?: TaskRecord): TaskResult {
  return task === undefined ? { ok: false, refusal, message } : { ok: false, refusal, message, task };
}

function define(state: TaskState, type: Omit<TaskType, 'definedAt' | 'updatedAt'>, now: number): TaskResult {
  const key = typeKey(type.vhost, type.name);
  const old = state.types.get(key);
  const t: TaskType = { ...type, definedAt: old?.definedAt ?? now, updatedAt: now };
  state.types.set(key, t);
  return { ok: true, type: t };
}

function submit(state: TaskState, e: Extract<TaskEntry, { k: 'submit' }>, now: number): TaskResult {
  const old = state.tasks.get(e.id);
  if (old !== undefined) return refuse('exists', `task '${e.id}' exists`, old);
  const t: TaskRecord = {
    id: e.id, type: e.type, vhost: e.vhost, input: e.input, submittedBy: e.user, status: 'queued',
    maxAttempts: e.maxAttempts, retentionMs: e.retentionMs, leaseMs: e.leaseMs,
    attempts: [], owner: null, steps: [], error: null, createdAt: now, updatedAt: now, finishedAt: null,
    dispatch: 0, dispatchedAt: 0, dispatchConfirmed: false, leaseUntil: null, cancelRequested: false,
  };
  state.tasks.set(e.id, t);
  return { ok: true, task: t };
}

/**
 * A new dispatch number, when the task needs one: never dispatched; queued with an unconfirmed
 * dispatch older than `redispatchMs` (its message may never have reached the queue); running with
 * its lease run out (the holder hung: the current attempt ends with that error).
 */
function dispatch(t: TaskRecord, redispatchMs: number, now: number): TaskResult {
  if (isFinished(t.status)) return refuse('finished', `task '${t.id}' is ${t.status}`, t);
  if (t.status === 'queued' && t.dispatch > 0 && (t.dispatchConfirmed || now - t.dispatchedAt < redispatchMs)) {
    return refuse('not-running', `task '${t.id}' has dispatch ${t.dispatch} in flight`, t);
  }
  if (t.status === 'running') {
    if (t.leaseUntil === null || now < t.leaseUntil) return refuse('not-running', `task '${t.id}' is running under its lease`, t);
    const owner = t.owner;
    endAttempt(t, { message: `lease expired: no word from worker '${owner?.worker ?? '?'}' on node '${owner?.node ?? '?'}' for ${t.leaseMs} ms`, at: now }, now);
    if (exhausted(t, now)) return { ok: true, task: t };
    t.status = 'queued';
  }
  t.dispatch++;
  t.dispatchedAt = now;
  t.dispatchConfirmed = false;
  t.updatedAt = now;
  return { ok: true, task: t, dispatch: t.dispatch };
}

function claim(t: TaskRecord, e: Extract<TaskEntry, { k: 'claim' }>, now: number): TaskResult {
  if (isFinished(t.status)) return refuse('finished', `task '${t.id}' is ${t.status}`, t);
  if (e.dispatch !== t.dispatch) return refuse('stale', `dispatch ${e.dispatch} of task '${t.id}' was replaced by ${t.dispatch}`, t);
  if (t.status === 'running') {
    // The same message held again: its previous holder is gone (connection, channel or node).
    const prev = t.owner;
    endAttempt(t, { message: `worker '${prev?.worker ?? '?'}' on node '${prev?.node ?? '?'}' lost the task (its delivery returned to the queue)`, at: now }, now);
  }
  if (exhausted(t, now)) return refuse('finished', `task '${t.id}' failed: ${t.maxAttempts} attempts used`, t);
  t.attempts.push({ n: t.attempts.length + 1, worker: e.worker, node: e.node, startedAt: now, endedAt: null, error: null });
  t.owner = { worker: e.worker, node: e.node };
  t.status = 'running';
  t.leaseUntil = now + t.leaseMs;
  t.dispatchConfirmed = true; // a holder has it: no re-dispatch while the lease holds
  t.updatedAt = now;
  return { ok: true, task: t };
}

/** Fails the task when every attempt is used; true when it did. */
function exhausted(t: TaskRecord, now: number): boolean {
  if (t.attempts.length < t.maxAttempts) return false;
  const last = t.attempts[t.attempts.length - 1];
  finish(t, 'failed', now);
  t.error = { message: `all ${t.maxAttempts} attempts failed; the last: ${last?.error?.message ?? 'unknown'}`, details: { attempts: t.attempts.map((a) => a.error) }, at: now };
  return true;
}

function endAttempt(t: TaskRecord, error: TaskError | null, now: number): void {
  const a = t.attempts[t.attempts.length - 1];
  if (a !== undefined && a.endedAt === null) {
    a.endedAt = now;
    a.error = error;
  }
  t.owner = null;
  t.leaseUntil = null;
  // A step the lost attempt had started is open again for the next one.
  t.steps = t.steps.filter((s) => s.status === 'succeeded');
}

function finish(t: TaskRecord, status: 'succeeded' | 'failed' | 'cancelled', now: number): void {
  t.status = status;
  t.finishedAt = now;
  t.updatedAt = now;
  t.owner = null;
  t.leaseUntil = null;
}

function cancel(t: TaskRecord, now: number): TaskResult {
  if (isFinished(t.status)) return refuse('finished', `task '${t.id}' is already ${t.status}`, t);
  if (t.status === 'running') endAttempt(t, { message: 'cancelled while running', at: now }, now);
  t.cancelRequested = true;
  finish(t, 'cancelled', now);
  return { ok: true, task: t };
}

type OwnerEntry = Extract<TaskEntry, { k: 'stepStart' | 'stepDone' | 'heartbeat' | 'complete' | 'fail' }>;

/** A write of the current owner: refused unless the task runs under this attempt. */
function ownerWrite(t: TaskRecord, e: OwnerEntry, now: number): TaskResult {
  if (t.status === 'cancelled') return refuse('cancelled', `task '${t.id}' was cancelled`, t);
  if (isFinished(t.status)) return refuse('finished', `task '${t.id}' is ${t.status}`, t);
  if (t.status !== 'running' || e.attempt !== t.attempts.length) {
    return refuse('fenced', `attempt ${e.attempt} of task '${t.id}' no longer owns it (attempt ${t.attempts.length}, ${t.status})`, t);
  }
  t.updatedAt = now;
  t.leaseUntil = now + t.leaseMs;
  switch (e.k) {
    case 'stepStart': stepStart(t, e, now); break;
    case 'stepDone': stepDone(t, e, now); break;
    case 'heartbeat': {
      const open = t.steps.find((s) => s.status === 'running');
      if (open !== undefined && e.detail !== undefined) open.detail = e.detail;
      break;
    }
    case 'complete':
      endAttempt(t, null, now);
      t.result = e.result;
      finish(t, 'succeeded', now);
      break;
    case 'fail': {
      const error: TaskError = e.details === undefined ? { message: e.message, at: now } : { message: e.message, details: e.details, at: now };
      endAttempt(t, error, now);
      if (!exhausted(t, now)) t.status = 'queued';
      break;
    }
  }
  return { ok: true, task: t };
}

function stepStart(t: TaskRecord, e: Extract<TaskEntry, { k: 'stepStart' }>, now: number): void {
  const s = t.steps.find((x) => x.name === e.name);
  if (s?.status === 'succeeded') return;
  if (s !== undefined) {
    s.attempt = e.attempt;
    s.startedAt = now;
    s.detail = e.detail ?? null;
    return;
  }
  t.steps.push({ name: e.name, status: 'running', attempt: e.attempt, startedAt: now, finishedAt: null, detail: e.detail ?? null });
}

function stepDone(t: TaskRecord, e: Extract<TaskEntry, { k: 'stepDone' }>, now: number): void {
  let s = t.steps.find((x) => x.name === e.name);
  if (s?.status === 'succeeded') return; // committed before: the first result stands
  if (s === undefined) {
    s = { name: e.name, status: 'running', attempt: e.attempt, startedAt: now, finishedAt: null, detail: null };
    t.steps.push(s);
  }
  s.status = 'succeeded';
  s.attempt = e.attempt;
  s.finishedAt = now;
  s.result = e.result;
  if (e.detail !== undefined) s.detail = e.detail;
}

/** Drops finished tasks whose retention ran out; queued and running tasks stay whatever their age. */
function prune(state: TaskState, now: number): number {
  let n = 0;
  for (const [id, t] of state.tasks) {
    if (t.finishedAt === null || !isFinished(t.status) || t.finishedAt + t.retentionMs > now) continue;
    state.tasks.delete(id);
    n++;
  }
  return n;
}

/** Whether a prune entry now would drop anything (so the sweep proposes none on an idle group). */
export function pruneDue(state: TaskState, now: number): boolean {
  for (const t of state.tasks.values()) if (t.finishedAt !== null && t.finishedAt + t.retentionMs <= now) return true;
  return false;
}

/** What the leader's sweep should dispatch at `now` (never dispatched, unconfirmed too long, lease out). */
export function dispatchDue(state: TaskState, now: number, redispatchMs: number, max: number): string[] {
  const out: string[] = [];
  for (const t of state.tasks.values()) {
    if (out.length >= max) break;
    if (t.status === 'queued' && (t.dispatch === 0 || (!t.dispatchConfirmed && now - t.dispatchedAt >= redispatchMs))) out.push(t.id);
    else if (t.status === 'running' && t.leaseUntil !== null && now >= t.leaseUntil) out.push(t.id);
  }
  return out;
}

export interface TaskSnapshot {
  readonly v: 1;
  readonly clock: number;
  readonly tasks: TaskRecord[];
  readonly types: TaskType[];
}

export function snapshotTasks(state: TaskState): TaskSnapshot {
  return { v: 1, clock: state.clock, tasks: [...state.tasks.values()], types: [...state.types.values()] };
}

export function restoreTasks(s: TaskSnapshot): TaskState {
  return {
    clock: s.clock,
    tasks: new Map(s.tasks.map((t) => [t.id, t])),
    types: new Map(s.types.map((t) => [typeKey(t.vhost, t.name), t])),
  };
}

/** The record as callers see it (internal dispatch bookkeeping left out). */
export function publicRecord(t: TaskRecord): Record<string, unknown> {
  const { dispatch: _d, dispatchedAt: _da, dispatchConfirmed: _dc, cancelRequested: _cr, ...rest } = t;
  return rest;
}
