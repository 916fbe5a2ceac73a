// The queue's state: message references (never bodies), holders (consumers and basic.get
// takers) with what they have checked out, the service rings that decide who is served next,
// and the counters. apply() mutates it in place; snapshot.ts turns it into plain data.

import { assert } from '../lib/assert.js';
import { createDedupTable, type DedupTable } from './dedup.js';
import { Fifo } from './fifo.js';
import { priorityLevelsMax } from './limits.js';
import type { ConsumerKey, CreditMode, MsgId, Owner, QueueConfig, QueueCounters, QueueTotals } from './types.js';

/** A message reference: a few numbers (~40 bytes). `expiresAtMs` -1 = never expires. */
export interface MsgRef {
  readonly id: MsgId;
  readonly sizeBytes: number;
  readonly level: number;
  readonly expiresAtMs: number;
  /** Failed deliveries (returns after a delivery): x-delivery-count, checked against the limit. */
  deliveryCount: number;
  /** Times handed to a consumer or basic.get: > 0 means redelivered. */
  acquiredCount: number;
}

export interface Checkout {
  readonly msg: MsgRef;
  readonly atMs: number;
}

/**
 * 'up' is served; 'waiting' is a single-active-consumer standby; 'quiescing' is an active
 * consumer being replaced by a higher-priority one (served nothing more, hands over once its
 * messages are settled); 'cancelled' keeps only its unacked messages; 'get' is the holder of one
 * channel's basic.get messages (not a consumer).
 */
export type HolderStatus = 'up' | 'waiting' | 'quiescing' | 'cancelled' | 'get';

export interface Holder {
  readonly key: ConsumerKey;
  readonly owner: Owner;
  readonly tag: string;
  readonly creditMode: CreditMode;
  readonly prefetch: number;
  readonly priority: number;
  readonly noAck: boolean;
  status: HolderStatus;
  /** 'granted' mode only: deliveries still allowed. */
  credit: number;
  /** In a service ring (at most once). */
  inService: boolean;
  /** Insertion order = checkout order, so the first entry is the oldest (consumer timeout). */
  readonly checkedOut: Map<MsgId, Checkout>;
}

export interface QueueState {
  config: QueueConfig;
  /** Returned messages: served before any priority level. */
  readonly returns: Fifo<MsgRef>;
  /** Ready messages per priority level, index = level (highest served first). */
  levels: Array<Fifo<MsgRef>>;
  /** Every holder by key; insertion order = key order (keys are increasing log indexes). */
  readonly holders: Map<ConsumerKey, Holder>;
  /** Which holder has each unacked message (settle looks up here). */
  readonly holderOf: Map<MsgId, ConsumerKey>;
  /** The basic.get holder of each channel that has unacked gets. */
  readonly getHolders: Map<string, ConsumerKey>;
  /** Consumers with credit, round-robin per consumer priority. */
  readonly service: Map<number, Fifo<ConsumerKey>>;
  /** Single active consumer: the active (or quiescing) one. */
  activeKey: ConsumerKey | null;
  lastIndex: number;
  /** max(meta.timeMs) seen: the leader's clock, made monotonic across leader changes. */
  nowMs: number;
  /** Last use for x-expires (consumer registered/cancelled, get, touch, creation). */
  lastActiveMs: number;
  /** Last timer the edge was asked for (null = none). */
  timerAtMs: number | null;
  deleted: boolean;
  /** Retried enqueues already applied, by caller (replicated queues only; see dedup.ts). */
  dedup: DedupTable;
  ready: number;
  readyBytes: number;
  unacked: number;
  unackedBytes: number;
  consumers: number;
  /** Cumulative counts for metrics (not in snapshots). */
  readonly totals: QueueTotals;
}

export function levelCount(config: QueueConfig): number {
  return Math.min(Math.max(0, Math.floor(config.maxPriority)), priorityLevelsMax - 1) + 1;
}

export function createQueueState(config: QueueConfig, createdAtMs = 0): QueueState {
  const levels: Array<Fifo<MsgRef>> = [];
  for (let i = 0; i < levelCount(config); i++) levels.push(new Fifo<MsgRef>());
  return {
    config,
    returns: new Fifo<MsgRef>(),
    levels,
    holders: new Map(),
    holderOf: new Map(),
    getHolders: new Map(),
    service: new Map(),
    activeKey: null,
    lastIndex: 0,
    nowMs: createdAtMs,
    lastActiveMs: createdAtMs,
    timerAtMs: null,
    deleted: false,
    dedup: createDedupTable(),
    ready: 0,
    readyBytes: 0,
    unacked: 0,
    unackedBytes: 0,
    consumers: 0,
    totals: { published: 0, delivered: 0, redelivered: 0, acked: 0, deadLettered: 0 },
  };
}

export function counters(state: QueueState): QueueCounters {
  return {
    ready: state.ready,
    readyBytes: state.readyBytes,
    unacked: state.unacked,
    unackedBytes: state.unackedBytes,
    consumers: state.consumers,
  };
}

/** Is the holder a live consumer (counted in `consumers`)? */
export function isConsumer(holder: Holder): boolean {
  return holder.status === 'up' || holder.status === 'waiting' || holder.status === 'quiescing';
}

/** May this consumer take one more message now? */
export function hasCredit(holder: Holder): boolean {
  if (holder.status !== 'up') return false;
  if (holder.creditMode === 'granted') return holder.credit > 0;
  if (holder.noAck || holder.prefetch === 0) return true;
  return holder.checkedOut.size < holder.prefetch;
}

/** The message's priority level in this queue (strict priorities, clamped to the top level). */
export function levelOf(state: QueueState, priority: number): number {
  const top = state.levels.length - 1;
  assert(top >= 0, 'a queue has at least one level');
  return Math.min(Math.max(0, Math.floor(priority)), top);
}

/** Counts every ready and unacked message again (restore and tests check the counters with it). */
export function recount(state: QueueState): QueueCounters {
  let ready = 0;
  let readyBytes = 0;
  let unacked = 0;
  let unackedBytes = 0;
  let consumers = 0;
  for (const fifo of [state.returns, ...state.levels]) {
    for (const m of fifo.toArray()) {
      ready++;
      readyBytes += m.sizeBytes;
    }
  }
  for (const h of state.holders.values()) {
    if (isConsumer(h)) consumers++;
    for (const c of h.checkedOut.values()) {
      unacked++;
      unackedBytes += c.msg.sizeBytes;
    }
  }
  return { ready, readyBytes, unacked, unackedBytes, consumers };
}
