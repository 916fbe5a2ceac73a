// apply(state, command, meta) -> effects: the one entry point of the queue state machine. The
// same log applied to the same state gives the same effects and state on every replica: inputs
// are only the state, the command and meta (index, the leader's timestamp), never a local clock.

import { assert, unreachable } from '../lib/assert.js';
import { addReady, checkout, discardMsg, drainReady, expireHeads, handOut, Out, takeNext } from './checkout.js';
import { cancel, credit, down, nextHolderTimeoutMs, register, takeBack, timeOutHolders } from './consumers.js';
import { durationMsMax, messagesMax } from './limits.js';
import { isConsumer, levelCount, levelOf, type Holder, type MsgRef, type QueueState } from './state.js';
import { Fifo } from './fifo.js';
import { isDuplicate, recordApplied } from './dedup.js';
import type { Command, CommandMeta, Effect, EnqueueCommand, Owner, QueueConfig } from './types.js';

/**
 * Applies one command, mutating `state` in place, and returns the effects in the order the edge
 * must carry them out. `meta.index` must grow strictly; `meta.timeMs` may go backwards after a
 * leader change and is clamped to the largest time seen.
 */
export function apply(state: QueueState, command: Command, meta: CommandMeta): Effect[] {
  assert(meta.index > state.lastIndex, `queue command index ${meta.index} <= last ${state.lastIndex}`);
  state.lastIndex = meta.index;
  state.nowMs = Math.max(state.nowMs, meta.timeMs);
  const out = new Out();
  if (state.deleted) {
    applyToDeleted(command, meta, out);
    return out.finish();
  }
  expireHeads(state, out);
  dispatch(state, command, meta, out);
  if (!state.deleted) {
    checkout(state, out);
    expireQueue(state, out);
  }
  const effects = out.finish();
  requestTimer(state, effects);
  return effects;
}

function dispatch(state: QueueState, command: Command, meta: CommandMeta, out: Out): void {
  switch (command.type) {
    case 'enqueue': return enqueue(state, out, command, meta.index);
    case 'register': return register(state, out, command, meta.index);
    case 'cancel': return cancel(state, command.consumerKey);
    case 'credit': return credit(state, command.consumerKey, command.credit, command.mode);
    case 'settle': return takeBack(state, out, command.channel, command.msgIds, 'settle');
    case 'return': return takeBack(state, out, command.channel, command.msgIds, 'return');
    case 'discard': return takeBack(state, out, command.channel, command.msgIds, 'discard');
    case 'down': return down(state, out, command.scope, command.id);
    case 'purge': return purge(state, out);
    case 'get': return get(state, out, command.owner, command.noAck, meta.index);
    case 'tick':
      // A tick answers the timer request: forget it, so the next deadline is asked for anew.
      state.timerAtMs = null;
      return timeOutHolders(state, out);
    case 'touch':
      state.lastActiveMs = state.nowMs;
      return;
    case 'config': return configure(state, out, command.config);
    case 'delete': return deleteQueue(state, out, 'deleted');
    default: return unreachable(command);
  }
}

/** A deleted queue stores nothing and answers what it must (enqueue rejected, get empty). */
function applyToDeleted(command: Command, meta: CommandMeta, out: Out): void {
  if (command.type === 'enqueue') out.effects.push({ type: 'enqueueResult', msgId: meta.index, outcome: 'rejected' });
  if (command.type === 'get') out.effects.push({ type: 'getEmpty' });
  if (command.type === 'register') {
    out.effects.push({ type: 'consumerCancelled', consumerKey: meta.index, reason: 'deleted', owner: command.owner, tag: command.tag });
  }
}

function expiryOf(state: QueueState, cmd: EnqueueCommand): number {
  const queueTtl = state.config.messageTtlMs;
  const ttls = [queueTtl, cmd.ttlMs].filter((t): t is number => t !== null);
  if (ttls.length === 0) return -1;
  return state.nowMs + Math.min(Math.min(...ttls), durationMsMax);
}

function wouldOverflow(state: QueueState, sizeBytes: number): boolean {
  const { maxLength, maxLengthBytes } = state.config;
  if (maxLength !== null && state.ready + 1 > maxLength) return true;
  return maxLengthBytes !== null && state.readyBytes + sizeBytes > maxLengthBytes;
}

function enqueue(state: QueueState, out: Out, cmd: EnqueueCommand, id: number): void {
  assert(cmd.sizeBytes >= 0, 'message size is not negative');
  if (cmd.dedup !== undefined && isDuplicate(state.dedup, cmd.dedup, state.nowMs)) {
    out.effects.push({ type: 'enqueueResult', msgId: id, outcome: 'accepted', duplicate: true });
    return;
  }
  const full = state.ready + state.unacked >= messagesMax;
  if (full || (state.config.overflow !== 'drop-head' && wouldOverflow(state, cmd.sizeBytes))) {
    out.effects.push({ type: 'enqueueResult', msgId: id, outcome: 'rejected' });
    if (!full && state.config.overflow === 'reject-publish-dlx' && state.config.deadLetter) {
      out.deadLetter(id, 'maxlen');
      state.totals.deadLettered++;
    }
    return;
  }
  const msg: MsgRef = {
    id,
    sizeBytes: cmd.sizeBytes,
    level: levelOf(state, cmd.priority),
    expiresAtMs: expiryOf(state, cmd),
    deliveryCount: 0,
    acquiredCount: 0,
  };
  const fifo = state.levels[msg.level];
  assert(fifo !== undefined, 'priority level exists');
  addReady(state, fifo, msg);
  // Only accepted ones: a retry of a rejected enqueue is judged again (it stored nothing).
  if (cmd.dedup !== undefined) recordApplied(state.dedup, cmd.dedup);
  out.effects.push({ type: 'enqueueResult', msgId: id, outcome: 'accepted' });
  state.totals.published++;
  dropHeads(state, out);
}

