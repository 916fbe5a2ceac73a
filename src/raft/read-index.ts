// Read-index bookkeeping for one leader: reads waiting for the term's first commit, reads waiting
// for a quorum to confirm leadership (each with a context unique within the term), and results.

import type { NodeId } from '../lib/ids.js';
import { logIndex } from '../lib/ids.js';
import type { ReadState } from './types.js';

interface PendingRead {
  readonly requestId: number;
  readonly index: number;
  readonly ctx: number;
  readonly acks: Set<NodeId>;
}

export class ReadIndexQueue {
  /** Never reset while the group lives; together with the term it makes each round unique. */
  private seq = 0;
  private pending: PendingRead[] = [];
  private waiting: number[] = [];
  private done: ReadState[] = [];
  private failed: number[] = [];

  constructor(private readonly max: number) {}

  full(): boolean {
    return this.pending.length + this.waiting.length >= this.max;
  }

  /** The leader has not committed an entry of its term yet: its commit index is not known. */
  wait(requestId: number): void {
    this.waiting.push(requestId);
  }

  takeWaiting(): number[] {
    const w = this.waiting;
    this.waiting = [];
    return w;
  }

  /** Records a read at `index`; returns the context to send in a heartbeat round. */
  start(requestId: number, index: number, self: NodeId): number {
    const ctx = ++this.seq;
    this.pending.push({ requestId, index, ctx, acks: new Set([self]) });
    return ctx;
  }

  /** A voter echoed `ctx`; once a quorum did, that read and all earlier ones are answered. */
  ack(ctx: number, from: NodeId, voters: readonly NodeId[], quorum: number, ackAll: boolean): boolean {
    const k = this.pending.findIndex((r) => r.ctx === ctx);
    if (k < 0) return false;
    const read = this.pending[k]!;
    if (voters.includes(from)) read.acks.add(from);
    if (ackAll) for (const v of voters) read.acks.add(v);
    let acked = 0;
    for (const v of voters) if (read.acks.has(v)) acked++;
    if (acked < quorum) return false;
    for (const r of this.pending.splice(0, k + 1)) this.done.push({ requestId: r.requestId, index: logIndex(r.index) });
    return true;
  }

  /** Leadership lost: every read in flight fails. */
  failAll(): void {
    for (const r of this.pending) this.failed.push(r.requestId);
    for (const id of this.waiting) this.failed.push(id);
    this.pending = [];
    this.waiting = [];
  }

  hasOutput(): boolean {
    return this.done.length > 0 || this.failed.length > 0;
  }

  takeOutput(): { readStates: ReadState[]; failedReads: number[] } {
    const out = { readStates: this.done, failedReads: this.failed };
    this.done = [];
    this.failed = [];
    return out;
  }
}
