// One group's log as the core sees it: the host's durable log (read-only LogReader) plus the
// unstable tail and pending snapshot held in memory until the host persists them (Ready/advance).

import { assert } from '../lib/assert.js';
import type { Term } from '../lib/ids.js';
import { logIndex, term as toTerm } from '../lib/ids.js';
import type { Entry, LogReader, SnapshotMeta } from './types.js';

export interface PendingSnapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

export class RaftLog {
  /** Index of unstable[0]; entries at or above it shadow the durable log. */
  private offset: number;
  private unstable: Entry[] = [];
  /** How many unstable entries the outstanding Ready carries. */
  private handedOut = 0;
  private pendingSnapshot: PendingSnapshot | null = null;
  private snapshotHandedOut = false;
  /** Latest application snapshot the host told us about (compact) or that we installed. */
  private snapshotMeta: SnapshotMeta | null;
  committed: number;
  /** Highest index handed to the application (in a Ready), and highest it confirmed (advance). */
  applying: number;
  applied: number;

  constructor(readonly reader: LogReader, committed: number, applied: number) {
    this.snapshotMeta = reader.snapshot();
    const first = reader.firstIndex();
    const last = reader.lastIndex();
    assert(first >= 1 && last >= first - 1, `bad durable log range [${first}, ${last}]`);
    this.offset = last + 1;
    this.committed = Math.max(committed, first - 1);
    assert(this.committed <= last, `commit ${committed} beyond durable last index ${last}`);
    this.applied = Math.max(applied, first - 1);
    assert(this.applied <= this.committed, 'applied beyond commit');
    this.applying = this.applied;
  }

  firstIndex(): number {
    return this.pendingSnapshot !== null ? this.pendingSnapshot.meta.index + 1 : this.reader.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.offset + this.unstable.length - 1;
    if (this.pendingSnapshot !== null) return this.pendingSnapshot.meta.index;
    return this.reader.lastIndex();
  }

  /** Highest index known durable and part of this log (what a leader may count for itself). */
  stableLastIndex(): number {
    if (this.pendingSnapshot !== null) return 0;
    return this.unstable.length > 0 ? this.offset - 1 : this.lastIndex();
  }

  term(i: number): Term | undefined {
    if (i >= this.offset && i < this.offset + this.unstable.length) return this.unstable[i - this.offset]!.term;
    if (this.pendingSnapshot !== null) {
      return i === this.pendingSnapshot.meta.index ? this.pendingSnapshot.meta.term : undefined;
    }
    if (i >= this.offset) return undefined;
    if (i === 0) return toTerm(0);
    return this.reader.term(logIndex(i));
  }

  lastTerm(): Term {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, 'last term unavailable');
    return t;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** Raft's "at least as up-to-date" check for votes. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** First entry whose term differs from ours (a real conflict, or new), or 0 when all match. */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /** Largest index <= index whose term <= t: where a conflicting follower may match (fast backtracking). */
  findConflictByTerm(index: number, t: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    const floor = this.firstIndex() - 1;
    for (; i >= floor; i--) {
      const ti = this.term(i);
      if (ti === undefined) break;
      if (ti <= t) return { index: i, term: ti };
    }
    return { index: Math.max(0, floor), term: 0 };
  }

