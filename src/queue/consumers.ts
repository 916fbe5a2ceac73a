// Consumers: registration, cancellation, credit, single-active-consumer hand-over, and taking
// back what a holder has checked out (settle, return, discard, down, consumer timeout).

import { assert } from '../lib/assert.js';
import { addReady, discardMsg, enterService, type Out } from './checkout.js';
import { consumersMax, idsPerCommandMax } from './limits.js';
import { isConsumer, type Holder, type MsgRef, type QueueState } from './state.js';
import type { ConsumerKey, DownScope, MsgId, Owner, RegisterCommand } from './types.js';

export function register(state: QueueState, out: Out, cmd: RegisterCommand, key: ConsumerKey): void {
  if (state.consumers >= consumersMax) {
    out.effects.push({ type: 'consumerCancelled', consumerKey: key, reason: 'limit', owner: cmd.owner, tag: cmd.tag });
    return;
  }
  assert(!state.holders.has(key), 'consumer key is unused');
  const holder: Holder = {
    key,
    owner: cmd.owner,
    tag: cmd.tag,
    creditMode: cmd.creditMode,
    prefetch: Math.max(0, Math.floor(cmd.prefetch)),
    priority: cmd.priority,
    noAck: cmd.noAck,
    status: 'up',
    credit: cmd.creditMode === 'granted' ? Math.max(0, Math.floor(cmd.prefetch)) : 0,
    inService: false,
    checkedOut: new Map(),
  };
  state.holders.set(key, holder);
  state.consumers++;
  state.lastActiveMs = state.nowMs;
  if (state.config.singleActiveConsumer) {
    holder.status = 'waiting';
    const active = state.activeKey === null ? undefined : state.holders.get(state.activeKey);
    // A higher-priority newcomer takes over: at once if the active one holds nothing,
    // else once its messages are settled (it stops taking new ones meanwhile).
    if (active !== undefined && active.status === 'up' && holder.priority > active.priority) {
      active.status = 'quiescing';
    }
    handOver(state);
    return;
  }
  enterService(state, holder);
}

/** Single active consumer: picks a new active one when there is none or the old one drained. */
export function handOver(state: QueueState): void {
  if (!state.config.singleActiveConsumer) return;
  const active = state.activeKey === null ? undefined : state.holders.get(state.activeKey);
  if (active !== undefined && active.status === 'up') return;
  if (active !== undefined && active.status === 'quiescing') {
    if (active.checkedOut.size > 0) return;
    active.status = 'waiting';
  }
  // Scan of the consumers: single-active-consumer queues have few of them.
  let best: Holder | undefined;
  for (const h of state.holders.values()) {
    if (h.status === 'waiting' && (best === undefined || h.priority > best.priority)) best = h;
  }
  state.activeKey = best === undefined ? null : best.key;
  if (best !== undefined) {
    best.status = 'up';
    enterService(state, best);
  }
}

/** basic.cancel: no more deliveries; unacked messages stay with the consumer until settled. */
export function cancel(state: QueueState, key: ConsumerKey): void {
  const holder = state.holders.get(key);
  if (holder === undefined || !isConsumer(holder)) return;
  holder.status = 'cancelled';
  state.consumers--;
  state.lastActiveMs = state.nowMs;
  if (holder.checkedOut.size === 0) state.holders.delete(key);
  if (state.activeKey === key) state.activeKey = null;
  handOver(state);
}

export function credit(state: QueueState, key: ConsumerKey, amount: number, mode: 'add' | 'set'): void {
  const holder = state.holders.get(key);
  if (holder === undefined || holder.creditMode !== 'granted' || !isConsumer(holder)) return;
  const n = Math.max(0, Math.floor(amount));
  holder.credit = mode === 'add' ? holder.credit + n : n;
  enterService(state, holder);
}

/** Removes one message from its holder's checkout; returns it if `channel` holds it. */
function release(state: QueueState, channel: string | null, id: MsgId): { holder: Holder; msg: MsgRef } | undefined {
  const key = state.holderOf.get(id);
  if (key === undefined) return undefined;
  const holder = state.holders.get(key);
  assert(holder !== undefined, 'a checked-out message has a holder');
  if (channel !== null && holder.owner.channel !== channel) return undefined;
  const checkout = holder.checkedOut.get(id);
  assert(checkout !== undefined, 'holder index and checkout agree');
  holder.checkedOut.delete(id);
  state.holderOf.delete(id);
  state.unacked--;
  state.unackedBytes -= checkout.msg.sizeBytes;
  assert(state.unacked >= 0 && state.unackedBytes >= 0, 'unacked counters went negative');
  return { holder, msg: checkout.msg };
}

