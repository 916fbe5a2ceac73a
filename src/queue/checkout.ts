// Assignment: which ready message goes next (returns first, then the highest priority level,
// expiring heads on the way) and which consumer takes it (highest consumer priority with credit,
// round-robin within a priority). Also the effect collector every command writes into.

import { assert } from '../lib/assert.js';
import { Fifo } from './fifo.js';
import { hasCredit, type Holder, type MsgRef, type QueueState } from './state.js';
import type { ConsumerKey, DeadLetterReason, Effect, MsgId } from './types.js';

const reasonOrder: readonly DeadLetterReason[] = ['rejected', 'expired', 'maxlen', 'delivery_limit'];

/**
 * Effects of one command. Deliveries and results go to `effects` as they happen; messages that
 * leave the queue are batched and appended by finish(), after every delivery, so a no-ack
 * delivery always precedes the release of its body.
 */
export class Out {
  readonly effects: Effect[] = [];
  readonly dropped: MsgId[] = [];
  private readonly deadLetters = new Map<DeadLetterReason, MsgId[]>();

  deadLetter(id: MsgId, reason: DeadLetterReason): void {
    const list = this.deadLetters.get(reason);
    if (list === undefined) this.deadLetters.set(reason, [id]);
    else list.push(id);
  }

  finish(): Effect[] {
    for (const reason of reasonOrder) {
      const msgIds = this.deadLetters.get(reason);
      if (msgIds !== undefined) this.effects.push({ type: 'deadLetter', msgIds, reason });
    }
    if (this.dropped.length > 0) this.effects.push({ type: 'dropped', msgIds: this.dropped });
    return this.effects;
  }
}

/** A message leaves the queue for good: dead-lettered if the queue has a DLX, else dropped. */
export function discardMsg(state: QueueState, out: Out, msg: MsgRef, reason: DeadLetterReason): void {
  if (!state.config.deadLetter) return void out.dropped.push(msg.id);
  out.deadLetter(msg.id, reason);
  state.totals.deadLettered++;
}

function isExpired(state: QueueState, msg: MsgRef): boolean {
  return msg.expiresAtMs >= 0 && state.nowMs > msg.expiresAtMs;
}

/** Pops expired messages from the head of one fifo (TTL only acts at heads, as RabbitMQ). */
function expireFifo(state: QueueState, out: Out, fifo: Fifo<MsgRef>): void {
  for (let head = fifo.peek(); head !== undefined && isExpired(state, head); head = fifo.peek()) {
    fifo.shift();
    removeReady(state, head);
    discardMsg(state, out, head, 'expired');
  }
}

export function expireHeads(state: QueueState, out: Out): void {
  expireFifo(state, out, state.returns);
  for (const fifo of state.levels) expireFifo(state, out, fifo);
}

function removeReady(state: QueueState, msg: MsgRef): void {
  state.ready--;
  state.readyBytes -= msg.sizeBytes;
  assert(state.ready >= 0 && state.readyBytes >= 0, 'ready counters went negative');
}

export function addReady(state: QueueState, fifo: Fifo<MsgRef>, msg: MsgRef): void {
  fifo.push(msg);
  state.ready++;
  state.readyBytes += msg.sizeBytes;
}

/** The next message to serve, removed from the ready fifos; expired heads are discarded first. */
export function takeNext(state: QueueState, out: Out): MsgRef | undefined {
  expireFifo(state, out, state.returns);
  const returned = state.returns.shift();
  if (returned !== undefined) {
    removeReady(state, returned);
    return returned;
  }
  for (let level = state.levels.length - 1; level >= 0; level--) {
    const fifo = state.levels[level];
    assert(fifo !== undefined, 'level fifo exists');
    expireFifo(state, out, fifo);
    const msg = fifo.shift();
    if (msg !== undefined) {
      removeReady(state, msg);
      return msg;
    }
  }
  return undefined;
}

/** Removes every ready message (purge, delete), returns first then highest level, no expiry. */
export function drainReady(state: QueueState): MsgRef[] {
  const all: MsgRef[] = [];
  for (let msg = state.returns.shift(); msg !== undefined; msg = state.returns.shift()) all.push(msg);
  for (let level = state.levels.length - 1; level >= 0; level--) {
    const fifo = state.levels[level];
    assert(fifo !== undefined, 'level fifo exists');
    for (let msg = fifo.shift(); msg !== undefined; msg = fifo.shift()) all.push(msg);
  }
  state.ready = 0;
  state.readyBytes = 0;
  return all;
}

/** Puts a consumer with credit at the tail of its priority's ring (if not there already). */
export function enterService(state: QueueState, holder: Holder): void {
  if (holder.inService || !hasCredit(holder)) return;
  let ring = state.service.get(holder.priority);
  if (ring === undefined) {
    ring = new Fifo<ConsumerKey>();
    state.service.set(holder.priority, ring);
  }
  ring.push(holder.key);
  holder.inService = true;
}

/** The highest consumer priority with a service ring, or undefined (no allocation). */
function topPriority(state: QueueState): number | undefined {
  let top: number | undefined;
  for (const p of state.service.keys()) if (top === undefined || p > top) top = p;
  return top;
}

/** The consumer to serve next, removed from its ring; stale ring entries are dropped. */
function nextConsumer(state: QueueState): Holder | undefined {
  // Each pass drops one ring entry or one empty ring, so entries + rings bound the passes.
  for (let priority = topPriority(state); priority !== undefined; priority = topPriority(state)) {
    const ring = state.service.get(priority);
    assert(ring !== undefined, 'service ring exists');
    const key = ring.shift();
    if (ring.length === 0) state.service.delete(priority);
    if (key === undefined) continue;
    const holder = state.holders.get(key);
    if (holder === undefined) continue;
    holder.inService = false;
    if (hasCredit(holder)) return holder;
  }
  return undefined;
}

/** Hands `msg` to `holder`: a checkout (or an immediate settle for no-ack). */
export function handOut(state: QueueState, out: Out, holder: Holder, msg: MsgRef): { redelivered: boolean } {
  const redelivered = msg.acquiredCount > 0;
  msg.acquiredCount++;
  state.totals.delivered++;
  if (redelivered) state.totals.redelivered++;
  if (holder.noAck) {
    out.dropped.push(msg.id);
  } else {
    holder.checkedOut.set(msg.id, { msg, atMs: state.nowMs });
    state.holderOf.set(msg.id, holder.key);
    state.unacked++;
    state.unackedBytes += msg.sizeBytes;
  }
  return { redelivered };
}

/** Serves ready messages to consumers with credit until one of them runs out. */
export function checkout(state: QueueState, out: Out): void {
  if (state.deleted) return;
  // Each round hands out one message or stops, so ready + 1 bounds the rounds.
  for (let round = state.ready + 1; round > 0 && state.ready > 0; round--) {
    const holder = nextConsumer(state);
    if (holder === undefined) return;
    const msg = takeNext(state, out);
    if (msg === undefined) {
      enterService(state, holder);
      return;
    }
    if (holder.creditMode === 'granted') holder.credit--;
    // A no-ack message's 'dropped' goes out in finish(), after this delivery.
    const { redelivered } = handOut(state, out, holder, msg);
    out.effects.push({
      type: 'deliver',
      consumerKey: holder.key,
      msgId: msg.id,
      redelivered,
      deliveryCount: msg.deliveryCount,
    });
    enterService(state, holder);
  }
}