  /** Appends after truncating any suffix at or above entries[0].index; never below commit. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    assert(first > this.committed, `truncating committed entry ${first} (commit ${this.committed})`);
    assert(first <= this.lastIndex() + 1, `gap: appending ${first} after ${this.lastIndex()}`);
    const end = this.offset + this.unstable.length;
    if (first === end) {
      for (const e of entries) this.unstable.push(e);
    } else if (first <= this.offset) {
      this.offset = first;
      this.unstable = entries.slice();
      this.handedOut = 0;
    } else {
      this.unstable.length = first - this.offset;
      this.handedOut = Math.min(this.handedOut, this.unstable.length);
      for (const e of entries) this.unstable.push(e);
    }
  }

  /** Entries [lo, hi) with at most maxBytes of payload (at least one). */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1, `entries [${lo}, ${hi}) out of range`);
    const out: Entry[] = [];
    let bytes = 0;
    if (lo < this.offset && this.pendingSnapshot === null) {
      const stableHi = Math.min(hi, this.offset);
      const got = this.reader.entries(logIndex(lo), logIndex(stableHi), maxBytes);
      assert(got.length > 0 && got[0]!.index === lo, `reader returned no entry at ${lo}`);
      for (const e of got) {
        out.push(e);
        bytes += e.data.length;
      }
      if (out.length < stableHi - lo || bytes >= maxBytes) return out;
      lo = stableHi;
    }
    for (let i = lo; i < hi; i++) {
      const e = this.unstable[i - this.offset]!;
      if (out.length > 0 && bytes + e.data.length > maxBytes) break;
      out.push(e);
      bytes += e.data.length;
    }
    return out;
  }

  commitTo(i: number): boolean {
    if (i <= this.committed) return false;
    assert(i <= this.lastIndex(), `commit ${i} beyond last index ${this.lastIndex()}`);
    this.committed = i;
    return true;
  }

  /** Replaces the whole log by a snapshot received from the leader. */
  restore(s: PendingSnapshot): void {
    assert(s.meta.index > this.committed, 'restoring a snapshot behind commit');
    this.pendingSnapshot = s;
    this.snapshotHandedOut = false;
    this.snapshotMeta = s.meta;
    this.unstable = [];
    this.handedOut = 0;
    this.offset = s.meta.index + 1;
    this.committed = s.meta.index;
    this.applying = s.meta.index;
  }

  /** The host compacted its log up to meta.index, covered by an application snapshot. */
  compacted(meta: SnapshotMeta): void {
    assert(meta.index <= this.applied, `compacting ${meta.index} beyond applied ${this.applied}`);
    if (this.snapshotMeta === null || meta.index > this.snapshotMeta.index) this.snapshotMeta = meta;
  }

  pendingSnapshotIndex(): number | null {
    return this.pendingSnapshot === null ? null : this.pendingSnapshot.meta.index;
  }

  latestSnapshot(): SnapshotMeta | null {
    const fromReader = this.reader.snapshot();
    if (fromReader !== null && (this.snapshotMeta === null || fromReader.index > this.snapshotMeta.index)) {
      this.snapshotMeta = fromReader;
    }
    return this.snapshotMeta;
  }

  // ---- Ready support ----

  hasUnsent(): boolean {
    return this.unstable.length > this.handedOut || (this.pendingSnapshot !== null && !this.snapshotHandedOut);
  }

  takeSnapshot(): PendingSnapshot | null {
    if (this.pendingSnapshot === null || this.snapshotHandedOut) return null;
    this.snapshotHandedOut = true;
    return this.pendingSnapshot;
  }

  /** Unstable entries not yet handed out, and whether they overwrite durable entries. */
  takeEntries(snapshotInSameReady: boolean): { entries: Entry[]; truncateFrom: number | null } {
    const entries = this.unstable.slice(this.handedOut);
    this.handedOut = this.unstable.length;
    if (entries.length === 0) return { entries, truncateFrom: null };
    const first = entries[0]!.index;
    const overwrites = !snapshotInSameReady && this.pendingSnapshot === null && first <= this.reader.lastIndex();
    return { entries, truncateFrom: overwrites ? first : null };
  }

  hasNextCommitted(): boolean {
    return this.applying < this.committed;
  }

  takeCommitted(maxBytes: number): Entry[] {
    if (this.applying >= this.committed) return [];
    const out = this.entries(this.applying + 1, this.committed + 1, maxBytes);
    this.applying = out[out.length - 1]!.index;
    return out;
  }

  /** The host persisted `written` (handed out in the Ready) and installed `snapshotIndex`. */
  stableTo(written: readonly Entry[], snapshotIndex: number | null): void {
    if (snapshotIndex !== null && this.pendingSnapshot !== null && this.pendingSnapshot.meta.index === snapshotIndex) {
      this.pendingSnapshot = null;
      this.snapshotHandedOut = false;
    }
    // The tail may have been replaced after the Ready was taken: stabilize only what still matches.
    for (let k = written.length - 1; k >= 0; k--) {
      const e = written[k]!;
      if (e.index < this.offset) break;
      if (this.matchTerm(e.index, e.term) && this.pendingSnapshot === null) {
        const drop = e.index - this.offset + 1;
        this.unstable = this.unstable.slice(drop);
        this.offset = e.index + 1;
        this.handedOut = Math.max(0, this.handedOut - drop);
        break;
      }
    }
  }

  appliedTo(i: number): void {
    assert(i <= this.applying && i >= this.applied, `applied ${i} outside [${this.applied}, ${this.applying}]`);
    this.applied = i;
  }
}
