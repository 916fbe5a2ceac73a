// The group-commit writer of the write-ahead log: the segment files, the batch being built and
// the one in flight (each written with one write and one fdatasync, plus one synced `level`
// batch when it carries registry changes), and the live bytes of every segment.

import { closeSync, fdatasync, ftruncateSync, openSync, unlinkSync, write } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../lib/assert.js';
import type { OperatingError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { fsyncDir, segmentFileName } from './files.js';
import { fsError } from './fs-errors.js';
import type { GroupLog, LiveAccounting, Location } from './group-log.js';
import type { StorageLimits } from './limits.js';
import type { MetaOp, MetaStore } from './meta-store.js';
import { encodeRecord, headerBytes, type RecordType } from './record.js';
import type { Segment } from './segment.js';

export class GroupCommit implements LiveAccounting {
  readonly segments = new Map<number, Segment>();
  head!: Segment;
  private readonly freeBuffers: Buffer[] = [];
  private pending: Batch | undefined;
  private inflight: Promise<void> | undefined;
  /** The batch `inflight` is writing: a flush with nothing new buffered waits for its outcome. */
  private inflightBatch: Batch | undefined;
  private failed: OperatingError | undefined;
  private counters = { batches: 0, fsyncs: 0, recordsWritten: 0, bytesWritten: 0 };

  constructor(
    private readonly dir: string,
    private readonly meta: MetaStore,
    private readonly limits: StorageLimits,
    private readonly logger: Logger,
    /** Called when a batch reached the file (bodies may leave the cache). */
    private readonly onWritten: () => void,
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
      if (this.head.size >= this.limits.segmentBytesTarget) this.head = this.createSegment(this.head.id + 1, g);
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
    const metaWrite = this.meta.write(b.metaOps).catch((e: unknown) => {
      throw fsError((e as { cause?: unknown }).cause ?? e, 'write level batch', join(this.dir, 'meta'), groups);
    });
    const walWrite = b.used === 0 ? Promise.resolve() : this.writeBatchToSegment(b, groups);
    await Promise.all([walWrite, metaWrite]);
  }

  private async writeBatchToSegment(b: Batch, groups: string[]): Promise<void> {
    const s = b.segment;
    try {
      let done = 0;
      while (done < b.used) done += await writeAt(s.fd, b.buf, done, b.used - done, b.fileOffset + done);
      s.written = b.fileOffset + b.used;
      this.onWritten();
      if (s.fresh) { fsyncDir(this.dir); s.fresh = false; }
      await datasync(s.fd);
      this.counters.fsyncs++;
    } catch (e) {
      // Cut what may have reached the file so the segment ends at the last good batch; the log
      // then refuses all writes (fsync failures are not retried) until reopened and recovered.
      try { ftruncateSync(s.fd, b.fileOffset); } catch { /* the error below says why already */ }
      s.written = Math.min(s.written, b.fileOffset);
      throw fsError(e, 'append', s.path, groups);
    }
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

function writeAt(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fdatasync(fd, (err) => (err ? reject(err) : resolve()));
  });
}
