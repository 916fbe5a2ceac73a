// The group-commit writer of the write-ahead log: the segment files, the batch being built and
// the one in flight (each written with one write and one fdatasync, plus one synced `level`
// batch when it carries registry changes), and the live bytes of every segment. A failed write
// is cut off and retried with backoff under a write alarm; a failed fdatasync stops the log.

import { closeSync, openSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../lib/assert.js';
import { OperatingError } from '../lib/errors.js';
import { BucketHistogram, batchBytesBuckets, batchSizeBuckets, latencyBucketsSeconds } from '../lib/histogram.js';
import type { Logger } from '../lib/log.js';
import { fsyncDir, segmentFileName } from './files.js';
import { fsError } from './fs-errors.js';
import type { GroupLog, LiveAccounting, Location } from './group-log.js';
import type { StorageLimits } from './limits.js';
import type { MetaOp, MetaStore } from './meta-store.js';
import { encodeRecord, headerBytes, type RecordType } from './record.js';
import type { Segment } from './segment.js';
import type { WalIo } from './wal-io.js';

/** How the writer reaches the disk and whom it tells when writes start failing or recover. */
export interface WriterHooks {
  io: WalIo;
  /** The write alarm changed: the failure being retried, or undefined once a retry succeeded. */
  onAlarm(failure: OperatingError | undefined): void;
}

/** What each fdatasync of the log cost and carried (read by the metrics layer). */
export interface FsyncHistograms {
  readonly seconds: BucketHistogram;
  readonly records: BucketHistogram;
  readonly bytes: BucketHistogram;
}

export class GroupCommit implements LiveAccounting {
  readonly segments = new Map<number, Segment>();
  head!: Segment;
  private readonly freeBuffers: Buffer[] = [];
  private pending: Batch | undefined;
  private inflight: Promise<void> | undefined;
  /** The batch `inflight` is writing: a flush with nothing new buffered waits for its outcome. */
  private inflightBatch: Batch | undefined;
  private failed: OperatingError | undefined;
  /** The write failure being retried (the disk refuses writes now); undefined when healthy. */
  private alarm: OperatingError | undefined;
  /** End the backoff pauses early (close). */
  private readonly wakers = new Set<() => void>();
  /** Retry loops (segment write, level batch) failing right now: the alarm is up while any is. */
  private failingLoops = 0;
  /** Set by close (or a failed level write): a failed write is final from then on. */
  private stopping = false;
  /** The next segment could not be created: the head keeps growing until it can. */
  private rollFailing = false;
  private counters = { batches: 0, fsyncs: 0, recordsWritten: 0, bytesWritten: 0 };
  /** Per fdatasync of the log: how long it took (seconds), and the records and bytes it made durable. */
  readonly perFsync: FsyncHistograms = {
    seconds: new BucketHistogram(latencyBucketsSeconds), records: new BucketHistogram(batchSizeBuckets), bytes: new BucketHistogram(batchBytesBuckets),
  };

  constructor(
    private readonly dir: string,
    private readonly meta: MetaStore,
    private readonly limits: StorageLimits,
    private readonly logger: Logger,
    /** Called when a batch reached the file (bodies may leave the cache). */
    private readonly onWritten: () => void,
    private readonly hooks: WriterHooks,
  ) {}

  added(segment: number, recordBytes: number): void {
    const s = this.segments.get(segment);
    if (s === undefined) assert(false, `live record in missing segment ${segment}`);
    s.liveBytes += recordBytes;
  }

  removed(segment: number, recordBytes: number): void {
    const s = this.segments.get(segment);
    if (!(s !== undefined && s.liveBytes >= recordBytes)) assert(false, `live bytes of segment ${segment} go negative`);
    s.liveBytes -= recordBytes;
  }

  /** The metadata operations of the batch being built (they become durable with it). */
  metaOps(): MetaOp[] {
    return this.batchFor(0).metaOps;
  }

  /** Runs `f` once the batch being built is durable (cleanup that must not come earlier). */
  afterDurable(f: () => Promise<void>): void {
    this.batchFor(0).after.push(f);
  }

  /**
   * Writes everything buffered with one write and one fdatasync. If a batch is in flight, what
   * is buffered now goes in the next one, which starts as soon as the current one ends.
   */
  flush(): Promise<void> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    const b = this.pending;
    if (b === undefined) return this.inflightBatch?.promise ?? Promise.resolve();
    b.requested = true;
    if (this.inflight === undefined) this.startBatch();
    return b.promise;
  }

  failure(): OperatingError | undefined {
    return this.failed;
  }

  /** The write failure being retried (disk full, permission denied, I/O error), if any. */
  writeAlarm(): OperatingError | undefined {
    return this.alarm;
  }

  /** Makes the next failed write final and ends a retry pause now (close must not wait for space). */
  stopRetrying(): void {
    this.stopping = true;
    for (const w of [...this.wakers]) w();
  }

  /** Resolves once no batch is in flight, whatever its outcome. */
  async settled(): Promise<void> {
    await this.inflight?.catch(() => {});
  }

  /** Adds a segment found on disk at recovery. */
  adopt(s: Segment): void {
    assert(!this.segments.has(s.id), 'segment adopted twice');
    this.segments.set(s.id, s);
  }

  /** Starts writing into a new segment after the last one found on disk. */
  startHead(): void {
    let last = 0;
    for (const id of this.segments.keys()) last = Math.max(last, id);
    this.head = this.createSegment(last + 1);
  }

  /**
   * Closed segments no group needs. One holding Truncate/Reset records qualifies only together
   * with every older segment, so superseded entries can never come back on recovery.
   */
  deadSegments(): Segment[] {
    const victims: Segment[] = [];
    let prefix = true;
    for (const s of [...this.segments.values()].sort((a, b) => a.id - b.id)) {
      const dead = s !== this.head && s.written === s.size && s.liveBytes === 0 && s !== this.pending?.segment;
      if (dead && (!s.supersedes || prefix)) victims.push(s);
      else prefix = false;
    }
    return victims;
  }

  deleteSegments(victims: readonly Segment[]): void {
    for (const s of victims) {
      closeSync(s.fd);
      this.segments.delete(s.id);
      try { unlinkSync(s.path); } catch (e) { this.logger.warn('wal.unlink_failed', { file: s.path, error: String(e) }); }
    }
    if (victims.length > 0) fsyncDir(this.dir);
  }

  /**
   * An idle log's head, when it is mostly dead: a new head starts and the old one is returned, to
   * be rewritten (its live records move to the new head) and deleted. Undefined when a batch is
   * being built or written, when the head is small or mostly live, or when no new head could be made.
   */
  closeSparseHead(): Segment | undefined {
    const h = this.head;
    if (this.pending !== undefined || this.inflight !== undefined || h.written !== h.size) return undefined;
    if (h.size < this.limits.idleHeadRollBytesMin || h.liveBytes >= h.size * this.limits.rewriteLiveRatioMax) return undefined;
    this.rollHead(undefined);
    return this.head === h ? undefined : h;
  }

  /** Old closed segments whose live bytes fell below the rewrite ratio, oldest first. */
  sparseSegments(): Segment[] {
    return [...this.segments.values()].sort((a, b) => a.id - b.id).filter((s) =>
      s.id <= this.head.id - this.limits.rewriteAfterSegments && s.written === s.size &&
      s.liveBytes > 0 && s.liveBytes < s.size * this.limits.rewriteLiveRatioMax);
  }

  stats(): { segments: number; diskBytes: number; liveBytes: number; batches: number; fsyncs: number; recordsWritten: number; bytesWritten: number } {
    let diskBytes = 0;
    let liveBytes = 0;
    for (const s of this.segments.values()) { diskBytes += s.size; liveBytes += s.liveBytes; }
    return { segments: this.segments.size, diskBytes, liveBytes, ...this.counters };
  }

  closeFiles(): void {
    for (const s of this.segments.values()) closeSync(s.fd);
  }

  // ---- internals ----

  /** Encodes a record into the batch being built and says where it will sit on disk. */
  writeRecord(g: GroupLog, type: RecordType, index: number, term: number, payload: Uint8Array | undefined, kind = 0): Location {
    const n = payload === undefined ? 0 : payload.length;
    const b = this.batchFor(headerBytes + n, g);
    const offset = b.fileOffset + b.used;
    b.used += encodeRecord(b.buf, b.used, { type, group: g.num, index, term, kind, payloadBytes: n }, payload);
    b.segment.size = b.fileOffset + b.used;
    b.records++;
    b.groups.add(g);
    return { segment: b.segment.id, offset, bytes: n, term, kind };
  }

  /** The batch being built, with room for `bytes` more; starts one (and a segment) if needed. */
  private batchFor(bytes: number, g?: GroupLog): Batch {
    let b = this.pending;
    if (b === undefined) {
      if (this.head.size >= this.limits.segmentBytesTarget) this.rollHead(g);
      const buf = this.freeBuffers.pop() ?? Buffer.allocUnsafe(batchBytesInitial);
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
      promise.catch(() => {}); // a batch nobody waits for may fail; the failure is kept in `failed`
      b = { segment: this.head, fileOffset: this.head.size, buf, used: 0, records: 0, groups: new Set(), metaOps: [], after: [], requested: false, promise, resolve, reject };
      this.pending = b;
    }
    if (b.used + bytes > b.buf.length) {
      let size = b.buf.length * 2;
      while (size < b.used + bytes) size *= 2;
      const bigger = Buffer.allocUnsafe(size);
      b.buf.copy(bigger, 0, 0, b.used);
      b.buf = bigger;
    }
    return b;
  }

  private createSegment(id: number, g?: GroupLog): Segment {
    const path = join(this.dir, segmentFileName(id));
    let fd: number;
    try {
      fd = openSync(path, 'w+'); // ids only grow, so the name is new; a leftover is empty by construction
    } catch (e) {
      throw this.fail(fsError(e, 'create segment', path, g === undefined ? [] : [g.id]));
    }
    const s: Segment = { id, path, fd, size: 0, written: 0, liveBytes: 0, supersedes: false, fresh: true };
    this.segments.set(id, s);
    return s;
  }

  /**
   * Starts the next segment. If it cannot be created (directory full or read-only) the head
   * keeps taking batches, which loses nothing; the roll is tried again with the next batch.
   */
  private rollHead(g: GroupLog | undefined): void {
    const id = this.head.id + 1;
    const path = join(this.dir, segmentFileName(id));
    let fd: number;
    try {
      fd = openSync(path, 'w+');
    } catch (e) {
      if (!this.rollFailing) {
        const err = fsError(e, 'create segment', path, g === undefined ? [] : [g.id]);
        this.logger.error('wal.segment_roll_failed', { code: err.code, error: err.message, file: path, keptSegment: this.head.path });
      }
      this.rollFailing = true;
      return;
    }
    if (this.rollFailing) this.logger.info('wal.segment_roll_recovered', { file: path });
    this.rollFailing = false;
    this.head = { id, path, fd, size: 0, written: 0, liveBytes: 0, supersedes: false, fresh: true };
    this.segments.set(id, this.head);
  }

  private startBatch(): void {
    const b = this.pending;
    assert(b !== undefined && this.inflight === undefined);
    this.pending = undefined;
    this.inflightBatch = b;
    this.inflight = this.runBatch(b).then(
      async () => {
        this.inflight = undefined;
        this.inflightBatch = undefined;
        this.counters.batches++;
        this.counters.recordsWritten += b.records;
        this.counters.bytesWritten += b.used;
        if (b.buf.length <= batchBufferKeepBytesMax && this.freeBuffers.length < 2) this.freeBuffers.push(b.buf);
        b.resolve();
        if (this.pending?.requested === true && this.failed === undefined) this.startBatch();
        for (const f of b.after) await f().catch((e: unknown) => this.logger.warn('wal.cleanup_failed', { error: String(e) }));
      },
      (e: unknown) => {
        this.inflight = undefined;
        this.inflightBatch = undefined;
        const err = this.fail(e as OperatingError);
        b.reject(err);
        this.pending?.reject(err);
      },
    );
  }

  private async runBatch(b: Batch): Promise<void> {
    const groups = [...b.groups].map((g) => g.id);
    // Puts and deletes of fixed keys: writing the batch again is harmless. (A failed *sync* is kept
    // by LevelDB as a sticky error: then every retry fails and the log stops at writeRetriesMax.)
    const metaPath = join(this.dir, 'meta');
    const metaWrite = b.metaOps.length === 0 ? Promise.resolve() : this.withRetries(metaPath, () => this.meta.write(b.metaOps).then(
      () => undefined,
      (e: unknown) => fsError((e as { cause?: unknown }).cause ?? e, 'write level batch', metaPath, groups),
    ));
    const walWrite = b.used === 0 ? Promise.resolve() : this.writeBatchToSegment(b, groups);
    const [w, m] = await Promise.allSettled([walWrite, metaWrite]);
    if (m.status === 'rejected') throw m.reason;
    if (w.status === 'rejected') throw w.reason;
  }

  private async writeBatchToSegment(b: Batch, groups: string[]): Promise<void> {
    const s = b.segment;
    await this.withRetries(s.path, () => this.tryWrite(b, groups));
    try {
      if (s.fresh) { fsyncDir(this.dir); s.fresh = false; }
      const syncStartMs = performance.now();
      await this.hooks.io.datasync(s.fd);
      this.counters.fsyncs++;
      this.perFsync.seconds.record((performance.now() - syncStartMs) / 1000);
      this.perFsync.records.record(b.records);
      this.perFsync.bytes.record(b.used);
    } catch (e) {
      // Not retried (the fsyncgate lesson): after a failed fdatasync the kernel may have dropped
      // the dirty pages and marked them clean, so a second fdatasync could succeed with the data
      // not on disk. Cut the batch off and stop the log; a restart recovers what is really there.
      try { this.hooks.io.truncate(s.fd, b.fileOffset); } catch { /* the error below says why already */ }
      s.written = Math.min(s.written, b.fileOffset);
      const err = fsError(e, 'fdatasync', s.path, groups);
      throw new OperatingError(err.code, `${err.message}; not retried: the kernel may have dropped the unwritten pages, ` +
        'so a retry could report success for data that is not on disk; the log stops until the node restarts and recovers', err.details);
    }
  }

  /**
   * Runs `attempt` until it succeeds; a failed attempt (it has undone its own partial effect) is
   * retried with backoff under the write alarm while flush waits, and nothing acknowledged is
   * touched. Gives up after writeRetriesMax attempts or once close began.
   */
  private async withRetries(file: string, attempt: () => Promise<OperatingError | undefined>): Promise<void> {
    const startedMs = Date.now();
    let failing = false;
    for (let n = 0; ; n++) {
      const failure = await attempt();
      if (failure === undefined) break;
      if (this.stopping || n >= this.limits.writeRetriesMax) {
        if (failing) this.failingLoops--; // the alarm stays: the log stops with this failure
        throw failure;
      }
      if (!failing) {
        failing = true;
        this.failingLoops++;
      }
      const raised = this.alarm === undefined;
      this.alarm = failure;
      if (raised) {
        this.logger.error('wal.write_blocked', { code: failure.code, error: failure.message, retryInMs: this.limits.writeRetryDelayMsMin });
        this.hooks.onAlarm(failure);
      }
      await this.pause(Math.min(this.limits.writeRetryDelayMsMax, this.limits.writeRetryDelayMsMin * 2 ** Math.min(n, 30)));
    }
    if (!failing) return;
    this.failingLoops--;
    this.logger.info('wal.write_recovered', { file, blockedMs: Date.now() - startedMs });
    if (this.failingLoops > 0 || this.alarm === undefined) return;
    this.alarm = undefined;
    this.hooks.onAlarm(undefined);
  }

  /** One attempt at the batch's bytes; on failure cuts the segment back to where the batch starts. */
  private async tryWrite(b: Batch, groups: string[]): Promise<OperatingError | undefined> {
    const s = b.segment;
    try {
      let done = 0;
      while (done < b.used) {
        const n = await this.hooks.io.write(s.fd, b.buf, done, b.used - done, b.fileOffset + done);
        if (!(n > 0)) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
        done += n;
      }
    } catch (e) {
      // A retry writes the whole batch at the same offset; cutting first means a crash meanwhile
      // finds the segment ending at the last good batch, not at a torn one.
      try {
        this.hooks.io.truncate(s.fd, b.fileOffset);
      } catch (t) {
        this.logger.warn('wal.truncate_failed', { file: s.path, offset: b.fileOffset, error: String(t) });
      }
      return fsError(e, 'append', s.path, groups);
    }
    s.written = b.fileOffset + b.used;
    this.onWritten();
    return undefined;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /** Stops all writes with `e` (the first failure wins). */
  fail(e: OperatingError): OperatingError {
    if (this.failed === undefined) {
      this.failed = e;
      this.logger.error('wal.write_failed', { code: e.code, error: e.message });
    }
    return this.failed;
  }

  isWritten(segment: number, offset: number): boolean {
    const s = this.segments.get(segment);
    return s === undefined || offset < s.written;
  }
}

interface Batch {
  segment: Segment;
  fileOffset: number;
  buf: Buffer;
  used: number;
  records: number;
  groups: Set<GroupLog>;
  metaOps: MetaOp[];
  after: Array<() => Promise<void>>;
  requested: boolean;
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const batchBytesInitial = 1024 * 1024;
const batchBufferKeepBytesMax = 16 * 1024 * 1024;
