// The leader's view of one follower: match/next, the Probe/Replicate/Snapshot flow-control state,
// and a bounded window of in-flight appends (last index of each).

import { assert } from '../lib/assert.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Probe: one append sent, wait for its answer (or a heartbeat answer) before the next. */
  paused = false;
  /** Heard from this peer since the last check-quorum round. */
  recentActive = false;
  /** Snapshot state: the index being sent and how many bytes the follower has. */
  snapshotIndex = 0;
  snapshotOffset = 0;
  /** Tick of the last ack that moved this follower forward: a long silence means lost appends. */
  progressTick = 0;
  private readonly inflight: number[];
  private head = 0;
  private count = 0;

  constructor(next: number, readonly maxInflight: number) {
    this.next = next;
    this.inflight = new Array<number>(maxInflight).fill(0);
  }

  becomeProbe(): void {
    this.state = 'probe';
    this.next = this.match + 1;
    this.paused = false;
    this.clearInflight();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.paused = false;
    this.clearInflight();
  }

  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.snapshotIndex = index;
    this.snapshotOffset = 0;
    this.clearInflight();
  }

  /** An ack for `index`: true when it moved match forward (stale acks never move it back). */
  maybeUpdate(index: number): boolean {
    if (index <= this.match) {
      this.paused = false;
      return false;
    }
    this.match = index;
    if (this.next <= index) this.next = index + 1;
    this.paused = false;
    this.freeTo(index);
    return true;
  }

  /**
   * The follower's log ends below what it acknowledged (its storage lost a tail it had synced: a
   * truncated segment taken for a torn write). Matching from `lastIndex` again is the only way it
   * gets those entries back; a lower match never raises the commit index, so this is safe.
   */
  regressTo(lastIndex: number): void {
    this.match = lastIndex;
    this.becomeProbe();
  }

  /** A rejection of prevIndex `rejected` with a probe point; false when the rejection is stale. */
  maybeDecrTo(rejected: number, probeAt: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, probeAt + 1), this.match + 1);
    this.paused = false;
    return true;
  }

  canSend(): boolean {
    if (this.state === 'snapshot') return false;
    if (this.state === 'probe') return !this.paused;
    return this.count < this.maxInflight;
  }

  sent(lastIndex: number, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount === 0) return;
      assert(this.count < this.maxInflight, 'in-flight window overflow');
      this.next = lastIndex + 1;
      this.inflight[(this.head + this.count) % this.maxInflight] = lastIndex;
      this.count++;
    } else if (this.state === 'probe') {
      this.paused = true;
    }
  }

  inflightCount(): number {
    return this.count;
  }

  private freeTo(index: number): void {
    while (this.count > 0 && this.inflight[this.head]! <= index) {
      this.head = (this.head + 1) % this.maxInflight;
      this.count--;
    }
  }

  private clearInflight(): void {
    this.head = 0;
    this.count = 0;
  }
}
