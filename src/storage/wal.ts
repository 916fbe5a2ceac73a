// The node's write-ahead log for all Raft groups: group-committed appends (one write and one
// fdatasync per batch), synchronous reads through a per-group index, live-range compaction,
// hard state and snapshots (files + `level`), recovery and corruption reporting.

import { closeSync, fstatSync, ftruncateSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../lib/assert.js';
import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import type { GroupId, LogIndex, Term } from '../lib/ids.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { BodyCache } from './body-cache.js';
import { listSegmentIds, removeQuietly, segmentFileName, writeFileDurably } from './files.js';
import { fsError } from './fs-errors.js';
import { GroupCommit, type FsyncHistograms } from './group-commit.js';
import { GroupLog, type HardState, type Location } from './group-log.js';
import { defaultStorageLimits, validateStorageLimits, type StorageLimits } from './limits.js';
import { metaKey, MetaStore, type MetaContents, type MetaOp, type PersistedSnapshot } from './meta-store.js';
import { decodeRecord, headerBytes, newDecoded, RecordType } from './record.js';
import { mergeHardState, readWhole, replaySegment } from './recovery.js';
import type { Segment } from './segment.js';
import { fillTrailer, planTrailer, splitTrailer, type KeptEntry, type TrailerPlan } from './snapshot-trailer.js';
import { nodeWalIo, type WalIo } from './wal-io.js';

export interface LogEntry {
  index: LogIndex;
  term: Term;
  /** Entry type byte of the Raft layer (0 normal, 1 configuration change, ...); 0 if absent. */
  type?: number;
  data: Uint8Array;
}

export interface SnapshotMeta {
  index: LogIndex;
  term: Term;
  /** Opaque membership blob (voters, learners, joint state), encoded by the Raft layer. */
  membership: Uint8Array;
}

/** The synchronous, read-only view of one group's stable log that the Raft core reads. */
export interface LogReader {
  firstIndex(): LogIndex;
  lastIndex(): LogIndex;
  /** Term of an entry in [firstIndex-1, lastIndex]; undefined outside (compacted or absent). */
  term(index: LogIndex): Term | undefined;
  /** Entries [lo, hi) up to maxBytes of data, at least one when lo < hi. */
  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): LogEntry[];
  snapshot(): SnapshotMeta | undefined;
}

export interface WalOptions {
  limits?: Partial<StorageLimits>;
  logger?: Logger;
  /** The file calls on segments; the real ones by default (tests inject failures here). */
  io?: WalIo;
  /**
   * Called when writes start failing (disk full, permission denied, I/O error: `failure` names the
   * file and the groups of the batch, which is retried with backoff while flush() waits) and, with
   * undefined, when a retry succeeded: on changes only. The node raises its disk alarm on this.
   */
  onWriteAlarm?: (failure: OperatingError | undefined) => void;
}

export interface RecoveryReport {
  durationMs: number;
  segments: number;
  records: number;
  bytes: number;
  groups: number;
  tornTailBytes: number;
  /** Records of numeric ids the registry never recorded (a creation that never became durable,
   * or a lost `level` store: then the log is useless and the node must rejoin as a new replica). */
  unregisteredRecords: number;
  corruptedGroups: GroupId[];
  damage: string[];
}

export interface CompactionReport {
  deletedSegments: number;
  rewrittenRecords: number;
  rewrittenBytes: number;
  diskBytes: number;
}

export interface WalStats {
  segments: number;
  diskBytes: number;
  liveBytes: number;
  batches: number;
  fsyncs: number;
  recordsWritten: number;
  bytesWritten: number;
  cacheBytes: number;
}

const utf8 = new TextEncoder();

export class WriteAheadLog {
  private readonly groupsById = new Map<GroupId, GroupLog>();
  private readonly groupsByNum = new Map<number, GroupLog>();
  private readonly snapshots = new Map<number, PersistedSnapshot>();
  private readonly hardStateDirty = new Set<GroupLog>();
  private readonly liveDirty = new Set<GroupLog>();
  /** Per group (numeric id): the kept entries its current snapshot is sent with, by snapshot index. */
  private readonly trailers = new Map<number, { index: number; plan: TrailerPlan | null }>();
  private readonly cache: BodyCache;
  private readonly writer: GroupCommit;
  private nextNum = 1;
  private compacting: Promise<CompactionReport> | undefined;
  /** Groups whose marks the checkpoint being written cleared (restored if it fails). */
  private checkpointing: { hardStates: GroupLog[]; live: GroupLog[] } | undefined;
  private closed = false;
  recovery!: RecoveryReport;

