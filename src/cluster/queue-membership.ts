// `espresso ctl grow NODE` / `shrink NODE`: add a node to, or remove it from, the replica set of every
// replicated queue (as `rabbitmq-queues grow/shrink`). Any node coordinates ('ctl.grow'/'ctl.shrink');
// each queue's leader changes its Raft group ('q.member.add'/'q.member.remove').
//
// Grow, per queue: NODE hosts the group first ('q.member.host': its bootstrap members are the
// replicas metadata names, not NODE), the leader adds NODE as a learner, waits until it has caught up
// (by log or snapshot) and promotes it, then metadata appends NODE to the replicas (last: it never
// campaigns as a preferred leader). Shrink, per queue: the leader removes NODE from the group
// (handing leadership away first if NODE leads), then metadata drops NODE and NODE's registry drops
// the group and its log. Raft before metadata both ways: a replica hosts a group with the replica
// set metadata has as bootstrap members and replays the log's membership changes over it, which
// gives the group's real membership only if metadata never names a change the log has not made.

import type { MetadataClient } from '../broker/metadata-client.js';
import { OperatingError, OperatingErrorCode, isOperatingError } from '../lib/errors.js';
import type { GroupId, NodeId } from '../lib/ids.js';
import { nodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import { listQueues, listVhosts, type QueueRecord } from '../model/index.js';
import { ConfChangeKind, type ConfChange, type GroupStatus, type Membership } from '../raft/index.js';
import { audited, caller } from './audit.js';
import type { GroupHost } from './group-host.js';
import { decodeJson, encodeJson } from './metadata-entries.js';
import type { QueueMesh } from './queue-service.js';
import type { ClusterRpc } from './rpc.js';

export const MembershipMethod = { grow: 'ctl.grow', shrink: 'ctl.shrink', host: 'q.member.host', add: 'q.member.add', remove: 'q.member.remove' } as const;

export interface QueueMembershipLimits {
  /** Queues changed at the same time by one grow or shrink. */
  readonly concurrency: number;
  /** One queue's whole change (metadata, learner catch-up, promotion) fails after this. */
  readonly queueTimeoutMs: number;
  /** A call to a queue's leader waits this long beyond the time it gave the leader (its answer or Timeout arrives). */
  readonly callGraceMs: number;
  /** The grown node's answer that it hosts the group (after a metadata read barrier at most). */
  readonly hostTimeoutMs: number;
  /** After a failed grow step, how long taking the half-added node out of the group may take. */
  readonly cleanupTimeoutMs: number;
  /** Pause between looks at a learner's progress, and between tries of a refused change. */
  readonly pollMs: number;
  /** Queues one request may touch (a bigger cluster narrows with --queue-pattern). */
  readonly queuesMax: number;
}

export const defaultQueueMembershipLimits: QueueMembershipLimits = {
  concurrency: 4, queueTimeoutMs: 60_000, callGraceMs: 2_000, hostTimeoutMs: 10_000, cleanupTimeoutMs: 5_000, pollMs: 50, queuesMax: 100_000,
};

export interface MembershipRequest {
  readonly node: string;
  readonly vhostPattern?: string;
  readonly queuePattern?: string;
}

export type MembershipOutcome = 'added' | 'removed' | 'skipped' | 'failed';

export interface QueueMembershipResult {
  readonly vhost: string;
  readonly name: string;
  readonly outcome: MembershipOutcome;
  readonly detail: string;
  /** The queue's Raft voters after the step, as its leader answered (empty when unknown). */
  readonly members: readonly string[];
}

export interface MembershipReport {
  readonly action: 'grow' | 'shrink';
  readonly node: string;
  readonly results: readonly QueueMembershipResult[];
  readonly failed: number;
  readonly summary: string;
}

export interface QueueMembershipDeps {
  readonly mesh: QueueMesh;
  readonly host: GroupHost;
  readonly rpc: ClusterRpc;
  readonly metadata: MetadataClient;
  readonly logger: Logger;
  /** The cluster's registered nodes (a grow/shrink of another id is refused); absent: not checked. */
  readonly nodes?: () => readonly NodeId[];
  /** The group of a queue (the registry's naming). */
  readonly groupOf: (vhost: string, name: string) => GroupId;
  /** Hosts the queue's group here ahead of metadata (a grow onto this node); false: no such queue. */
  readonly hostJoining: (vhost: string, name: string) => boolean;
  readonly limits?: Partial<QueueMembershipLimits>;
}

/** budgetMs, not a deadline: the nodes' clocks need not agree. */
interface MemberCall { readonly vhost: string; readonly name: string; readonly node: string; readonly budgetMs: number }
interface MemberAnswer { readonly voters: readonly string[]; readonly changed: boolean }

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Registers the coordinator ('ctl.grow', 'ctl.shrink') and the leader's half ('q.member.*'). */
export function serveQueueMembership(d: QueueMembershipDeps): void {
  const limits = { ...defaultQueueMembershipLimits, ...d.limits };
  const log = d.logger.child('queue-membership');
  d.rpc.handle(MembershipMethod.host, async (_from, p) => {
    const c = decodeJson<MemberCall>(p);
    return encodeJson(await hostHere(d, c.vhost, c.name));
  });
  d.rpc.handle(MembershipMethod.add, async (_from, p) => encodeJson(await addAsLeader(d, limits, decodeJson<MemberCall>(p), Date.now())));
  d.rpc.handle(MembershipMethod.remove, async (_from, p) => encodeJson(await removeAsLeader(d, limits, decodeJson<MemberCall>(p), Date.now())));
  for (const action of ['grow', 'shrink'] as const) {
    d.rpc.handle(MembershipMethod[action], async (from, p) => {
      const request = decodeJson<MembershipRequest>(p);
      return audited(d.logger.child('audit'), caller(d, from, action, { ...request }), async () => {
        const report = await changeEveryQueue(d, limits, action, request);
        log.info(`ctl ${action} done`, { node: report.node, summary: report.summary });
        return encodeJson(report);
      });
    });
  }
}

/** The coordinator: every matching replicated queue, `concurrency` at a time, each bounded in time. */
export async function changeEveryQueue(d: QueueMembershipDeps, limits: QueueMembershipLimits, action: 'grow' | 'shrink', req: MembershipRequest): Promise<MembershipReport> {
  const node = checkNode(d, req.node);
  const vhostRe = pattern(req.vhostPattern, '--vhost-pattern');
  const queueRe = pattern(req.queuePattern, '--queue-pattern');
  await d.metadata.sync();
  const todo: QueueRecord[] = [];
  for (const vhost of listVhosts(d.metadata.state)) {
    if (!vhostRe.test(vhost)) continue;
    for (const q of listQueues(d.metadata.state, vhost)) if (q.kind === 'replicated' && queueRe.test(q.name)) todo.push(q);
  }
  if (todo.length > limits.queuesMax) {
    throw new OperatingError(OperatingErrorCode.BadConfig, `${todo.length} queues match, above ${limits.queuesMax} per request: narrow with --vhost-pattern/--queue-pattern`);
  }
  todo.sort((a, b) => (a.vhost + '\u0000' + a.name < b.vhost + '\u0000' + b.name ? -1 : 1));
  const results: QueueMembershipResult[] = new Array(todo.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < todo.length; i = next++) {
      const q = todo[i]!;
      results[i] = await oneQueue(d, limits, action, q, node).catch((e: unknown) => failed(q, e));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limits.concurrency, todo.length)) }, worker));
  const count = (o: MembershipOutcome): number => results.filter((r) => r.outcome === o).length;
  const done = action === 'grow' ? 'added' : 'removed';
  const summary = `${action} ${node}: ${todo.length} queue(s), ${count(done)} ${done}, ${count('skipped')} skipped, ${count('failed')} failed`;
  return { action, node, results, failed: count('failed'), summary };
}

