// The in-memory index of one group's log: where each entry lives (segment, offset, length) and its
// term, for the Raft range [firstIndex, lastIndex] (dense) plus sparse live entries below it.

import { assert } from '../lib/assert.js';
import type { GroupId } from '../lib/ids.js';

/** Where a record sits on disk; `offset` is the record start (header), `bytes` its payload size. */
export interface Location {
  segment: number;
  offset: number;
  bytes: number;
  term: number;
  /** Entry type byte chosen by the Raft layer (normal, configuration change...). */
  kind: number;
}

/** Told whenever a record becomes needed or garbage, so segments know their live bytes. */
export interface LiveAccounting {
  added(segment: number, recordBytes: number): void;
  removed(segment: number, recordBytes: number): void;
}

export interface HardState {
  term: number;
  vote: string;
  commit: number;
}

const initialCapacity = 16;

export class GroupLog {
  /** Raft range: entries firstIndex..lastIndex are all present (dense). */
  firstIndex = 1;
  lastIndex = 0;
  /** Term of the entry at firstIndex-1 (snapshot or dropped prefix); 0 if none. */
  prevTerm = 0;
  hardState: HardState = { term: 0, vote: '', commit: 0 };
  /** Why the group cannot be trusted (mid-log damage), or undefined. */
  corruption: string | undefined;
  /** Entries whose body failed its CRC (header intact: we know index and term). */
  readonly damaged = new Set<number>();
  /** Retained entries below firstIndex (live by the state machine's report). */
  readonly sparse = new Map<number, Location>();

  private seg = new Int32Array(initialCapacity);
  private off = new Float64Array(initialCapacity);
  private len = new Uint32Array(initialCapacity);
  private terms = new Float64Array(initialCapacity);
  private kinds = new Uint8Array(initialCapacity);
  /** Bodies of recent dense entries, set and evicted by the WAL's cache (no hashing per entry). */
  private bodies: Array<Uint8Array | undefined> = new Array<Uint8Array | undefined>(initialCapacity);
  /** Cached bodies of entries that moved to the sparse set (rare: kept live right after append). */
  private readonly sparseBodies = new Map<number, Uint8Array>();
  private start = 0;

  constructor(
    readonly id: GroupId,
    readonly num: number,
    private readonly accounting: LiveAccounting,
    private readonly headerBytes: number,
  ) {}

  get count(): number {
    return this.lastIndex - this.firstIndex + 1;
  }

  /** Location of an entry in the dense range or the sparse set, or undefined. */
  locate(index: number): Location | undefined {
    if (index >= this.firstIndex && index <= this.lastIndex) {
      const p = this.start + index - this.firstIndex;
      return { segment: this.seg[p]!, offset: this.off[p]!, bytes: this.len[p]!, term: this.terms[p]!, kind: this.kinds[p]! };
    }
    return this.sparse.get(index);
  }

  /** The cached body of a dense entry, if the cache still holds it. */
  cachedBody(index: number): Uint8Array | undefined {
    if (index < this.firstIndex || index > this.lastIndex) return this.sparseBodies.get(index);
    return this.bodies[this.start + index - this.firstIndex];
  }

  /** The cache keeps `body` for an entry just written at its current location. */
  setBody(index: number, body: Uint8Array): void {
    if (index >= this.firstIndex && index <= this.lastIndex) this.bodies[this.start + index - this.firstIndex] = body;
    else if (this.sparse.has(index)) this.sparseBodies.set(index, body);
  }

  /** The cache lets go of the body of the record at (segment, offset), if the slot still holds it
   * (a truncated and rewritten index holds another record, maybe with the same body object). */
  dropBody(index: number, segment: number, offset: number): void {
    if (index < this.firstIndex || index > this.lastIndex) {
      const loc = this.sparse.get(index);
      if (loc !== undefined && loc.segment === segment && loc.offset === offset) this.sparseBodies.delete(index);
      return;
    }
    const p = this.start + index - this.firstIndex;
    if (this.seg[p] === segment && this.off[p] === offset) this.bodies[p] = undefined;
  }

  /** Term of a dense entry, or of firstIndex-1; undefined outside. */
  term(index: number): number | undefined {
    if (index >= this.firstIndex && index <= this.lastIndex) return this.terms[this.start + index - this.firstIndex]!;
    if (index === this.firstIndex - 1) return this.prevTerm;
    return undefined;
  }