  private constructor(
    private readonly dir: string,
    private readonly meta: MetaStore,
    private readonly limits: StorageLimits,
    private readonly logger: Logger,
    options: WalOptions,
  ) {
    this.writer = new GroupCommit(dir, meta, limits, logger, () => this.cache.evict(), {
      io: options.io ?? nodeWalIo,
      onAlarm: (failure) => options.onWriteAlarm?.(failure),
    });
    this.cache = new BodyCache(limits.cacheBytesMax, (s, o) => this.writer.isWritten(s, o));
  }

  /** Opens (creating if needed) the log in `dir` and recovers it. */
  static async open(dir: string, options: WalOptions = {}): Promise<WriteAheadLog> {
    const limits = { ...defaultStorageLimits, ...options.limits };
    const problems = validateStorageLimits(limits);
    if (problems.length > 0) throw new OperatingError(OperatingErrorCode.BadConfig, `storage limits: ${problems.join('; ')}`);
    const logger = options.logger ?? silentLogger;
    try {
      mkdirSync(join(dir, 'snapshots'), { recursive: true });
    } catch (e) {
      throw fsError(e, 'create directory', dir, []);
    }
    let meta: MetaStore;
    try {
      meta = await MetaStore.open(join(dir, 'meta'));
    } catch (e) {
      throw fsError((e as { cause?: unknown }).cause ?? e, 'open level store', join(dir, 'meta'), []);
    }
    const wal = new WriteAheadLog(dir, meta, limits, logger, options);
    await wal.recover();
    return wal;
  }

  // ---- group registry ----

  createGroup(id: GroupId): void {
    this.checkWritable();
    if (this.groupsById.has(id)) assert(false, `group ${id} exists`);
    assert(this.groupsById.size < this.limits.groupsMax, 'too many groups');
    const g = this.addGroupLog(id, this.nextNum++);
    const ops = this.writer.metaOps();
    ops.push({ type: 'put', key: metaKey.group(g.num), value: { id, num: g.num, removed: false } });
    ops.push({ type: 'put', key: metaKey.nextNum, value: this.nextNum });
  }

  /** Removes a group: its records become garbage, its snapshot file is deleted once durable. */
  removeGroup(id: GroupId): void {
    this.checkWritable();
    const g = this.group(id);
    g.clear();
    this.groupsById.delete(id);
    this.groupsByNum.delete(g.num);
    this.hardStateDirty.delete(g);
    this.liveDirty.delete(g);
    this.trailers.delete(g.num);
    const ops = this.writer.metaOps();
    ops.push({ type: 'put', key: metaKey.group(g.num), value: { id, num: g.num, removed: true } });
    for (const key of [metaKey.hardState(g.num), metaKey.snapshot(g.num), metaKey.live(g.num)]) ops.push({ type: 'del', key });
    const snap = this.snapshots.get(g.num);
    this.snapshots.delete(g.num);
    if (snap !== undefined) this.writer.afterDurable(() => removeQuietly(join(this.dir, 'snapshots', snap.file)));
  }

  hasGroup(id: GroupId): boolean {
    return this.groupsById.has(id);
  }

  groupIds(): GroupId[] {
    return [...this.groupsById.keys()];
  }

  // ---- writes: buffered into the current batch, durable when flush() resolves ----

  /** Appends entries; if the first index is at or below lastIndex, the suffix from it is truncated first. */
  append(id: GroupId, entries: readonly LogEntry[]): void {
    this.checkWritable();
    const g = this.group(id);
    const first = entries[0];
    if (first === undefined) return;
    if (!(first.index >= g.firstIndex)) assert(false, `group ${id}: append at ${first.index} below first index ${g.firstIndex}`);
    if (!(first.index <= g.lastIndex + 1)) assert(false, `group ${id}: append at ${first.index} leaves a gap after ${g.lastIndex}`);
    if (first.index <= g.lastIndex) this.writeTruncate(g, first.index);
    let prevTerm = g.term(first.index - 1) ?? 0;
    for (const e of entries) {
      if (!(e.index === g.lastIndex + 1)) assert(false, `group ${id}: entries not contiguous at ${e.index}`);
      if (!(e.term >= prevTerm)) assert(false, `group ${id}: term goes back at ${e.index}`);
      if (!(e.data.length <= this.limits.recordPayloadBytesMax)) assert(false, `group ${id}: entry ${e.index} too large`);
      const loc = this.writer.writeRecord(g, RecordType.Entry, e.index, e.term, e.data, e.type ?? 0);
      g.push(e.index, loc);
      this.cache.add(g, e.index, e.data, loc.segment, loc.offset);
      prevTerm = e.term;
    }
  }