/** NODE's half of a grow: host the group; a declare this node has not applied yet is waited for once. */
async function hostHere(d: QueueMembershipDeps, vhost: string, name: string): Promise<boolean> {
  if (d.hostJoining(vhost, name)) return true;
  await d.metadata.sync();
  return d.hostJoining(vhost, name);
}

function checkNode(d: QueueMembershipDeps, given: string): NodeId {
  if (typeof given !== 'string' || !/^[^@\s]+$/.test(given)) throw new OperatingError(OperatingErrorCode.BadConfig, `a node id is needed, got '${String(given)}'`);
  const node = nodeId(given);
  const known = d.nodes?.();
  if (known !== undefined && !known.includes(node)) {
    throw new OperatingError(OperatingErrorCode.BadConfig, `node ${node} is not a node of this cluster (known: ${[...known].sort().join(',')})`);
  }
  return node;
}

function pattern(source: string | undefined, flag: string): RegExp {
  if (source === undefined || source === '') return /(?:)/;
  try {
    return new RegExp(source);
  } catch (e) {
    throw new OperatingError(OperatingErrorCode.BadConfig, `${flag}: not a regular expression: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function failed(q: QueueRecord, e: unknown): QueueMembershipResult {
  return { vhost: q.vhost, name: q.name, outcome: 'failed', detail: e instanceof Error ? e.message : String(e), members: [] };
}

/** One queue, within queueTimeoutMs: metadata and the leader's change in the order the header gives. */
async function oneQueue(d: QueueMembershipDeps, limits: QueueMembershipLimits, action: 'grow' | 'shrink', q: QueueRecord, node: NodeId): Promise<QueueMembershipResult> {
  const deadlineMs = Date.now() + limits.queueTimeoutMs;
  const result: ResultOf = (outcome, detail, members) => ({ vhost: q.vhost, name: q.name, outcome, detail, members });
  const call = { vhost: q.vhost, name: q.name, node };
  if (action === 'grow') return growOne(d, limits, q, call, deadlineMs, result);
  if (!q.replicas.includes(node)) return result('skipped', 'not a member', q.replicas);
  if (q.replicas.length === 1) return result('failed', 'its only replica: a queue keeps at least one', q.replicas);
  const a = await callLeader(d, limits, q, MembershipMethod.remove, call, deadlineMs);
  const now = d.metadata.state.vhosts.get(q.vhost)?.queues.get(q.name)?.record;
  const recorded = now !== undefined && now.replicas.includes(node);
  if (recorded) await setReplicas(d, now, now.replicas.filter((n) => n !== node));
  return result(a.changed || recorded ? 'removed' : 'skipped', a.changed || recorded ? 'removed from the group and the replica set' : 'not a member', a.voters);
}

type ResultOf = (outcome: MembershipOutcome, detail: string, members: readonly string[]) => QueueMembershipResult;

/** Grow one queue: NODE hosts the group, the leader adds and promotes it, then metadata names it. */
async function growOne(d: QueueMembershipDeps, limits: QueueMembershipLimits, q: QueueRecord, call: Omit<MemberCall, 'budgetMs'>, deadlineMs: number, result: ResultOf): Promise<QueueMembershipResult> {
  const node = nodeId(call.node);
  const recorded = q.replicas.includes(node);
  if (!recorded) {
    // It could not catch up: nothing is changed for a node that is not there.
    if (node !== d.host.nodeId && !d.host.transport.isUp(node)) return result('failed', `${node} is not connected to ${d.host.nodeId}; nothing changed`, q.replicas);
    const payload = encodeJson({ ...call, budgetMs: 0 } satisfies MemberCall);
    const hosted = node === d.host.nodeId ? await hostHere(d, q.vhost, q.name) : decodeJson<boolean>(await d.rpc.call(node, MembershipMethod.host, payload, limits.hostTimeoutMs));
    if (!hosted) return result('failed', `${node} could not host the queue's group`, q.replicas);
  }
  let a: MemberAnswer;
  try {
    a = await callLeader(d, limits, q, MembershipMethod.add, call, deadlineMs);
  } catch (e) {
    // Best effort: a learner metadata will not name is taken out again, so the leader stops feeding it.
    if (!recorded) await callLeader(d, limits, q, MembershipMethod.remove, call, Date.now() + limits.cleanupTimeoutMs).catch(() => undefined);
    throw e;
  }
  const now = d.metadata.state.vhosts.get(q.vhost)?.queues.get(q.name)?.record ?? q;
  if (!now.replicas.includes(node)) await setReplicas(d, now, [...now.replicas, node]);
  return result(a.changed || !recorded ? 'added' : 'skipped', a.changed || !recorded ? 'learner caught up and promoted' : 'already a member', a.voters);
}

async function setReplicas(d: QueueMembershipDeps, q: QueueRecord, replicas: readonly NodeId[]): Promise<void> {
  const r = await d.metadata.apply({ kind: 'setQueueReplicas', vhost: q.vhost, name: q.name, replicas });
  if (!r.ok) throw new OperatingError(OperatingErrorCode.BadConfig, `metadata refused the replica set ${replicas.join(',')}: ${r.replyText}`);
}

/**
 * Runs `method` where the queue's group is led: here, or over rpc, following NotLeader hints and
 * trying the queue's replicas in turn until the call's deadline (a leader may be moving).
 */
async function callLeader(d: QueueMembershipDeps, limits: QueueMembershipLimits, q: QueueRecord, method: string, base: Omit<MemberCall, 'budgetMs'>, deadlineMs: number): Promise<MemberAnswer> {
  const self = d.host.nodeId;
  let hint: NodeId | null = d.mesh.replica(q.vhost, q.name) !== undefined ? d.host.leader(d.groupOf(q.vhost, q.name)) : null;
  let last = 'no leader found';
  for (let attempt = 0; Date.now() < deadlineMs; attempt++) {
    const replicas = d.metadata.state.vhosts.get(q.vhost)?.queues.get(q.name)?.record.replicas ?? q.replicas;
    const target = hint ?? replicas[attempt % replicas.length]!;
    hint = null;
    try {
      const call: MemberCall = { ...base, budgetMs: Math.max(1, deadlineMs - Date.now()) };
      if (target === self) {
        return method === MembershipMethod.add ? await addAsLeader(d, limits, call, Date.now()) : await removeAsLeader(d, limits, call, Date.now());
      }
      if (!d.host.transport.isUp(target)) throw new OperatingError(OperatingErrorCode.Unreachable, `${target} is not connected`);
      // A little beyond the leader's own bound, so its answer (or its Timeout) arrives.
      return decodeJson<MemberAnswer>(await d.rpc.call(target, method, encodeJson(call), call.budgetMs + limits.callGraceMs));
    } catch (e) {
      if (!isOperatingError(e) || !retryable(e)) throw e;
      last = `${target}: ${e.message}`;
      const leader = e.code === OperatingErrorCode.NotLeader ? String(e.details['leader'] ?? '') : '';
      if (leader !== '' && leader !== target) {
        hint = nodeId(leader);
        continue;
      }
    }
    await sleep(limits.pollMs * 2);
  }
  throw new OperatingError(OperatingErrorCode.Timeout, `no leader of queue '${q.name}' did it in time (last: ${last})`);
}

function retryable(e: OperatingError): boolean {
  const c = e.code;
  return c === OperatingErrorCode.NotLeader || c === OperatingErrorCode.Unreachable || c === OperatingErrorCode.Timeout ||
    (c === OperatingErrorCode.Overloaded && e.details['reason'] !== 'no-majority');
}

/** The group's status here, where this node must lead it. */
function ledHere(d: QueueMembershipDeps, call: MemberCall): { id: GroupId; s: GroupStatus } {
  const id = d.groupOf(call.vhost, call.name);
  const s = d.mesh.replica(call.vhost, call.name) === undefined ? null : d.host.status(id);
  if (s === null || s.leader !== d.host.nodeId) {
    const leader = s?.leader ?? '';
    throw new OperatingError(OperatingErrorCode.NotLeader, `queue '${call.name}' is not led by ${d.host.nodeId}`, { leader, group: id });
  }
  return { id, s };
}

/** Leader: AddLearner, wait for the learner to reach the commit index, Promote. Idempotent. */
async function addAsLeader(d: QueueMembershipDeps, limits: QueueMembershipLimits, call: MemberCall, startMs: number): Promise<MemberAnswer> {
  const node = nodeId(call.node);
  const first = ledHere(d, call).s;
  if (first.membership.voters.includes(node)) return { voters: first.membership.voters, changed: false };
  const deadlineMs = startMs + Math.min(call.budgetMs, limits.queueTimeoutMs);
  await changeUntil(d, limits, call, deadlineMs, { kind: ConfChangeKind.AddLearner, node }, (m) => m.learners.includes(node) || m.voters.includes(node));
  // Promotion is refused (BadConfig) while the learner is behind: it is simply tried again.
  const m = await changeUntil(d, limits, call, deadlineMs, { kind: ConfChangeKind.Promote, node }, (m2) => m2.voters.includes(node), (s) => {
    const match = s.replicas.find((r) => r.node === node)?.match ?? 0;
    return match >= s.commit;
  });
  return { voters: m.voters, changed: true };
}

/**
 * Leader: Remove. If this node is the one removed it hands leadership to the most caught-up other
 * voter that is up and answers NotLeader naming it. Refused when the voters left would have no
 * live majority (the queue could commit nothing), or none would be left.
 */
async function removeAsLeader(d: QueueMembershipDeps, limits: QueueMembershipLimits, call: MemberCall, startMs: number): Promise<MemberAnswer> {
  const node = nodeId(call.node);
  const { id, s } = ledHere(d, call);
  const m = s.membership;
  if (!m.voters.includes(node) && !m.learners.includes(node)) return { voters: m.voters, changed: false };
  const remaining = m.voters.filter((v) => v !== node);
  const live = remaining.filter((v) => v === d.host.nodeId || d.host.transport.isUp(v));
  if (remaining.length === 0) throw new OperatingError(OperatingErrorCode.BadConfig, `${node} is the queue's only voter: a queue keeps at least one replica`);
  if (m.voters.includes(node) && live.length < Math.floor(remaining.length / 2) + 1) {
    throw new OperatingError(OperatingErrorCode.Overloaded, `removing ${node} would leave ${live.length} live of ${remaining.length} voters`, { group: id, reason: 'no-majority' });
  }
  if (node === d.host.nodeId) {
    const match = (n: NodeId): number => s.replicas.find((r) => r.node === n)?.match ?? 0;
    const to = live.filter((v) => v !== node).sort((a, b) => match(b) - match(a))[0];
    if (to !== undefined) {
      try {
        d.host.transferLeadership(id, to);
      } catch {
        // A transfer already under way: the coordinator asks again.
      }
    }
    throw new OperatingError(OperatingErrorCode.NotLeader, `${node} leads queue '${call.name}': leadership handed to ${to ?? '(nobody)'} first`, { leader: '', group: id });
  }
  const deadlineMs = startMs + Math.min(call.budgetMs, limits.queueTimeoutMs);
  const after = await changeUntil(d, limits, call, deadlineMs, { kind: ConfChangeKind.Remove, node }, (x) => !x.voters.includes(node) && !x.learners.includes(node));
  return { voters: after.voters, changed: true };
}

/**
 * Proposes `change` until `done` holds for the group's membership, while this node leads it:
 * retried while refused for now (another change in flight, a learner behind) until the deadline.
 * `ready` gates a try (the learner caught up).
 */
async function changeUntil(d: QueueMembershipDeps, limits: QueueMembershipLimits, call: MemberCall, deadlineMs: number, change: ConfChange, done: (m: Membership) => boolean, ready: (s: GroupStatus) => boolean = () => true): Promise<Membership> {
  let last = '';
  while (Date.now() < deadlineMs) {
    const { id, s } = ledHere(d, call);
    if (done(s.membership)) return s.membership;
    if (ready(s)) {
      try {
        await d.host.proposeConfChange(id, change);
        continue;
      } catch (e) {
        const again = isOperatingError(e, OperatingErrorCode.Overloaded) || isOperatingError(e, OperatingErrorCode.BadConfig);
        if (!again) throw e;
        last = e.message;
      }
    } else {
      const match = s.replicas.find((r) => r.node === change.node)?.match ?? 0;
      last = `${change.node} has ${match} of ${s.commit} entries`;
    }
    await sleep(limits.pollMs);
  }
  throw new OperatingError(OperatingErrorCode.Timeout, `queue '${call.name}': ${confName(change)} ${change.node} not done in time${last !== '' ? ` (${last})` : ''}`);
}

function confName(c: ConfChange): string {
  return c.kind === ConfChangeKind.AddLearner ? 'add learner' : c.kind === ConfChangeKind.Promote ? 'promote' : 'remove';
}
