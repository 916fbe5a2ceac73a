// The storage layer's public surface: the node's write-ahead log for all Raft groups.
//
//   const wal = await WriteAheadLog.open(dir, { logger, limits })   // recovers; wal.recovery says what it found
//   wal.createGroup(g) / removeGroup(g)        (registry changes become durable with the next flush)
//   per turn, for every GroupReady:  wal.installSnapshot(...) if any; wal.setHardState(g, hs);
//     wal.append(g, entries) (truncates a conflicting suffix itself) or wal.truncateSuffix(g, i);
//   then  await wal.flush()  : one write + one fdatasync for all groups (+ one synced level batch
//     only if the registry changed); a batch buffered while one is in flight goes in the next.
//     Only then send messagesAfterPersist and advance().
//   reads (synchronous): wal.reader(g) -> { firstIndex, lastIndex, term, entries(lo, hi, maxBytes), snapshot },
//     wal.entry(g, i) for any retained entry (also live ones below firstIndex), wal.hardState(g),
//     wal.snapshotChunk(g, index, offset, maxBytes). Reads see appended entries at once (before
//     the flush that makes them durable), as the Raft core's LogReader contract requires by advance().
//   wal.setLive(g, from, keep) whenever the state machine's live set shrinks; now and then await wal.compact()
//   await wal.saveSnapshot(g, meta, data) (own snapshot; log untouched) / installSnapshot (replaces the log)
//     snapshotChunk streams the snapshot file, then a trailer of the entries the log still keeps at
//     or below it (setLive's `keep`: a queue's live bodies; see snapshot-trailer.ts); installSnapshot
//     takes that stream, keeps those entries in its own log and returns the snapshot's own bytes.
//   wal.corruptedGroups() (must not vote or serve), wal.failure() (writes stopped), wal.stats(), wal.fsyncHistograms(), await wal.close()
//   wal.writeAlarm(): a failed write being retried with backoff (disk full, permission denied, EIO):
//     the batch was cut off the segment, flush() waits, options.onWriteAlarm tells the node to
//     block publishers; a failed fdatasync is never retried (the log stops: wal.failure()).
//
// Hard state travels in the log, in the same fdatasync as the entries it goes with. A new term or
// vote (elections: rare) is also put in `level` with sync: true by the same flush, which resolves
// only when both are durable; commit-only changes (every turn) stay in the log and are
// checkpointed to `level` before the segments holding them are deleted and at close. Recovery
// merges both (terms and commits only grow, a vote is fixed within its term), in any order.
//
// For src/raft's LogReader the host adapts: entry `type` is the byte stored per record, the
// snapshot's membership is the blob given to saveSnapshot, `undefined` stands for null.

export { WriteAheadLog } from './wal.js';
export type { CompactionReport, LogEntry, LogReader, RecoveryReport, SnapshotMeta, WalOptions, WalStats } from './wal.js';
export type { HardState } from './group-log.js';
export { defaultStorageLimits, validateStorageLimits, type StorageLimits } from './limits.js';
export { crc32c } from './crc32c.js';
export { nodeWalIo, type WalIo } from './wal-io.js';
export type { FsyncHistograms } from './group-commit.js';