  /** Drops entries >= fromIndex with a superseding record (never an in-place rewrite). */
  truncateSuffix(id: GroupId, fromIndex: LogIndex): void {
    this.checkWritable();
    const g = this.group(id);
    if (!(fromIndex >= g.firstIndex)) assert(false, `group ${id}: truncate at ${fromIndex} below first index ${g.firstIndex}`);
    if (fromIndex <= g.lastIndex) this.writeTruncate(g, fromIndex);
  }

  /** Hard state (term, vote, commit): written in the same batch and fdatasync as the entries;
   * a new term or vote also in the flush's synced `level` batch. */
  setHardState(id: GroupId, hs: { term: Term; vote: string; commit: LogIndex }): void {
    this.checkWritable();
    const g = this.group(id);
    const old = g.hardState;
    if (old.term === hs.term && old.vote === hs.vote && old.commit === hs.commit) return;
    if (!(hs.term >= old.term)) assert(false, `group ${id}: term goes back`);
    if (!(hs.term > old.term || old.vote === '' || old.vote === hs.vote)) assert(false, `group ${id}: vote changes within term ${hs.term}`);
    const vote = utf8.encode(hs.vote);
    this.writer.writeRecord(g, RecordType.HardState, hs.commit, hs.term, vote);
    g.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
    if (hs.term !== old.term || hs.vote !== old.vote) {
      // Elections are rare: term and vote also go to `level` (synced, in the same flush), so
      // they never depend on the log alone. Commit-only changes ride in the log.
      this.writer.metaOps().push({ type: 'put', key: metaKey.hardState(g.num), value: g.hardState });
    } else {
      this.hardStateDirty.add(g);
    }
  }

  /**
   * Writes everything buffered with one write and one fdatasync (plus one synced `level` batch if
   * the registry changed). If a batch is in flight, what is buffered now goes in the next one.
   * Resolves when durable; rejects with an OperatingError naming the file and groups.
   */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  // ---- reads: synchronous ----

  firstIndex(id: GroupId): LogIndex {
    return this.group(id).firstIndex as LogIndex;
  }

  lastIndex(id: GroupId): LogIndex {
    return this.group(id).lastIndex as LogIndex;
  }

  term(id: GroupId, index: LogIndex): Term | undefined {
    return this.group(id).term(index) as Term | undefined;
  }

