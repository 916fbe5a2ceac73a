// The simulator's durable storage for one group on one node: what survives a crash. Implements
// the core's read-only LogReader and applies Readies; keeps a hash chain per entry for log matching.

import { assert } from '../../../src/lib/assert.js';
import type { LogIndex, Term } from '../../../src/lib/ids.js';
import { logIndex, term as toTerm } from '../../../src/lib/ids.js';
import type { Entry, GroupReady, HardState, LogReader, SnapshotMeta } from '../../../src/raft/index.js';

export function fnv(bytes: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0;
  return h;
}

/** Chain hash of an entry given its predecessor's: equal chains mean equal log prefixes. */
export function chainOf(prev: number, e: Entry): number {
  let h = Math.imul(prev ^ e.term, 0x01000193) >>> 0;
  h = Math.imul(h ^ e.type, 0x01000193) >>> 0;
  return fnv(e.data, h);
}

export interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

export class MemStorage implements LogReader {
  hardState: HardState = { term: toTerm(0), vote: null, commit: logIndex(0) };
  /** Entries from base + 1 on; chains[k] belongs to entries[k]. */
  entriesArr: Entry[] = [];
  chains: number[] = [];
  base = 0;
  baseTerm = 0;
  baseChain = 0;
  snap: StoredSnapshot | null = null;

  firstIndex(): LogIndex {
    return logIndex(this.base + 1);
  }

  lastIndex(): LogIndex {
    return logIndex(this.base + this.entriesArr.length);
  }

  term(i: LogIndex): Term | undefined {
    if (i === this.base) return toTerm(this.baseTerm);
    if (i < this.base || i > this.lastIndex()) return undefined;
    return this.entriesArr[i - this.base - 1]!.term;
  }

  chainAt(i: number): number | undefined {
    if (i === this.base) return this.baseChain;
    if (i < this.base || i > this.lastIndex()) return undefined;
    return this.chains[i - this.base - 1];
  }

  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    assert(lo > this.base && hi <= this.lastIndex() + 1 && lo < hi, `storage entries [${lo}, ${hi}) outside (${this.base}, ${this.lastIndex()}]`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.entriesArr[i - this.base - 1]!;
      if (out.length > 0 && bytes + e.data.length > maxBytes) break;
      out.push(e);
      bytes += e.data.length;
    }
    return out;
  }

  snapshot(): SnapshotMeta | null {
    return this.snap?.meta ?? null;
  }

  snapshotChunk(index: LogIndex, offset: number, maxBytes: number): { data: Uint8Array; done: boolean } | null {
    if (this.snap === null || this.snap.meta.index !== index) return null;
    const end = Math.min(this.snap.data.length, offset + maxBytes);
    return { data: this.snap.data.subarray(offset, end), done: end >= this.snap.data.length };
  }

  /** Applies the persistent part of a Ready; returns problems found (durability invariants). */
  persist(gr: GroupReady, chainFromSnapshot: (data: Uint8Array) => number): string[] {
    const problems: string[] = [];
    if (gr.snapshot !== null) {
      this.snap = gr.snapshot;
      this.base = gr.snapshot.meta.index;
      this.baseTerm = gr.snapshot.meta.term;
      this.baseChain = chainFromSnapshot(gr.snapshot.data);
      this.entriesArr = [];
      this.chains = [];
    }
    if (gr.entries.length > 0) {
      const first = gr.entries[0]!.index;
      if (gr.truncateFrom !== null) assert(gr.truncateFrom === first, 'truncateFrom must equal the first entry');
      else if (first <= this.lastIndex()) problems.push(`overwrite at ${first} without truncateFrom (last ${this.lastIndex()})`);
      assert(first > this.base && first <= this.lastIndex() + 1, `append ${first} leaves a gap after ${this.lastIndex()}`);
      this.entriesArr.length = first - this.base - 1;
      this.chains.length = first - this.base - 1;
      for (const e of gr.entries) {
        const prev = this.chainAt(e.index - 1)!;
        this.entriesArr.push(e);
        this.chains.push(chainOf(prev, e));
      }
    }
    if (gr.hardState !== null) {
      const old = this.hardState;
      const hs = gr.hardState;
      if (hs.term < old.term) problems.push(`durable term went back ${old.term} -> ${hs.term}`);
      if (hs.term === old.term && old.vote !== null && hs.vote !== old.vote) problems.push(`voted twice in term ${hs.term}`);
      if (hs.commit < old.commit) problems.push(`durable commit went back ${old.commit} -> ${hs.commit}`);
      if (hs.commit > this.lastIndex()) problems.push(`durable commit ${hs.commit} beyond last index ${this.lastIndex()}`);
      this.hardState = hs;
    }
    return problems;
  }

  /** The application snapshotted at `meta.index`: drop the log up to it. */
  compact(s: StoredSnapshot): void {
    const i = s.meta.index;
    assert(i > this.base && i <= this.lastIndex(), 'compaction point outside the log');
    const chain = this.chainAt(i)!;
    this.entriesArr = this.entriesArr.slice(i - this.base);
    this.chains = this.chains.slice(i - this.base);
    this.base = i;
    this.baseTerm = s.meta.term;
    this.baseChain = chain;
    this.snap = s;
  }
}
