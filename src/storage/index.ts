// The storage layer's public surface: the node's write-ahead log for all Raft groups.
//
//   const wal = await WriteAheadLog.open(dir, { logger, limits })   // recovers; wal.recovery says what it found
//   wal.createGroup(g) / removeGroup(g)
//   per turn, for every group of the Ready:  wal.setHardState(g, hs); wal.append(g, entries) (truncates a
//     conflicting suffix itself) or wal.truncateSuffix(g, i);  then  await wal.flush()  (one write, one
//     fdatasync for all groups; batches that arrive while one is in flight go in the next), then send
//   reads (synchronous): wal.reader(g) -> { firstIndex, lastIndex, term, entries(lo, hi, maxBytes), snapshot },
//     wal.entry(g, i) for any retained entry (including live ones below firstIndex), wal.hardState(g)
//   wal.setLive(g, from, keep) then, now and then, await wal.compact()
//   await wal.saveSnapshot(g, meta, data) / installSnapshot(g, meta, data); snapshotMeta(g), readSnapshot(g)
//   wal.corruptedGroups(), wal.failure(), wal.stats(), await wal.close()

export { WriteAheadLog } from './wal.js';
export type { CompactionReport, LogEntry, LogReader, RecoveryReport, SnapshotMeta, WalOptions, WalStats } from './wal.js';
export type { HardState } from './group-log.js';
export { defaultStorageLimits, type StorageLimits } from './limits.js';
export { crc32c } from './crc32c.js';