  /** Appends at lastIndex+1 (the caller truncates first when needed). */
  push(index: number, loc: Location): void {
    if (!(index === this.lastIndex + 1)) assert(false, `append at ${index} after last ${this.lastIndex}`);
    let p = this.start + this.count;
    if (p === this.seg.length) p = this.makeRoom();
    this.seg[p] = loc.segment;
    this.off[p] = loc.offset;
    this.len[p] = loc.bytes;
    this.terms[p] = loc.term;
    this.kinds[p] = loc.kind;
    this.bodies[p] = undefined;
    this.lastIndex = index;
    this.accounting.added(loc.segment, loc.bytes + this.headerBytes);
  }

  /** Moves a dense or sparse entry's location (compaction rewrote it). */
  relocate(index: number, loc: Location, force = false): boolean {
    const old = this.locate(index);
    if (old === undefined || (old.term !== loc.term && !force)) return false;
    this.accounting.removed(old.segment, old.bytes + this.headerBytes);
    this.accounting.added(loc.segment, loc.bytes + this.headerBytes);
    if (index >= this.firstIndex && index <= this.lastIndex) {
      const p = this.start + index - this.firstIndex;
      this.seg[p] = loc.segment;
      this.off[p] = loc.offset;
      this.terms[p] = loc.term;
      this.kinds[p] = loc.kind;
    } else {
      this.sparse.set(index, loc);
    }
    return true;
  }

  /** Drops dense entries >= from (a conflicting suffix). */
  truncateFrom(from: number): void {
    if (!(from >= this.firstIndex)) assert(false, `truncate at ${from} below first ${this.firstIndex}`);
    for (let i = this.lastIndex; i >= from; i--) this.dropDense(i);
    this.lastIndex = Math.min(this.lastIndex, from - 1);
  }

  /** Drops every retained entry >= from, dense or sparse, even below firstIndex (recovery). */
  truncateAny(from: number): void {
    if (from >= this.firstIndex) { this.truncateFrom(from); return; }
    for (let i = this.lastIndex; i >= this.firstIndex; i--) this.dropDense(i);
    for (const [i, loc] of this.sparse) if (i >= from) this.dropSparse(i, loc);
    this.firstIndex = from;
    this.lastIndex = from - 1;
    this.start = 0;
  }

  /** Recovery: places a sparse entry (a relocated copy below the dense range). */
  placeSparse(index: number, loc: Location): void {
    const old = this.sparse.get(index);
    if (old !== undefined) this.accounting.removed(old.segment, old.bytes + this.headerBytes);
    this.sparse.set(index, loc);
    this.accounting.added(loc.segment, loc.bytes + this.headerBytes);
  }

  /**
   * Recovery: makes firstIndex equal `target` using sparse entries for target..firstIndex-1.
   * Returns the first missing index when the log has a hole there (data lost), else undefined.
   */
  extendBackTo(target: number): number | undefined {
    if (target >= this.firstIndex) return undefined;
    for (let i = target; i < this.firstIndex; i++) if (!this.sparse.has(i)) return i;
    const locs: Location[] = [];
    for (let i = target; i <= this.lastIndex; i++) locs.push(this.locate(i)!);
    const n = locs.length;
    let cap = initialCapacity;
    while (cap < n) cap *= 2;
    this.seg = new Int32Array(cap);
    this.off = new Float64Array(cap);
    this.len = new Uint32Array(cap);
    this.terms = new Float64Array(cap);
    this.kinds = new Uint8Array(cap);
    this.bodies = new Array<Uint8Array | undefined>(cap);
    locs.forEach((l, k) => {
      this.seg[k] = l.segment; this.off[k] = l.offset; this.len[k] = l.bytes; this.terms[k] = l.term; this.kinds[k] = l.kind;
    });
    for (let i = target; i < this.firstIndex; i++) this.sparse.delete(i);
    this.start = 0;
    this.firstIndex = target;
    return undefined;
  }

  /** Recovery: sparse entries right below firstIndex rejoin the dense range (relocated copies
   * are replayed after the entries that followed them). */
  absorbSparseBelow(): void {
    let t = this.firstIndex;
    while (t > 1 && this.sparse.has(t - 1)) t--;
    if (t < this.firstIndex) this.extendBackTo(t);
  }

  /** Discards the whole log: a snapshot at (index, term) replaces it. */
  reset(index: number, term: number): void {
    for (let i = this.lastIndex; i >= this.firstIndex; i--) this.dropDense(i);
    for (const [i, loc] of this.sparse) this.dropSparse(i, loc);
    this.damaged.clear();
    this.firstIndex = index + 1;
    this.lastIndex = index;
    this.prevTerm = term;
    this.start = 0;
  }

