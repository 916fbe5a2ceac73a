// One Raft group of task state (task-machine.ts) on the node's group host: proposes entries on
// the leader (forwarding them there over ClusterRpc from any other node), applies committed
// entries to this node's copy, answers reads after a barrier (everything the leader had committed
// when asked is applied here first), snapshots every `snapshotEveryEntries`, and runs the
// leader's sweep: dispatches what needs a holder and prunes what retention let go, with the time
// stamped by the leader into each entry. A node that does not host the group forwards reads too.

import { randomBytes } from 'node:crypto';
import type { AppliedEntry, GroupHost } from '../cluster/group-host.js';
import type { ClusterRpc } from '../cluster/rpc.js';
import { assert } from '../lib/assert.js';
import { isOperatingError, OperatingError, OperatingErrorCode } from '../lib/errors.js';
import { groupId, type GroupId, type LogIndex, type NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import {
  applyTask, createTaskState, dispatchDue, pruneDue, restoreTasks, snapshotTasks,
  type TaskEntry, type TaskResult, type TaskSnapshot, type TaskState,
} from './task-machine.js';

/** An entry as a caller hands it in: the leader stamps `at`. */
export type TaskProposal = TaskEntry extends infer E ? (E extends unknown ? Omit<E, 'at'> : never) : never;

interface Wrapped { o: string; s: number; e: TaskEntry }

export const taskGroupLimits = {
  snapshotEveryEntries: 2000,
  forwardTimeoutMs: 10_000,
  retryPauseMs: 50,
  sweepMs: 500,
  /** A dispatch whose message did not reach the work queue is tried again after this long. */
  redispatchMs: 10_000,
  /** Dispatches one sweep of one group proposes at most. */
  dispatchesPerSweepMax: 200,
} as const;

export const TaskMethod = {
  propose: 'task.propose',
  commit: 'task.commit',
  read: 'task.read',
} as const;

/** Puts `{id, dispatch}` in the task's work queue; resolves true once the queue holds it. */
export type Dispatcher = (task: { id: string; type: string; vhost: string }, dispatch: number) => Promise<boolean>;

export class TaskGroup {
  private current: TaskState = createTaskState();
  private appliedIndex = 0;
  private snapshotIndex = 0;
  private snapshotting: Promise<void> | undefined;
  private readonly origin = randomBytes(8).toString('hex');
  private seq = 0;
  private readonly results = new Map<number, TaskResult>();
  private readonly listeners = new Set<(e: TaskEntry, r: TaskResult) => void>();
  private readonly waiters = new Set<{ index: number; resolve: () => void }>();
  private closed = false;
  private dispatcher: Dispatcher | undefined;

  constructor(
    readonly id: GroupId,
    private readonly host: GroupHost,
    private readonly rpc: ClusterRpc,
    private readonly logger: Logger,
    readonly hosted: boolean,
  ) {}

  /** Hosts the group here (a member) or not (forwards everything to the leader). */
  start(members: readonly NodeId[], dispatcher?: Dispatcher): void {
    this.dispatcher = dispatcher;
    if (!this.hosted) return;
    this.host.createGroup(this.id, members, {
      apply: (e) => this.onApply(e),
      installSnapshot: (index, _term, data) => this.onInstallSnapshot(index, data),
    });
  }

  get state(): TaskState {
    return this.current;
  }

  leader(): NodeId | null {
    return this.host.leader(this.id);
  }

  isLeader(): boolean {
    return this.hosted && this.leader() === this.host.nodeId;
  }

  /** Called after each applied entry with its result (for event streams). */
  onChange(listener: (e: TaskEntry, r: TaskResult) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Commits `p` through the leader; the result as applied there (a JSON copy). */
  async propose(p: TaskProposal): Promise<TaskResult> {
    return await this.onLeader(TaskMethod.propose, p, () => this.proposeAsLeader(p));
  }

  /** `read` of this node's copy after a barrier; forwarded to the leader when not hosted here. */
  async read<T>(query: unknown, run: (s: TaskState) => T): Promise<T> {
    if (!this.hosted) return await this.forward<T>(this.leaderOrThrow(), TaskMethod.read, { g: this.id, q: query });
    const { i } = await this.onLeader<{ i: number }>(TaskMethod.commit, {}, () => Promise.resolve({ i: this.commitIndex() }));
    await this.waitApplied(i);
    return JSON.parse(JSON.stringify(run(this.current))) as T;
  }

  async proposeAsLeader(p: TaskProposal): Promise<TaskResult> {
    if (this.closed) throw new OperatingError(OperatingErrorCode.Closed, 'the node is shutting down');
    const seq = ++this.seq;
    const e = { ...p, at: Math.max(Date.now(), this.current.clock) } as TaskEntry;
    const data = Buffer.from(JSON.stringify({ o: this.origin, s: seq, e } satisfies Wrapped));
    try {
      await this.host.propose(this.id, data);
      const r = this.results.get(seq);
      assert(r !== undefined, `task entry ${seq} resolved without being applied`);
      // A new task is dispatched at once rather than at the next sweep.
      if (p.k === 'submit' && r.ok && this.dispatcher !== undefined) void this.dispatch(p.id, this.dispatcher);
      return JSON.parse(JSON.stringify(r)) as TaskResult;
    } finally {
      this.results.delete(seq);
    }
  }

  commitIndex(): number {
    return this.host.status(this.id)?.commit ?? 0;
  }

  /**
   * The leader's sweep (every sweepMs by the store): new dispatches for tasks that need a holder,
   * each followed by its message and a `dispatched` entry; a prune when a retention ran out.
   */
  async sweep(dispatcher: Dispatcher): Promise<void> {
    if (!this.isLeader() || this.closed) return;
    const now = Date.now();
    for (const id of dispatchDue(this.current, now, taskGroupLimits.redispatchMs, taskGroupLimits.dispatchesPerSweepMax)) {
      await this.dispatch(id, dispatcher);
    }
    if (pruneDue(this.current, now)) {
      const r = await this.proposeAsLeader({ k: 'prune' });
      if (r.ok && (r.pruned ?? 0) > 0) this.logger.info('finished tasks pruned', { group: this.id, pruned: r.pruned ?? 0 });
    }
  }

  /** On the leader: a new dispatch of task `id` and its message (a failure leaves it to the next sweep). */
  async dispatch(id: string, dispatcher: Dispatcher): Promise<void> {
    try {
      const r = await this.proposeAsLeader({ k: 'dispatch', id, redispatchMs: taskGroupLimits.redispatchMs });
      if (!r.ok || r.dispatch === undefined || r.task === undefined) return;
      if (await dispatcher(r.task, r.dispatch)) await this.proposeAsLeader({ k: 'dispatched', id, dispatch: r.dispatch });
    } catch (e) {
      if (!isOperatingError(e)) throw e;
      this.logger.debug('task dispatch deferred', { group: this.id, task: id, error: e.message });
    }
  }

  /** Serves the forwarded calls of this group (the store routes them by group id). */
  async serve(method: string, payload: { e?: TaskProposal; q?: unknown }, query: (s: TaskState, q: unknown) => unknown): Promise<unknown> {
    if (method === TaskMethod.read) return query(this.current, payload.q);
    this.requireLeader();
    if (method === TaskMethod.commit) return { i: this.commitIndex() };
    return await this.proposeAsLeader(payload.e!);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters) w.resolve();
    this.waiters.clear();
    await this.snapshotting;
  }

  // ---- forwarding ----

  private requireLeader(): void {
    if (this.closed) throw new OperatingError(OperatingErrorCode.Closed, 'the node is shutting down');
    if (this.isLeader()) return;
    const l = this.leader();
    throw new OperatingError(OperatingErrorCode.NotLeader, `not the leader of ${this.id}${l !== null ? `; try ${l}` : ''}`, { leader: l ?? '' });
  }

  private leaderOrThrow(): NodeId {
    const l = this.leader();
    if (l === null) throw new OperatingError(OperatingErrorCode.NotLeader, `${this.id}: no leader known here`, { leader: '' });
    return l;
  }

  /** Runs `local` on the leader, else calls it there; retries NotLeader/Unreachable until the deadline. */
  private async onLeader<T>(method: string, payload: unknown, local: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + taskGroupLimits.forwardTimeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      const leader = this.leader();
      try {
        if (leader !== null && leader === this.host.nodeId && this.hosted) return await local();
        if (leader !== null && leader !== this.host.nodeId) {
          const body = method === TaskMethod.propose ? { g: this.id, e: payload } : { g: this.id };
          return await this.forward<T>(leader, method, body, Math.max(1, deadline - Date.now()));
        }
      } catch (e) {
        if (!retriable(e) || this.closed) throw e;
        last = e;
      }
      await new Promise((r) => setTimeout(r, taskGroupLimits.retryPauseMs));
    }
    if (last instanceof Error) throw last;
    throw new OperatingError(OperatingErrorCode.NotLeader, `${this.id}: no leader within ${taskGroupLimits.forwardTimeoutMs} ms`, { leader: '' });
  }

  private async forward<T>(leader: NodeId, method: string, body: unknown, timeoutMs: number = taskGroupLimits.forwardTimeoutMs): Promise<T> {
    const answer = await this.rpc.call(leader, method, Buffer.from(JSON.stringify(body)), timeoutMs);
    return JSON.parse(Buffer.from(answer).toString('utf8')) as T;
  }

  private waitApplied(index: number): Promise<void> {
    if (this.appliedAt() >= index || this.closed) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = { index, resolve: () => { clearTimeout(timer); clearInterval(poll); resolve(); } };
      // A leader's no-op and config entries reach no apply callback: the host's applied index says.
      const poll = setInterval(() => {
        if (this.appliedAt() >= index) {
          this.waiters.delete(w);
          w.resolve();
        }
      }, 10);
      const timer = setTimeout(() => {
        clearInterval(poll);
        this.waiters.delete(w);
        reject(new OperatingError(OperatingErrorCode.Timeout, `${this.id}: entry ${index} not applied here in time`));
      }, taskGroupLimits.forwardTimeoutMs);
      this.waiters.add(w);
    });
  }

  private appliedAt(): number {
    return Math.max(this.appliedIndex, this.host.status(this.id)?.applied ?? 0);
  }

  // ---- the state machine (the group host's apply phase) ----

  private onApply(e: AppliedEntry): void {
    const w = JSON.parse(Buffer.from(e.data).toString('utf8')) as Wrapped;
    const r = applyTask(this.current, w.e);
    if (w.o === this.origin) this.results.set(w.s, r);
    this.appliedIndex = e.index;
    for (const l of this.listeners) l(w.e, r);
    for (const x of [...this.waiters]) {
      if (x.index > e.index) continue;
      this.waiters.delete(x);
      x.resolve();
    }
    if (this.appliedIndex - this.snapshotIndex >= taskGroupLimits.snapshotEveryEntries) this.snapshotSoon();
  }

  private onInstallSnapshot(index: LogIndex, data: Uint8Array): void {
    const s = JSON.parse(Buffer.from(data).toString('utf8')) as TaskSnapshot;
    assert(s.v === 1, `task snapshot version ${String(s.v)} is not known`);
    this.current = restoreTasks(s);
    this.appliedIndex = index;
    this.snapshotIndex = index;
  }

  private snapshotSoon(): void {
    if (this.snapshotting !== undefined || this.closed) return;
    this.snapshotting = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.saveSnapshot())
      .finally(() => {
        this.snapshotting = undefined;
      });
  }

  private async saveSnapshot(): Promise<void> {
    const status = this.host.status(this.id);
    const index = this.appliedIndex as LogIndex;
    if (this.closed || status === null || status.applied < index) return;
    try {
      await this.host.saveSnapshot(this.id, index, Buffer.from(JSON.stringify(snapshotTasks(this.current))));
      this.snapshotIndex = index;
    } catch (e) {
      if (!(e instanceof OperatingError)) throw e;
      this.logger.debug('task snapshot deferred', { group: this.id, index, error: e.message });
    }
  }
}

function retriable(e: unknown): boolean {
  return isOperatingError(e, OperatingErrorCode.NotLeader) || isOperatingError(e, OperatingErrorCode.Unreachable) || isOperatingError(e, OperatingErrorCode.Overloaded);
}

export function taskGroupId(n: number): GroupId {
  return groupId(`tasks.${n}`);
}

export const typesGroupId: GroupId = groupId('tasks.types');