/** x-overflow drop-head: drops the next message to be served until the limits hold again. */
function dropHeads(state: QueueState, out: Out): void {
  if (state.config.overflow !== 'drop-head') return;
  const { maxLength, maxLengthBytes } = state.config;
  for (let bound = state.ready; bound > 0; bound--) {
    const over = (maxLength !== null && state.ready > maxLength) || (maxLengthBytes !== null && state.readyBytes > maxLengthBytes);
    if (!over) return;
    const msg = takeNext(state, out);
    if (msg === undefined) return;
    discardMsg(state, out, msg, 'maxlen');
  }
}

function purge(state: QueueState, out: Out): void {
  const purged = drainReady(state);
  for (const msg of purged) out.dropped.push(msg.id);
  out.effects.push({ type: 'purged', count: purged.length });
}

function get(state: QueueState, out: Out, owner: Owner, noAck: boolean, index: number): void {
  state.lastActiveMs = state.nowMs;
  const msg = takeNext(state, out);
  if (msg === undefined) {
    out.effects.push({ type: 'getEmpty' });
    return;
  }
  const { redelivered } = handOut(state, out, noAck ? noAckGetter(owner) : getHolder(state, owner, index), msg);
  out.effects.push({ type: 'getResult', msgId: msg.id, redelivered, deliveryCount: msg.deliveryCount, remaining: state.ready });
}

/** The holder of a channel's unacked basic.get messages, created on first use. */
function getHolder(state: QueueState, owner: Owner, index: number): Holder {
  const existing = state.getHolders.get(owner.channel);
  if (existing !== undefined) {
    const holder = state.holders.get(existing);
    assert(holder !== undefined && holder.status === 'get', 'get holder is registered');
    return holder;
  }
  const holder = newGetHolder(owner, index, false);
  state.holders.set(index, holder);
  state.getHolders.set(owner.channel, index);
  return holder;
}

/** A no-ack get takes nothing into custody: a throwaway holder that is never stored. */
function noAckGetter(owner: Owner): Holder {
  return newGetHolder(owner, -1, true);
}

function newGetHolder(owner: Owner, key: number, noAck: boolean): Holder {
  return {
    key, owner, tag: '', creditMode: 'auto', prefetch: 0, priority: 0, noAck,
    status: 'get', credit: 0, inService: false, checkedOut: new Map(),
  };
}

function configure(state: QueueState, out: Out, config: QueueConfig): void {
  // Single-active-consumer is fixed at declaration (an argument, not a policy, in RabbitMQ).
  const next = { ...config, singleActiveConsumer: state.config.singleActiveConsumer };
  const relevel = levelCount(next) !== state.levels.length;
  state.config = next;
  if (relevel) {
    // Rare (a policy changed x-max-priority): re-file ready messages, highest level first so
    // that merged levels keep serving order.
    const old = state.levels;
    state.levels = [];
    for (let i = 0; i < levelCount(next); i++) state.levels.push(new Fifo<MsgRef>());
    for (let level = old.length - 1; level >= 0; level--) {
      for (const msg of old[level]?.toArray() ?? []) {
        const target = state.levels[Math.min(msg.level, state.levels.length - 1)];
        assert(target !== undefined, 'target level exists');
        target.push(msg);
      }
    }
  }
  dropHeads(state, out);
}

/** x-expires: unused (no consumers, no get, no redeclare) for expiresMs deletes the queue. */
function expireQueue(state: QueueState, out: Out): void {
  const expiresMs = state.config.expiresMs;
  if (expiresMs === null || state.consumers > 0) return;
  if (state.nowMs < state.lastActiveMs + expiresMs) return;
  deleteQueue(state, out, 'expired');
}

function deleteQueue(state: QueueState, out: Out, why: 'deleted' | 'expired'): void {
  const count = state.ready;
  for (const holder of [...state.holders.values()]) {
    if (isConsumer(holder)) out.effects.push({ type: 'consumerCancelled', consumerKey: holder.key, reason: 'deleted', owner: holder.owner, tag: holder.tag });
    for (const id of holder.checkedOut.keys()) out.dropped.push(id);
  }
  for (const msg of drainReady(state)) out.dropped.push(msg.id);
  state.holders.clear();
  state.holderOf.clear();
  state.getHolders.clear();
  state.service.clear();
  state.activeKey = null;
  state.unacked = 0;
  state.unackedBytes = 0;
  state.consumers = 0;
  state.deleted = true;
  out.effects.push(why === 'expired' ? { type: 'queueExpired' } : { type: 'deleted', count });
}

/** The next time a tick has work: a head's expiry, a holder's timeout or the queue's expiry. */
export function nextDeadlineMs(state: QueueState): number | null {
  if (state.deleted) return null;
  let at: number | null = null;
  const consider = (t: number | null): void => {
    if (t !== null && (at === null || t < at)) at = t;
  };
  for (const fifo of [state.returns, ...state.levels]) {
    const head = fifo.peek();
    if (head !== undefined && head.expiresAtMs >= 0) consider(head.expiresAtMs + 1);
  }
  consider(nextHolderTimeoutMs(state));
  const expiresMs = state.config.expiresMs;
  if (expiresMs !== null && state.consumers === 0) consider(state.lastActiveMs + expiresMs);
  return at;
}

function requestTimer(state: QueueState, effects: Effect[]): void {
  const at = nextDeadlineMs(state);
  if (at === state.timerAtMs) return;
  state.timerAtMs = at;
  effects.push({ type: 'timer', atMs: at });
}
