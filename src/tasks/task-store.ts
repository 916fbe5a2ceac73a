// The node's durable-task store: the `tasks.types` group (definitions) and `groupCount` task
// groups (records, a task placed by hashing its id), all hosted on the node's group host over the
// metadata group's bootstrap voters (another node forwards to their leaders); the rpc methods the
// leaders serve; the leaders' sweep timer; and the read queries, one pure function for both the
// local and the forwarded path.

import type { GroupHost } from '../cluster/group-host.js';
import type { ClusterRpc } from '../cluster/rpc.js';
import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import type { NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import { TaskGroup, TaskMethod, taskGroupId, taskGroupLimits, typesGroupId, type Dispatcher, type TaskProposal } from './task-group.js';
import { isFinished, typeKey, type TaskRecord, type TaskResult, type TaskState, type TaskStatus, type TaskType } from './task-machine.js';

export const defaultTaskGroupCount = 4;

export type TaskQuery =
  | { kind: 'get'; id: string }
  | { kind: 'list'; vhost?: string; type?: string; status?: TaskStatus; after?: string; limit: number }
  | { kind: 'type'; vhost: string; name: string }
  | { kind: 'types'; vhost?: string };

export interface TaskPage {
  readonly items: TaskRecord[];
  /** Cursor for the next page (`after=`), null at the end. */
  readonly next: string | null;
}

export function runQuery(s: TaskState, q: TaskQuery): unknown {
  switch (q.kind) {
    case 'get': return s.tasks.get(q.id) ?? null;
    case 'type': return s.types.get(typeKey(q.vhost, q.name)) ?? null;
    case 'types': return [...s.types.values()].filter((t) => q.vhost === undefined || t.vhost === q.vhost);
    case 'list': return listPage([...s.tasks.values()], q);
  }
}

function cursorOf(t: TaskRecord): string {
  return `${t.createdAt}_${t.id}`;
}

function listPage(all: TaskRecord[], q: Extract<TaskQuery, { kind: 'list' }>): TaskPage {
  const items = all
    .filter((t) => (q.vhost === undefined || t.vhost === q.vhost) && (q.type === undefined || t.type === q.type) && (q.status === undefined || t.status === q.status))
    .filter((t) => q.after === undefined || compareCursor(cursorOf(t), q.after) > 0)
    .sort((a, b) => compareCursor(cursorOf(a), cursorOf(b)));
  const page = items.slice(0, q.limit);
  return { items: page, next: items.length > q.limit && page.length > 0 ? cursorOf(page[page.length - 1]!) : null };
}

function compareCursor(a: string, b: string): number {
  const [at, aid] = splitCursor(a);
  const [bt, bid] = splitCursor(b);
  return at !== bt ? at - bt : aid < bid ? -1 : aid > bid ? 1 : 0;
}

function splitCursor(c: string): [number, string] {
  const i = c.indexOf('_');
  return i < 0 ? [0, c] : [Number(c.slice(0, i)) || 0, c.slice(i + 1)];
}

/** FNV-1a of the id: which task group holds it. */
export function groupIndexOf(id: string, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % count;
}

export interface TaskStoreOptions {
  groupHost: GroupHost;
  rpc: ClusterRpc;
  /** The metadata group's bootstrap voters: the members of every task group. */
  members: readonly NodeId[];
  logger: Logger;
  groupCount?: number;
}

export class TaskStore {
  readonly types: TaskGroup;
  readonly groups: readonly TaskGroup[];
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private sweeping = false;

  constructor(private readonly o: TaskStoreOptions) {
    const hosted = o.members.includes(o.groupHost.nodeId);
    const logger = o.logger.child('tasks');
    this.types = new TaskGroup(typesGroupId, o.groupHost, o.rpc, logger, hosted);
    const n = o.groupCount ?? defaultTaskGroupCount;
    this.groups = Array.from({ length: n }, (_, i) => new TaskGroup(taskGroupId(i), o.groupHost, o.rpc, logger, hosted));
    for (const method of Object.values(TaskMethod)) {
      o.rpc.handle(method, async (_from, payload) => {
        const p = JSON.parse(Buffer.from(payload).toString('utf8')) as { g: string; e?: TaskProposal; q?: TaskQuery };
        const g = this.byGroupId(p.g);
        const answer = await g.serve(method, p, (s, q) => runQuery(s, q as TaskQuery));
        return Buffer.from(JSON.stringify(answer ?? null));
      });
    }
  }

  /** Hosts the groups (on members) and starts the leaders' sweep. */
  start(dispatcher: Dispatcher): void {
    this.types.start(this.o.members);
    for (const g of this.groups) g.start(this.o.members, dispatcher);
    this.sweepTimer = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = true;
      void Promise.all(this.groups.map((g) => g.sweep(dispatcher))).catch((e: unknown) => {
        this.o.logger.warn('task sweep failed', { error: e instanceof Error ? e.message : String(e) });
      }).finally(() => {
        this.sweeping = false;
      });
    }, taskGroupLimits.sweepMs);
  }

  groupOf(id: string): TaskGroup {
    return this.groups[groupIndexOf(id, this.groups.length)]!;
  }

  propose(id: string, p: TaskProposal): Promise<TaskResult> {
    return this.groupOf(id).propose(p);
  }

  get(id: string): Promise<TaskRecord | null> {
    const q: TaskQuery = { kind: 'get', id };
    return this.groupOf(id).read(q, (s) => runQuery(s, q) as TaskRecord | null);
  }

  /**
   * A type from this node's copy when it has it (as routing reads the metadata copy); not found
   * here, after a barrier (defined on another node a moment ago?) or from the leader.
   */
  async getType(vhost: string, name: string): Promise<TaskType | null> {
    const q: TaskQuery = { kind: 'type', vhost, name };
    if (this.types.hosted) {
      const local = runQuery(this.types.state, q) as TaskType | null;
      if (local !== null) return local;
    }
    return await this.types.read(q, (s) => runQuery(s, q) as TaskType | null);
  }

  listTypes(vhost?: string): Promise<TaskType[]> {
    const q: TaskQuery = vhost === undefined ? { kind: 'types' } : { kind: 'types', vhost };
    return this.types.read(q, (s) => runQuery(s, q) as TaskType[]);
  }

  /** One page over every group, in (created, id) order. */
  async list(q: Extract<TaskQuery, { kind: 'list' }>): Promise<TaskPage> {
    const pages = await Promise.all(this.groups.map((g) => g.read(q, (s) => runQuery(s, q) as TaskPage)));
    return listPage(pages.flatMap((p) => p.items), q);
  }

  /** Counts per status over every group (for the CLI and benches). */
  async counts(): Promise<Record<TaskStatus, number>> {
    const out: Record<TaskStatus, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
    for (const g of this.groups) for (const t of g.state.tasks.values()) out[t.status]++;
    return out;
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.types.close();
    for (const g of this.groups) await g.close();
  }

  private byGroupId(id: string): TaskGroup {
    if (id === this.types.id) return this.types;
    const g = this.groups.find((x) => x.id === id);
    if (g === undefined) throw new OperatingError(OperatingErrorCode.BadConfig, `no task group '${id}' on this node`);
    return g;
  }
}

export { isFinished };
