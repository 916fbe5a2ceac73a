// Rebuilding a group whose log this node found damaged, from its peers, the Raft-safe way: the
// group's leader removes this node, re-adds it as a learner, the learner catches up by log or
// snapshot, then the leader promotes it back to voter. Both halves live here: the handlers every
// node serves (they act only where the node leads the group) and the driver on the damaged node.
//
// Why remove first: the leader's progress for this node still records entries the damaged log
// lost, so it would never resend them; a fresh learner starts from match 0. The leader refuses
// when removing the node would leave fewer live voters than a majority of the rest (the group
// could then commit nothing until it is back): the driver retries with backoff.

import { OperatingError, OperatingErrorCode, isOperatingError } from '../lib/errors.js';
import type { GroupId, LogIndex, NodeId } from '../lib/ids.js';
import { groupId, nodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import { ConfChangeKind, type ConfChange, type Membership } from '../raft/index.js';
import type { GroupHost, GroupToRepair } from './group-host.js';
import type { ClusterRpc } from './rpc.js';
import { protoCodec } from '../transport/index.js';

export const RepairMethod = { rejoin: 'group.repair.rejoin', promote: 'group.repair.promote' } as const;

export interface GroupRepairLimits {
  /** How often the driver looks for groups to rebuild. */
  readonly scanIntervalMs: number;
  /** Rounds over the known peers before a phase gives up (logged) and pauses for restartPauseMs. */
  readonly attemptsMax: number;
  readonly backoffFirstMs: number;
  readonly backoffMaxMs: number;
  /** After giving up, the next try starts this much later (the cluster may heal meanwhile). */
  readonly restartPauseMs: number;
  readonly callTimeoutMs: number;
}

export const defaultGroupRepairLimits: GroupRepairLimits = {
  scanIntervalMs: 200, attemptsMax: 40, backoffFirstMs: 100, backoffMaxMs: 3_000, restartPauseMs: 30_000, callTimeoutMs: 10_000,
};

interface RepairRequest { readonly group: string }
interface RejoinAnswer { readonly addedAt: number }

// A cold path (once per damaged replica): codecs loaded from proto/cluster.proto.
const repairRequest = protoCodec<RepairRequest>('espresso.cluster.v1.RepairRequest');
const rejoinAnswer = protoCodec<RejoinAnswer>('espresso.cluster.v1.RejoinAnswer');

/** Serves the leader's half: call once per node with its rpc (every node may lead some group). */
export function serveGroupRepair(host: GroupHost, rpc: ClusterRpc, logger: Logger): void {
  const log = logger.child('group-repair');
  rpc.handle(RepairMethod.rejoin, async (from, payload) => {
    const id = groupId(repairRequest.decode(payload).group);
    const s = leaderStatus(host, id);
    const remaining = s.membership.voters.filter((v) => v !== from);
    if (s.membership.voters.includes(from)) {
      const live = remaining.filter((v) => v === host.nodeId || host.transport.isUp(v)).length;
      const majority = Math.floor(remaining.length / 2) + 1;
      if (remaining.length === 0 || live < majority) {
        log.warn('group repair refused: removing the node would leave no majority of live voters', { group: id, node: from, voters: s.membership.voters.join(','), live });
        throw new OperatingError(OperatingErrorCode.Overloaded, `group ${id}: removing ${from} would leave ${live} live of ${remaining.length} voters; retry later`, { group: id, reason: 'no-majority' });
      }
    }
    // Always removed first, even as a learner: its progress may predate the damage.
    if (s.membership.voters.includes(from) || s.membership.learners.includes(from)) {
      await changeSoon(host, id, { kind: ConfChangeKind.Remove, node: from }, (m) => !m.voters.includes(from) && !m.learners.includes(from));
    }
    const index = await changeSoon(host, id, { kind: ConfChangeKind.AddLearner, node: from }, (m) => m.learners.includes(from));
    log.info('group repair: damaged replica removed and re-added as a learner', { group: id, node: from, addedAt: index });
    return rejoinAnswer.encode({ addedAt: index });
  });
  rpc.handle(RepairMethod.promote, async (from, payload) => {
    const id = groupId(repairRequest.decode(payload).group);
    const s = leaderStatus(host, id);
    if (s.membership.voters.includes(from)) return new Uint8Array(0);
    if (!s.membership.learners.includes(from)) {
      // Its AddLearner was lost to a leader change (it was answered before being committed): add it
      // again; the node's abstention holds until a promotion after this, so it stays safe.
      const index = await changeSoon(host, id, { kind: ConfChangeKind.AddLearner, node: from }, (m) => m.learners.includes(from));
      throw new OperatingError(OperatingErrorCode.Overloaded, `group ${id}: ${from} was not a learner; added again at ${index}, catch up first`, { group: id });
    }
    // Raft refuses (BadConfig) while the learner is still behind: the driver asks again.
    const { index } = await host.proposeConfChange(id, { kind: ConfChangeKind.Promote, node: from });
    log.info('group repair: rebuilt replica promoted to voter', { group: id, node: from, index });
    return new Uint8Array(0);
  });
}

/**
 * Proposes `change`, retrying while another change is in flight (the metadata group adds and
 * promotes members by itself too); the index of the change, or the log's end once `done` holds
 * (someone else made it: any index between that change and the next one serves the caller).
 */
async function changeSoon(host: GroupHost, id: GroupId, change: ConfChange, done: (m: Membership) => boolean): Promise<LogIndex> {
  const deadline = Date.now() + changeRetryMs;
  for (;;) {
    const s = leaderStatus(host, id);
    if (done(s.membership)) return s.lastIndex as LogIndex;
    try {
      return (await host.proposeConfChange(id, change)).index;
    } catch (e) {
      const retry = isOperatingError(e, OperatingErrorCode.Overloaded) || isOperatingError(e, OperatingErrorCode.BadConfig);
      if (!retry || Date.now() >= deadline) throw e;
    }
    await new Promise((resolve) => setTimeout(resolve, changeRetryPauseMs));
  }
}

/** How long the leader retries one membership change of a repair, and the pause between tries. */
const changeRetryMs = 5_000;
const changeRetryPauseMs = 50;

function leaderStatus(host: GroupHost, id: GroupId): NonNullable<ReturnType<GroupHost['status']>> {
  const s = host.status(id);
  if (s === null || s.leader !== host.nodeId) {
    const hint = s?.leader ?? '';
    throw new OperatingError(OperatingErrorCode.NotLeader, `not the leader of group ${id}${hint !== '' ? `; try ${hint}` : ''}`, { group: id, leader: hint });
  }
  return s;
}

export interface GroupRepairOptions {
  host: GroupHost;
  rpc: ClusterRpc;
  logger: Logger;
  /** More nodes to ask besides a group's bootstrap members (the metadata registry's nodes). */
  peers?: () => readonly NodeId[];
  limits?: Partial<GroupRepairLimits>;
}

/** The damaged node's half: finds groups the host holds in repair and drives each to the end. */
export class GroupRepairDriver {
  private readonly active = new Set<GroupId>();
  private readonly pausedUntil = new Map<GroupId, number>();
  private readonly limits: GroupRepairLimits;
  private readonly logger: Logger;
  private readonly timer: ReturnType<typeof setInterval>;
  private closed = false;

  constructor(private readonly o: GroupRepairOptions) {
    this.limits = { ...defaultGroupRepairLimits, ...o.limits };
    this.logger = o.logger.child('group-repair');
    this.timer = setInterval(() => this.scan(), this.limits.scanIntervalMs);
    this.scan();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private scan(): void {
    if (this.closed) return;
    let todo: GroupToRepair[];
    try {
      todo = this.o.host.groupsToRepair();
    } catch {
      return; // host closed
    }
    const now = Date.now();
    for (const g of todo) {
      if (this.active.has(g.id) || (this.pausedUntil.get(g.id) ?? 0) > now) continue;
      this.active.add(g.id);
      this.run(g).then(
        () => this.active.delete(g.id),
        (e: unknown) => {
          this.active.delete(g.id);
          if (this.closed) return;
          this.pausedUntil.set(g.id, Date.now() + this.limits.restartPauseMs);
          this.logger.error('group repair gave up for now; tried again later', { group: g.id, error: e instanceof Error ? e.message : String(e), pauseMs: this.limits.restartPauseMs });
        },
      );
    }
  }

  private async run(g: GroupToRepair): Promise<void> {
    const payload = repairRequest.encode({ group: g.id });
    let addedAt = g.rebuiltAfter;
    if (addedAt === null) {
      const answer = rejoinAnswer.decode(await this.askLeader(g, RepairMethod.rejoin, payload, () => true));
      addedAt = answer.addedAt as LogIndex;
      if (this.closed) return;
      this.o.host.rejoinRepairedGroup(g.id, addedAt);
      this.logger.info('group repair: re-added as a learner, catching up', { group: g.id, addedAt });
    }
    const at = addedAt;
    // Promotion is refused until the learner caught up; the host ends the repair once it is a voter.
    await this.askLeader(g, RepairMethod.promote, payload, () => (this.o.host.status(g.id)?.commit ?? 0) >= at);
  }

  /** Done when the host no longer lists the group (finished, or removed). */
  private done(id: GroupId): boolean {
    return this.closed || !this.o.host.groupsToRepair().some((g) => g.id === id);
  }

  /**
   * Calls `method` on the group's leader, trying the known leader, then the bootstrap members, then
   * other peers, following NotLeader hints; bounded rounds with doubling pauses. `ready` gates a try.
   */
  private async askLeader(g: GroupToRepair, method: string, payload: Uint8Array, ready: () => boolean): Promise<Uint8Array> {
    let pauseMs = this.limits.backoffFirstMs;
    let last = 'no peer to ask';
    for (let round = 0; round < this.limits.attemptsMax; round++) {
      if (this.done(g.id)) return new Uint8Array(0);
      if (ready()) {
        const asked = new Set<NodeId>();
        const queue = this.candidates(g);
        for (let i = 0; i < queue.length && i < 16; i++) {
          const peer = queue[i]!;
          if (asked.has(peer)) continue;
          asked.add(peer);
          try {
            return await this.o.rpc.call(peer, method, payload, this.limits.callTimeoutMs);
          } catch (e) {
            last = `${peer}: ${e instanceof Error ? e.message : String(e)}`;
            const hint = isOperatingError(e, OperatingErrorCode.NotLeader) ? String(e.details['leader'] ?? '') : '';
            if (hint !== '' && hint !== this.o.host.nodeId && !asked.has(nodeId(hint))) queue.splice(i + 1, 0, nodeId(hint));
            if (isOperatingError(e) && e.details['reason'] === 'no-majority') break;
          }
        }
        if (round % 5 === 4) this.logger.warn('group repair still waiting', { group: g.id, method, round: round + 1, last });
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      pauseMs = Math.min(pauseMs * 2, this.limits.backoffMaxMs);
    }
    throw new OperatingError(OperatingErrorCode.Timeout, `group ${g.id}: ${method} found no leader to do it in ${this.limits.attemptsMax} rounds (last: ${last})`, { group: g.id });
  }

  private candidates(g: GroupToRepair): NodeId[] {
    const self = this.o.host.nodeId;
    const leader = this.o.host.leader(g.id);
    const all = [...(leader !== null ? [leader] : []), ...g.members, ...(this.o.peers?.() ?? [])];
    return [...new Set(all)].filter((n) => n !== self);
  }
}