  /** Entries [lo, hi) of the Raft range, up to maxBytes of data (always at least one). */
  entries(id: GroupId, lo: LogIndex, hi: LogIndex, maxBytes: number): LogEntry[] {
    const g = this.group(id);
    if (!(lo >= g.firstIndex && hi <= g.lastIndex + 1 && lo <= hi)) assert(false, `group ${id}: entries [${lo}, ${hi}) outside [${g.firstIndex}, ${g.lastIndex + 1})`);
    const out: LogEntry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const loc = g.locate(i)!;
      if (out.length > 0 && bytes + loc.bytes > maxBytes) break;
      out.push({ index: i as LogIndex, term: loc.term as Term, type: loc.kind, data: this.body(g, i, loc) });
      bytes += loc.bytes;
    }
    return out;
  }

  /** Any retained entry, in the Raft range or kept live below it (a body to deliver). */
  entry(id: GroupId, index: LogIndex): LogEntry | undefined {
    const g = this.group(id);
    const loc = g.locate(index);
    if (loc === undefined) return undefined;
    return { index, term: loc.term as Term, type: loc.kind, data: this.body(g, index, loc) };
  }

  hardState(id: GroupId): HardState {
    return { ...this.group(id).hardState };
  }

  reader(id: GroupId): LogReader {
    return {
      firstIndex: () => this.firstIndex(id),
      lastIndex: () => this.lastIndex(id),
      term: (i) => this.term(id, i),
      entries: (lo, hi, maxBytes) => this.entries(id, lo, hi, maxBytes),
      snapshot: () => this.snapshotMeta(id),
    };
  }

  // ---- live ranges and compaction ----

  /**
   * The group needs entries >= from (the Raft range starts there; call it at or below the Raft
   * snapshot point + 1) and, below that, only `keep`. Everything else becomes garbage.
   */
  setLive(id: GroupId, from: LogIndex, keep: Iterable<LogIndex> = []): void {
    const g = this.group(id);
    g.setLive(Math.max(from, g.firstIndex), new Set<number>(keep));
    this.liveDirty.add(g);
    this.trailers.delete(g.num);
  }

  /**
   * Rewrites live records of old sparse segments, then deletes segments no group needs. `idle`
   * (nothing was written since the last compaction) also lets go of a mostly dead head segment
   * (limits.idleHeadRollBytesMin).
   */
  compact(options: { idle?: boolean } = {}): Promise<CompactionReport> {
    this.checkWritable();
    this.compacting ??= this.runCompaction(options.idle === true).finally(() => { this.compacting = undefined; });
    return this.compacting;
  }

  // ---- snapshots ----

  /** Records the group's own snapshot (file, then `level`); the log is not touched. */
  async saveSnapshot(id: GroupId, meta: SnapshotMeta, data: Uint8Array): Promise<void> {
    this.checkWritable();
    const g = this.group(id);
    await this.writeSnapshot(g, meta, data, []);
  }

  /**
   * Installs a snapshot received from the leader (as snapshotChunk sent it): recorded, then the
   * group's log is discarded; the kept entries that came after the snapshot's bytes become this
   * log's kept entries below it. Returns the snapshot's own bytes (what the state machine restores).
   */
  async installSnapshot(id: GroupId, meta: SnapshotMeta, data: Uint8Array): Promise<Uint8Array> {
    this.checkWritable();
    const g = this.group(id);
    const { snapshot, entries } = splitTrailer(data);
    for (const e of entries) assert(e.index <= meta.index, `group ${id}: kept entry ${e.index} above snapshot ${meta.index}`);
    const live = { from: meta.index + 1, prevTerm: meta.term, keep: entries.map((e) => e.index) };
    await this.writeSnapshot(g, meta, snapshot, [{ type: 'put', key: metaKey.live(g.num), value: live }]);
    if (this.groupsByNum.get(g.num) !== g) return snapshot; // removed meanwhile
    this.trailers.delete(g.num);
    const loc = this.writer.writeRecord(g, RecordType.Reset, meta.index, meta.term, undefined);
    this.writer.segments.get(loc.segment)!.supersedes = true;
    g.reset(meta.index, meta.term);
    // After the Reset record: replay places them below the new first index, as kept entries.
    for (const e of entries) {
      const at = this.writer.writeRecord(g, RecordType.Relocated, e.index, e.term, e.data, e.kind);
      g.placeSparse(e.index, at);
      this.cache.add(g, e.index, e.data, at.segment, at.offset);
    }
    await this.flush();
    return snapshot;
  }

  snapshotMeta(id: GroupId): SnapshotMeta | undefined {
    const s = this.snapshots.get(this.group(id).num);
    if (s === undefined) return undefined;
    return { index: s.index as LogIndex, term: s.term as Term, membership: Buffer.from(s.membership, 'base64') };
  }

  readSnapshot(id: GroupId): Uint8Array | undefined {
    const g = this.group(id);
    const s = this.snapshots.get(g.num);
    if (s === undefined) return undefined;
    const path = join(this.dir, 'snapshots', s.file);
    try {
      return readFileSync(path);
    } catch (e) {
      throw fsError(e, 'read snapshot', path, [g.id]);
    }
  }

  /**
   * Bytes [offset, offset + maxBytes) of what the group's snapshot at `index` is sent as, read
   * synchronously (the leader streams it to a follower in chunks): the snapshot file, then a
   * trailer of the entries the log retains at or below `index` (kept entries: see
   * snapshot-trailer.ts; none for most groups). Undefined if that snapshot is not the current one.
   */
  snapshotChunk(id: GroupId, index: LogIndex, offset: number, maxBytes: number): { data: Uint8Array; done: boolean } | undefined {
    const g = this.group(id);
    const s = this.snapshots.get(g.num);
    if (s === undefined || s.index !== index) return undefined;
    const plan = this.trailerOf(g, s.index);
    const total = s.bytes + (plan?.bytes ?? 0);
    const n = Math.max(0, Math.min(maxBytes, total - offset));
    const data = Buffer.allocUnsafe(n);
    const fromFile = Math.max(0, Math.min(n, s.bytes - offset));
    if (fromFile > 0) this.readSnapshotBytes(g, s, offset, data, fromFile);
    if (plan !== null && n > fromFile) {
      fillTrailer(plan, offset + fromFile - s.bytes, offset + n - s.bytes, data, fromFile, (i) => this.keptEntry(g, i));
    }
    return { data, done: offset + n >= total };
  }

  /** The kept entries (every retained entry at or below the snapshot point) in index order. */
  private trailerOf(g: GroupLog, index: number): TrailerPlan | null {
    const cached = this.trailers.get(g.num);
    if (cached !== undefined && cached.index === index) return cached.plan;
    const entries: Array<[number, number]> = [];
    for (const [i, loc] of g.locations()) if (i <= index) entries.push([i, loc.bytes]);
    entries.sort((a, b) => a[0] - b[0]);
    const plan = planTrailer(entries);
    this.trailers.set(g.num, { index, plan });
    return plan;
  }

  private keptEntry(g: GroupLog, index: number): KeptEntry {
    const loc = g.locate(index);
    if (loc === undefined) assert(false, `group ${g.id}: kept entry ${index} is gone while its snapshot is sent`);
    return { index, term: loc.term, kind: loc.kind, data: this.body(g, index, loc) };
  }

  private readSnapshotBytes(g: GroupLog, s: PersistedSnapshot, offset: number, data: Buffer, n: number): void {
    const path = join(this.dir, 'snapshots', s.file);
    let fd: number | undefined;
    try {
      fd = openSync(path, 'r');
      let got = 0;
      while (got < n) {
        const r = readSync(fd, data, got, n - got, offset + got);
        if (r === 0) break;
        got += r;
      }
      if (got !== n) throw this.corrupt(g, path, `snapshot file is shorter than its recorded ${s.bytes} bytes`);
    } catch (e) {
      throw fsError(e, 'read snapshot', path, [g.id]);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  // ---- health and stats ----

  /** Groups with damaged records mid-log: they must not vote or serve until repaired from peers. */
  corruptedGroups(): GroupId[] {
    return [...this.groupsById.values()].filter((g) => g.corruption !== undefined).map((g) => g.id);
  }

  corruption(id: GroupId): string | undefined {
    return this.group(id).corruption;
  }

  /** The write failure that stopped the log (a failed fdatasync or level write, or retries exhausted), if any. */
  failure(): OperatingError | undefined {
    return this.writer.failure();
  }

  /** The write failure being retried now (flushes wait for it), if any. */
  writeAlarm(): OperatingError | undefined {
    return this.writer.writeAlarm();
  }

  /** From now on a failed write is final and a retry pause ends now: for closing while the disk
   * fails (what the failing batch holds was never acknowledged). close() does this itself. */
  stopRetrying(): void {
    this.writer.stopRetrying();
  }

  /** Per fdatasync: latency, records and bytes (live histograms, read at scrape time). */
  fsyncHistograms(): FsyncHistograms {
    return this.writer.perFsync;
  }

  stats(): WalStats {
    return { ...this.writer.stats(), cacheBytes: this.cache.bytes };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      // Close does not wait for free space: what a failing write still holds was never acknowledged.
      this.writer.stopRetrying();
      await this.compacting?.catch(() => {});
      await this.writer.settled();
      if (this.writer.failure() === undefined) {
        await this.flush();
        await this.writeCheckpoint(this.checkpointOps()); // a clean restart recovers exact live ranges
      } else {
        await this.writer.settled();
      }
    } finally {
      this.closed = true;
      this.writer.closeFiles();
      await this.meta.close();
    }
  }

  // ---- internals ----

  private group(id: GroupId): GroupLog {
    const g = this.groupsById.get(id);
    if (g === undefined) assert(false, `unknown group ${id}`);
    return g;
  }

  private checkWritable(): void {
    assert(!this.closed, 'write-ahead log is closed');
    const failed = this.writer.failure();
    if (failed !== undefined) throw failed;
  }

  private addGroupLog(id: GroupId, num: number): GroupLog {
    const g = new GroupLog(id, num, this.writer, headerBytes);
    this.groupsById.set(id, g);
    this.groupsByNum.set(num, g);
    return g;
  }

  private writeTruncate(g: GroupLog, from: number): void {
    const loc = this.writer.writeRecord(g, RecordType.Truncate, from, 0, undefined);
    this.writer.segments.get(loc.segment)!.supersedes = true;
    g.truncateFrom(from);
  }

  // ---- internals: reads ----

  private body(g: GroupLog, index: number, loc: Location): Uint8Array {
    const cached = g.cachedBody(index);
    if (cached !== undefined) return cached;
    const s = this.writer.segments.get(loc.segment);
    if (!(s !== undefined && loc.offset < s.written)) assert(false, `group ${g.id}: body of ${index} neither cached nor written`);
    if (g.damaged.has(index)) throw this.corrupt(g, s.path, `body of index ${index} failed its CRC at recovery`);
    const n = headerBytes + loc.bytes;
    const buf = Buffer.allocUnsafe(n);
    let got = 0;
    try {
      while (got < n) {
        const r = readSync(s.fd, buf, got, n - got, loc.offset + got);
        if (r === 0) break;
        got += r;
      }
    } catch (e) {
      throw fsError(e, 'read', s.path, [g.id]);
    }
    const d = newDecoded();
    decodeRecord(buf, 0, got, d);
    if (d.status !== 'ok' || d.header.group !== g.num || d.header.index !== index) {
      g.damaged.add(index);
      throw this.corrupt(g, s.path, `record of index ${index} at ${loc.offset} is ${d.status}`);
    }
    return buf.subarray(headerBytes);
  }

  private corrupt(g: GroupLog, file: string, what: string): OperatingError {
    g.corruption ??= `${file}: ${what}`;
    return new OperatingError(OperatingErrorCode.Corrupted, `group ${g.id}: ${what} in ${file}`, { file, groups: g.id });
  }

  // ---- internals: snapshots ----

  /** File first (durable under a name of its own), then its metadata in one synced level batch. */
  private async writeSnapshot(g: GroupLog, meta: SnapshotMeta, data: Uint8Array, extra: MetaOp[]): Promise<void> {
    const file = `g${g.num}-${meta.index}-${meta.term}.snap`;
    const dir = join(this.dir, 'snapshots');
    try {
      await writeFileDurably(dir, file, data);
    } catch (e) {
      throw fsError(e, 'write snapshot', join(dir, file), [g.id]);
    }
    const persisted: PersistedSnapshot = {
      index: meta.index, term: meta.term, membership: Buffer.from(meta.membership).toString('base64'), file, bytes: data.length,
    };
    try {
      await this.meta.write([{ type: 'put', key: metaKey.snapshot(g.num), value: persisted }, ...extra]);
    } catch (e) {
      throw fsError((e as { cause?: unknown }).cause ?? e, 'record snapshot', join(this.dir, 'meta'), [g.id]);
    }
    if (this.groupsByNum.get(g.num) !== g) return;
    const previous = this.snapshots.get(g.num);
    this.snapshots.set(g.num, persisted);
    if (previous !== undefined && previous.file !== file) await removeQuietly(join(dir, previous.file));
  }

  // ---- internals: compaction ----

  private async runCompaction(idle: boolean): Promise<CompactionReport> {
    await this.flush();
    const closedHead = idle ? this.writer.closeSparseHead() : undefined;
    const rewritten = await this.rewriteSparseSegments(closedHead);
    const deleted = await this.deleteDeadSegments();
    return { deletedSegments: deleted, ...rewritten, diskBytes: this.stats().diskBytes };
  }

  /** Copies live records of old, mostly dead segments to the head, so those segments die. */
  private async rewriteSparseSegments(closedHead: Segment | undefined): Promise<{ rewrittenRecords: number; rewrittenBytes: number }> {
    let records = 0;
    let bytes = 0;
    const sparse = this.writer.sparseSegments();
    if (closedHead !== undefined && closedHead.liveBytes > 0) sparse.push(closedHead);
    for (const s of sparse) {
      if (bytes + s.liveBytes > this.limits.rewriteBytesPerCompactMax && bytes > 0) break;
      const r = this.relocateLiveRecords(s);
      records += r.records;
      bytes += r.bytes;
    }
    if (records > 0) await this.flush();
    return { rewrittenRecords: records, rewrittenBytes: bytes };
  }

  private relocateLiveRecords(s: Segment): { records: number; bytes: number } {
    const buf = readWhole(s, s.written);
    const d = newDecoded();
    let records = 0;
    let bytes = 0;
    for (let p = 0; p < buf.length;) {
      decodeRecord(buf, p, buf.length, d);
      if (d.status === 'bad-header' || d.status === 'short') break; // damage stays where it is
      const h = d.header;
      const g = this.groupsByNum.get(h.group);
      const loc = g?.locate(h.index);
      const isLive = (h.type === RecordType.Entry || h.type === RecordType.Relocated) && loc !== undefined &&
        loc.segment === s.id && loc.offset === p && d.status === 'ok';
      if (g !== undefined && isLive) {
        const data = buf.subarray(p + headerBytes, p + headerBytes + h.payloadBytes);
        const moved = this.writer.writeRecord(g, RecordType.Relocated, h.index, h.term, data, h.kind);
        assert(g.relocate(h.index, moved), 'relocated entry keeps its term');
        // Readable from the cache until the copy is written (a copy: `buf` is a whole segment).
        this.cache.add(g, h.index, data.slice(), moved.segment, moved.offset);
        records++;
        bytes += headerBytes + h.payloadBytes;
      }
      p += headerBytes + h.payloadBytes;
    }
    return { records, bytes };
  }

  /** Hard states and live ranges changed since the last checkpoint; clears the dirty marks. */
  private checkpointOps(): MetaOp[] {
    const ops: MetaOp[] = [];
    this.checkpointing = { hardStates: [...this.hardStateDirty], live: [...this.liveDirty] };
    for (const g of this.hardStateDirty) ops.push({ type: 'put', key: metaKey.hardState(g.num), value: g.hardState });
    for (const g of this.liveDirty) {
      ops.push({ type: 'put', key: metaKey.live(g.num), value: { from: g.firstIndex, prevTerm: g.prevTerm, keep: [...g.sparse.keys()] } });
    }
    this.hardStateDirty.clear();
    this.liveDirty.clear();
    return ops;
  }

  /**
   * A failed checkpoint (disk full...) is not fatal: nothing depends on it yet. The dirty marks
   * come back, no segment is deleted, and the next compaction or close tries again.
   */
  private async writeCheckpoint(ops: MetaOp[]): Promise<void> {
    const taken = this.checkpointing;
    this.checkpointing = undefined;
    try {
      await this.meta.write(ops);
    } catch (e) {
      for (const g of taken?.hardStates ?? []) if (this.groupsByNum.get(g.num) === g) this.hardStateDirty.add(g);
      for (const g of taken?.live ?? []) if (this.groupsByNum.get(g.num) === g) this.liveDirty.add(g);
      const err = fsError((e as { cause?: unknown }).cause ?? e, 'checkpoint', join(this.dir, 'meta'), []);
      this.logger.warn('wal.checkpoint_failed', { code: err.code, error: err.message });
      throw err;
    }
  }

  /**
   * Checkpoints hard states and live ranges to `level` (synced), then deletes the segments that
   * were dead when the checkpoint was taken. A segment holding Truncate/Reset records goes only
   * with every older segment, so superseded entries can never come back on recovery.
   */
  private async deleteDeadSegments(): Promise<number> {
    const ops = this.checkpointOps();
    const victims = this.writer.deadSegments();
    await this.writeCheckpoint(ops);
    this.writer.deleteSegments(victims);
    return victims.length;
  }

  // ---- internals: recovery ----

  private async recover(): Promise<void> {
    const started = performance.now();
    const contents = await this.meta.load();
    this.nextNum = contents.nextNum;
    const known = new Set<number>();
    for (const r of contents.registry) {
      this.nextNum = Math.max(this.nextNum, r.num + 1);
      known.add(r.num);
      if (!r.removed) this.addGroupLog(r.id as GroupId, r.num);
    }
    for (const [num, s] of contents.snapshots) if (this.groupsByNum.has(num)) this.snapshots.set(num, s);
    await this.removeOrphanSnapshots();
    const scan = this.replayAll(known);
    for (const g of this.groupsById.values()) this.normalizeGroup(g, contents, scan.damaged.has(g));
    this.writer.startHead();
    this.recovery = {
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      segments: scan.segments,
      records: scan.records,
      bytes: scan.bytes,
      groups: this.groupsById.size,
      tornTailBytes: scan.tornTailBytes,
      unregisteredRecords: scan.unregistered,
      corruptedGroups: this.corruptedGroups(),
      damage: scan.damage,
    };
    const { damage, corruptedGroups, ...fields } = this.recovery;
    // At info only when recovery found something to say (a torn tail, damage); the node's
    // 'node started' line is the first a person reads on a clean start.
    const notable = fields.tornTailBytes > 0 || corruptedGroups.length > 0 || damage.length > 0;
    (notable ? this.logger.info : this.logger.debug).call(this.logger, 'wal.recovered', { dir: this.dir, ...fields, corruptedGroups: corruptedGroups.join(',') });
    for (const d of damage) this.logger.error('wal.corruption', { damage: d });
    if (scan.unregistered > 0) this.logger.warn('wal.unregistered_records', { records: scan.unregistered });
  }

  /** Snapshot files no metadata points to: a crash between file and metadata, or a removed group. */
  private async removeOrphanSnapshots(): Promise<void> {
    const dir = join(this.dir, 'snapshots');
    const wanted = new Set([...this.snapshots.values()].map((s) => s.file));
    for (const name of readdirSync(dir)) {
      if (wanted.has(name)) continue;
      await removeQuietly(join(dir, name));
      this.logger.info('wal.orphan_snapshot_removed', { file: name });
    }
  }

  private replayAll(known: ReadonlySet<number>): { segments: number; records: number; bytes: number; tornTailBytes: number; unregistered: number; damage: string[]; damaged: Set<GroupLog> } {
    const ids = listSegmentIds(this.dir);
    const out = { segments: ids.length, records: 0, bytes: 0, tornTailBytes: 0, unregistered: 0, damage: [] as string[], damaged: new Set<GroupLog>() };
    const target = {
      group: (num: number) => this.groupsByNum.get(num),
      sawNum: (num: number) => {
        this.nextNum = Math.max(this.nextNum, num + 1);
        if (!known.has(num)) out.unregistered++;
      },
    };
    const opened: Segment[] = [];
    for (const id of ids) {
      const path = join(this.dir, segmentFileName(id));
      let fd: number;
      try { fd = openSync(path, 'r+'); } catch (e) { throw fsError(e, 'open segment', path, []); }
      const size = readSizeOf(fd);
      opened.push({ id, path, fd, size, written: size, liveBytes: 0, supersedes: false, fresh: false });
    }
    // A torn tail can only be in the last segment that holds anything: a rolled-to segment may
    // exist empty while the batch before it was still being written.
    let lastWithData = -1;
    opened.forEach((s, k) => { if (s.size > 0) lastWithData = k; });
    opened.forEach((s, k) => {
      this.writer.adopt(s);
      const size = s.size;
      const fd = s.fd;
      const r = replaySegment(s, readWhole(s, size), k === lastWithData, target, out.damaged);
      out.records += r.records;
      out.damage.push(...r.damage);
      if (r.tornAt !== undefined) {
        out.tornTailBytes += size - r.tornAt;
        ftruncateSync(fd, r.tornAt);
        fsyncSync(fd);
        s.size = s.written = r.tornAt;
      }
      out.bytes += s.size;
    });
    return out;
  }

  /** Applies persisted checkpoints (hard state, snapshot, live range) over what replay rebuilt. */
  private normalizeGroup(g: GroupLog, contents: MetaContents, damaged: boolean): void {
    const hs = contents.hardStates.get(g.num);
    if (hs !== undefined) g.hardState = mergeHardState(hs, g.hardState);
    g.absorbSparseBelow();
    const snap = this.snapshots.get(g.num);
    if (snap !== undefined) {
      const t = g.term(snap.index);
      const conflicts = snap.index >= g.firstIndex && t !== undefined && t !== snap.term;
      if (snap.index > g.lastIndex || conflicts) g.reset(snap.index, snap.term);
      else if (snap.index === g.firstIndex - 1) g.prevTerm = snap.term;
    }
    const live = contents.live.get(g.num);
    if (live !== undefined) {
      // Nothing at or after live.from survived (truncated or never flushed): the log restarts there.
      if (live.from > g.lastIndex + 1) g.restartAt(live.from, live.prevTerm);
      const missing = g.extendBackTo(live.from);
      if (missing !== undefined) g.corruption ??= `entry ${missing} is missing (log starts at ${g.firstIndex}, live from ${live.from})`;
      if (live.from <= g.lastIndex + 1) g.setLive(Math.max(live.from, g.firstIndex), new Set(live.keep));
      if (g.firstIndex === live.from && g.prevTerm === 0) g.prevTerm = live.prevTerm;
    }
    const backwards = g.firstTermDecrease();
    if (backwards !== undefined) g.corruption ??= `term goes back at index ${backwards}`;
    if (damaged) g.corruption ??= `damaged records (see wal.corruption in the log; ${g.damaged.size} damaged bodies)`;
  }
}

function readSizeOf(fd: number): number {
  return fstatSync(fd).size;
}