  /**
   * The state machine no longer needs entries below `from` except `keep` (sorted or not):
   * dense entries below `from` move to the sparse set or become garbage.
   */
  setLive(from: number, keep: ReadonlySet<number>): void {
    if (!(from <= this.lastIndex + 1)) assert(false, `live from ${from} beyond last ${this.lastIndex}`);
    for (const [i, loc] of this.sparse) if (!keep.has(i) || i >= from) this.dropSparse(i, loc);
    if (from <= this.firstIndex) return;
    this.prevTerm = this.term(from - 1) ?? this.prevTerm;
    for (let i = this.firstIndex; i < from; i++) {
      const p = this.start + i - this.firstIndex;
      const loc = { segment: this.seg[p]!, offset: this.off[p]!, bytes: this.len[p]!, term: this.terms[p]!, kind: this.kinds[p]! };
      if (keep.has(i)) {
        this.sparse.set(i, loc);
        const body = this.bodies[p];
        if (body !== undefined) this.sparseBodies.set(i, body);
      } else {
        this.accounting.removed(loc.segment, loc.bytes + this.headerBytes);
      }
      this.bodies[p] = undefined;
      if (!keep.has(i)) this.damaged.delete(i);
    }
    this.start += from - this.firstIndex;
    this.firstIndex = from;
    if (this.count === 0) this.start = 0;
  }

  /**
   * Recovery only: the log restarts at `index` because the entries before it are gone (their
   * segments were deleted as garbage). Present dense entries become sparse candidates; the
   * persisted live report decides later which of them stay.
   */
  restartAt(index: number, prevTerm: number): void {
    for (let i = this.firstIndex; i <= this.lastIndex; i++) {
      const loc = this.locate(i);
      if (loc !== undefined) this.sparse.set(i, loc);
    }
    this.firstIndex = index;
    this.lastIndex = index - 1;
    this.prevTerm = prevTerm;
    this.start = 0;
  }

  /** Recovery check: the first dense index whose term is below its predecessor's, if any. */
  firstTermDecrease(): number | undefined {
    let prev = this.prevTerm;
    for (let i = this.firstIndex; i <= this.lastIndex; i++) {
      const t = this.terms[this.start + i - this.firstIndex]!;
      if (t < prev) return i;
      prev = t;
    }
    return undefined;
  }

  /** Every retained location (dense then sparse), for compaction and group removal. */
  *locations(): IterableIterator<[number, Location]> {
    for (let i = this.firstIndex; i <= this.lastIndex; i++) yield [i, this.locate(i)!];
    for (const e of this.sparse) yield e;
  }

  /** Forgets everything (group removed): all its records become garbage. */
  clear(): void {
    this.reset(0, 0);
    this.firstIndex = 1;
    this.lastIndex = 0;
  }

  private dropDense(i: number): void {
    const p = this.start + i - this.firstIndex;
    this.accounting.removed(this.seg[p]!, this.len[p]! + this.headerBytes);
    this.bodies[p] = undefined;
    this.damaged.delete(i);
  }

  private dropSparse(i: number, loc: Location): void {
    this.accounting.removed(loc.segment, loc.bytes + this.headerBytes);
    this.sparse.delete(i);
    this.sparseBodies.delete(i);
    this.damaged.delete(i);
  }

  private makeRoom(): number {
    const n = this.count;
    if (this.start >= this.seg.length / 2) {
      this.seg.copyWithin(0, this.start, this.start + n);
      this.off.copyWithin(0, this.start, this.start + n);
      this.len.copyWithin(0, this.start, this.start + n);
      this.terms.copyWithin(0, this.start, this.start + n);
      this.kinds.copyWithin(0, this.start, this.start + n);
      this.bodies.copyWithin(0, this.start, this.start + n);
      this.bodies.fill(undefined, n);
    } else {
      const cap = this.seg.length * 2;
      this.seg = grow(new Int32Array(cap), this.seg, this.start, n);
      this.off = grow(new Float64Array(cap), this.off, this.start, n);
      this.len = grow(new Uint32Array(cap), this.len, this.start, n);
      this.terms = grow(new Float64Array(cap), this.terms, this.start, n);
      this.kinds = grow(new Uint8Array(cap), this.kinds, this.start, n);
      const bodies = new Array<Uint8Array | undefined>(cap);
      for (let k = 0; k < n; k++) bodies[k] = this.bodies[this.start + k];
      this.bodies = bodies;
    }
    this.start = 0;
    return n;
  }
}

function grow<T extends Int32Array | Float64Array | Uint32Array | Uint8Array>(to: T, from: T, start: number, n: number): T {
  to.set(from.subarray(start, start + n) as never);
  return to;
}
