// Bodies of one replicated queue's live messages (ready + unacked) by message id (= the log index
// of the enqueue entry): at most a node-wide byte budget of them in memory, the rest read back
// synchronously from the enqueue entry in the WAL when a delivery, get or dead letter needs them.
//
// Why no body is lost (the scheme, for restarts, snapshots and followers that lead later):
// - Every replica applies every enqueue, so every replica's own WAL holds every live body. When a
//   replica snapshots, it names the live ids to the WAL (GroupHost.saveSnapshot's `keep`): those
//   entries stay below the snapshot point (WAL live ranges) and compaction never drops them.
// - So a snapshot holds the queue state (which lists every live id) and only the bodies that are in
//   no log: "pinned" bodies, which come only from snapshots of the older format that carried every
//   body. A restart reads the others back from the WAL.
// - A snapshot the leader sends to a lagging follower carries the leader's kept entries behind the
//   snapshot data (the WAL's snapshot trailer); the follower's WAL installs them as kept entries of
//   its own log, so it too holds every live body and can deliver when it becomes leader.

import { assert } from '../lib/assert.js';
import type { StoredMessage } from '../broker/queue-backend.js';
import type { MsgId } from '../queue/index.js';
import { bodyBudgetBytesDefault, bodyFifoSlackSlots, bodyOverheadBytes } from './replicated-queue-limits.js';

/** Reads a live body back from the log: the message of the enqueue entry at index `id`, or undefined if gone. */
export type BodyLoader = (id: MsgId) => StoredMessage | undefined;

interface Resident {
  readonly store: BodyStore;
  readonly id: MsgId;
  readonly message: StoredMessage;
  readonly bytes: number;
}

export interface BodyBudgetStats {
  readonly bytes: number;
  readonly bytesMax: number;
  readonly residents: number;
  readonly evictions: number;
}

/**
 * The node-wide budget for resident bodies: a FIFO over all stores, oldest evicted first. Slots of
 * bodies deleted before eviction reached them stay in the FIFO as stale slots; the FIFO is
 * compacted once they outnumber the residents (plus some slack), so it stays O(residents).
 */
export class BodyBudget {
  private fifo: Array<Resident | undefined> = [];
  private head = 0;
  private bytesHeld = 0;
  private residents = 0;
  private evictions = 0;

  constructor(readonly bytesMax: number = bodyBudgetBytesDefault) {
    assert(Number.isFinite(bytesMax) && bytesMax >= 0, 'body budget is a byte count');
  }

  stats(): BodyBudgetStats {
    return { bytes: this.bytesHeld, bytesMax: this.bytesMax, residents: this.residents, evictions: this.evictions };
  }

  /** @internal BodyStore: a body became resident. */
  admit(r: Resident): void {
    this.fifo.push(r);
    this.bytesHeld += r.bytes;
    this.residents++;
    if (this.bytesHeld > this.bytesMax) this.evict();
    this.tidy();
  }

  /** @internal BodyStore: a resident body was deleted by its store (its slot turns stale). */
  release(r: Resident): void {
    this.bytesHeld -= r.bytes;
    this.residents--;
    assert(this.bytesHeld >= 0 && this.residents >= 0, 'body budget accounting stays non-negative');
  }

  /** Drops the oldest residents until within budget; bounded by the FIFO's length. */
  private evict(): void {
    const n = this.fifo.length;
    while (this.bytesHeld > this.bytesMax && this.head < n) {
      const r = this.fifo[this.head];
      this.fifo[this.head] = undefined;
      this.head++;
      if (r === undefined || !r.store.evicted(r)) continue;
      this.bytesHeld -= r.bytes;
      this.residents--;
      this.evictions++;
    }
  }

  private tidy(): void {
    const slots = this.fifo.length - this.head;
    if (this.head > bodyFifoSlackSlots && this.head * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.head);
      this.head = 0;
    } else if (slots > 2 * this.residents + bodyFifoSlackSlots) {
      const kept: Resident[] = [];
      for (let k = this.head; k < this.fifo.length; k++) {
        const r = this.fifo[k];
        if (r !== undefined && r.store.isResident(r)) kept.push(r);
      }
      assert(kept.length === this.residents, 'every resident body has one FIFO slot');
      this.fifo = kept;
      this.head = 0;
    }
  }
}

const budgets = new WeakMap<object, BodyBudget>();