/** After a holder lost messages: forget it if it is done, refill its credit, hand over. */
function afterRelease(state: QueueState, holder: Holder): void {
  if (holder.checkedOut.size === 0 && !isConsumer(holder)) {
    state.holders.delete(holder.key);
    if (holder.status === 'get') state.getHolders.delete(holder.owner.channel);
  } else {
    enterService(state, holder);
  }
  if (holder.status === 'quiescing') handOver(state);
}

/** A failed delivery: back to the returns fifo, or dead-lettered past the delivery limit. */
export function returnMsg(state: QueueState, out: Out, msg: MsgRef): void {
  msg.deliveryCount++;
  const limit = state.config.deliveryLimit;
  if (limit !== null && msg.deliveryCount > limit) discardMsg(state, out, msg, 'delivery_limit');
  else addReady(state, state.returns, msg);
}

export type TakeBack = 'settle' | 'return' | 'discard';

/** settle / return / discard of ids held by `channel` (ids it does not hold are ignored). */
export function takeBack(state: QueueState, out: Out, channel: string, ids: readonly MsgId[], how: TakeBack): void {
  assert(ids.length <= idsPerCommandMax, `${ids.length} ids in one ${how} command (the edge splits lists)`);
  // Returns go back in id order (publish order), whatever order the client named them in.
  const ordered = how === 'return' ? [...ids].sort((a, b) => a - b) : ids;
  const touched = new Set<Holder>();
  for (const id of ordered) {
    const taken = release(state, channel, id);
    if (taken === undefined) continue;
    touched.add(taken.holder);
    if (how === 'settle') {
      out.dropped.push(id);
      state.totals.acked++;
    }
    else if (how === 'return') returnMsg(state, out, taken.msg);
    else discardMsg(state, out, taken.msg, 'rejected');
  }
  for (const holder of touched) afterRelease(state, holder);
}

/** Ends a holder: it stops being a consumer and every message it holds is returned. */
export function endHolder(state: QueueState, out: Out, holder: Holder): void {
  if (isConsumer(holder)) {
    holder.status = 'cancelled';
    state.consumers--;
    state.lastActiveMs = state.nowMs;
  }
  for (const id of [...holder.checkedOut.keys()]) {
    const taken = release(state, null, id);
    assert(taken !== undefined && taken.holder === holder, 'message was held by this holder');
    returnMsg(state, out, taken.msg);
  }
  state.holders.delete(holder.key);
  if (holder.status === 'get') state.getHolders.delete(holder.owner.channel);
  if (state.activeKey === holder.key) state.activeKey = null;
}

function ownedBy(owner: Owner, scope: DownScope, id: string): boolean {
  if (scope === 'channel') return owner.channel === id;
  if (scope === 'connection') return owner.connection === id;
  return owner.node === id;
}

/** A channel, connection or node went away: its holders end, in key order. */
export function down(state: QueueState, out: Out, scope: DownScope, id: string): void {
  const gone = [...state.holders.values()].filter((h) => ownedBy(h.owner, scope, id));
  for (const holder of gone) endHolder(state, out, holder);
  handOver(state);
}

/**
 * x-consumer-timeout: a holder whose oldest message has been out longer than the timeout ends
 * (messages returned as failed deliveries); a consumer also gets a cancel effect.
 */
export function timeOutHolders(state: QueueState, out: Out): void {
  const timeoutMs = state.config.consumerTimeoutMs;
  if (timeoutMs === null) return;
  const stuck: Holder[] = [];
  for (const holder of state.holders.values()) {
    const oldest = holder.checkedOut.values().next();
    if (oldest.done !== true && state.nowMs > oldest.value.atMs + timeoutMs) stuck.push(holder);
  }
  for (const holder of stuck) {
    const wasConsumer = isConsumer(holder);
    endHolder(state, out, holder);
    if (wasConsumer) out.effects.push({ type: 'consumerCancelled', consumerKey: holder.key, reason: 'timeout', owner: holder.owner, tag: holder.tag });
  }
  if (stuck.length > 0) handOver(state);
}

/** Earliest time a holder times out (for the timer effect), or null. */
export function nextHolderTimeoutMs(state: QueueState): number | null {
  const timeoutMs = state.config.consumerTimeoutMs;
  if (timeoutMs === null || state.unacked === 0) return null;
  let at: number | null = null;
  for (const holder of state.holders.values()) {
    const oldest = holder.checkedOut.values().next();
    if (oldest.done === true) continue;
    const t = oldest.value.atMs + timeoutMs + 1;
    if (at === null || t < at) at = t;
  }
  return at;
}