/** The budget shared by every queue of one node (keyed by the node's group host). */
export function sharedBodyBudget(owner: object, bytesMax: number = bodyBudgetBytesDefault): BodyBudget {
  let b = budgets.get(owner);
  if (b === undefined) budgets.set(owner, (b = new BodyBudget(bytesMax)));
  return b;
}

export function messageBytes(m: StoredMessage): number {
  return m.body.length + (m.rawProperties?.length ?? 0) + m.exchange.length + m.routingKey.length + bodyOverheadBytes;
}

/** The Map-like store a replicated queue keeps its bodies in (see the scheme at the top). */
export class BodyStore {
  /** Every live id (iteration order: ascending, as enqueues come in log order and restore sorts). */
  private readonly live = new Set<MsgId>();
  private readonly resident = new Map<MsgId, Resident>();
  private readonly pinnedBodies = new Map<MsgId, StoredMessage>();
  /** Bodies read back from the log (for tests and metrics). */
  loads = 0;
  /** Live bodies deleted or cleared so far (settled, dropped, dead-lettered): the queue's snapshot pacing. */
  removed = 0;

  constructor(
    private readonly budget: BodyBudget,
    private readonly load: BodyLoader,
  ) {}

  /** Live bodies, in memory or in the log. */
  get size(): number {
    return this.live.size;
  }

  has(id: MsgId): boolean {
    return this.live.has(id);
  }

  /** The body of a live message: from memory, else read back from its enqueue entry. */
  get(id: MsgId): StoredMessage | undefined {
    if (!this.live.has(id)) return undefined;
    const r = this.resident.get(id);
    if (r !== undefined) return r.message;
    const p = this.pinnedBodies.get(id);
    if (p !== undefined) return p;
    this.loads++;
    // Not re-admitted: a body read back is usually settled right after its one delivery.
    return this.load(id);
  }

  /** A message enqueued at index `id` (its body is in that log entry). */
  set(id: MsgId, message: StoredMessage): void {
    this.delete(id);
    this.live.add(id);
    const r: Resident = { store: this, id, message, bytes: messageBytes(message) };
    this.resident.set(id, r);
    this.budget.admit(r);
  }

  delete(id: MsgId): boolean {
    if (!this.live.delete(id)) return false;
    this.removed++;
    const r = this.resident.get(id);
    if (r !== undefined) {
      this.resident.delete(id);
      this.budget.release(r);
    }
    this.pinnedBodies.delete(id);
    return true;
  }

  clear(): void {
    for (const r of this.resident.values()) this.budget.release(r);
    this.resident.clear();
    this.pinnedBodies.clear();
    this.removed += this.live.size;
    this.live.clear();
  }

  /**
   * After a snapshot: `liveIds` are every live message of the restored state; `pinned` are the
   * bodies the snapshot carried (in no log); the others are read back from the log when needed.
   */
  restore(liveIds: Iterable<MsgId>, pinned: ReadonlyMap<MsgId, StoredMessage>): void {
    this.clear();
    for (const id of [...liveIds].sort((a, b) => a - b)) this.live.add(id);
    for (const [id, m] of pinned) if (this.live.has(id)) this.pinnedBodies.set(id, m);
  }

  /** Bodies a snapshot must carry: those in no log. */
  pinned(): ReadonlyMap<MsgId, StoredMessage> {
    return this.pinnedBodies;
  }

  /** Live ids whose bodies are in the log: the WAL must keep these entries. */
  keep(): MsgId[] {
    const out: MsgId[] = [];
    for (const id of this.live) if (!this.pinnedBodies.has(id)) out.push(id);
    return out;
  }

  /** Bytes of this store's bodies held in memory (resident and pinned). */
  residentBytes(): number {
    let n = 0;
    for (const r of this.resident.values()) n += r.bytes;
    for (const m of this.pinnedBodies.values()) n += messageBytes(m);
    return n;
  }

  /** @internal BodyBudget: true if `r` is this store's current resident body for its id. */
  isResident(r: Resident): boolean {
    return this.resident.get(r.id) === r;
  }

  /** @internal BodyBudget: evicts `r` if still current; the body stays live (in the log). */
  evicted(r: Resident): boolean {
    if (this.resident.get(r.id) !== r) return false;
    this.resident.delete(r.id);
    return true;
  }
}
