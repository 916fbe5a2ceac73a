// Limits of the node's durable storage (write-ahead log, body cache, recovery), units last.
// Every buffer and map here is bounded; the behaviour at each bound is documented beside it.

export interface StorageLimits {
  /** A segment is closed and a new one started once it holds at least this many bytes. A single
   * flush batch never spans two segments, so a segment can exceed this by one batch. */
  segmentBytesTarget: number;
  /** Largest payload of one record; appending a bigger one is a bug (assertion). */
  recordPayloadBytesMax: number;
  /** Bodies of recent entries kept in memory for reads; older bodies are read from the segment
   * file. Bodies not yet written are pinned, so the cache can exceed this by one batch. */
  cacheBytesMax: number;
  /** A closed segment whose live bytes fall below this fraction of its size is rewritten by
   * compact() (its live records are copied to the head), so one stuck entry cannot pin it. */
  rewriteLiveRatioMax: number;
  /** A closed segment is rewritten only once this many newer segments exist, so recent
   * segments (whose entries are usually about to die anyway) are not copied. */
  rewriteAfterSegments: number;
  /** Upper bound on bytes copied by one compact() call, so compaction cannot stall the node. */
  rewriteBytesPerCompactMax: number;
  /**
   * compact({ idle: true }) (the log has not grown since the last compaction) closes a head
   * segment of at least this many bytes whose live bytes are below rewriteLiveRatioMax, so its
   * few live records move to a fresh head and the file goes: a drained, quiet node does not keep
   * a segment of dead records (up to segmentBytesTarget) on disk.
   */
  idleHeadRollBytesMin: number;
  /** Upper bound on groups per node (numeric ids are u32; this bounds the maps). */
  groupsMax: number;
  /** A batch whose write failed (disk full, permission denied, I/O error) is retried after this
   * delay, doubling per attempt up to writeRetryDelayMsMax; flush() waits meanwhile. */
  writeRetryDelayMsMin: number;
  writeRetryDelayMsMax: number;
  /** Failed attempts of one batch before the log gives up and stops (as for a failed fdatasync);
   * with the default delays about a week of retrying. */
  writeRetriesMax: number;
}

export const defaultStorageLimits: StorageLimits = {
  segmentBytesTarget: 64 * 1024 * 1024,
  recordPayloadBytesMax: 16 * 1024 * 1024,
  cacheBytesMax: 64 * 1024 * 1024,
  rewriteLiveRatioMax: 0.5,
  rewriteAfterSegments: 2,
  rewriteBytesPerCompactMax: 64 * 1024 * 1024,
  idleHeadRollBytesMin: 1024 * 1024,
  groupsMax: 1_000_000,
  writeRetryDelayMsMin: 100,
  writeRetryDelayMsMax: 5_000,
  writeRetriesMax: 120_000,
};

/** Problems with a limits object, in words; empty when it is usable. */
export function validateStorageLimits(l: StorageLimits): string[] {
  const problems: string[] = [];
  const positive: Array<keyof StorageLimits> = ['segmentBytesTarget', 'recordPayloadBytesMax', 'groupsMax', 'rewriteBytesPerCompactMax', 'idleHeadRollBytesMin'];
  for (const k of positive) if (!(Number.isFinite(l[k]) && l[k] > 0)) problems.push(`${k} must be a positive number, got ${l[k]}`);
  if (!(l.cacheBytesMax >= 0)) problems.push(`cacheBytesMax must be >= 0, got ${l.cacheBytesMax}`);
  if (!(l.rewriteLiveRatioMax >= 0 && l.rewriteLiveRatioMax <= 1)) problems.push(`rewriteLiveRatioMax must be in [0, 1], got ${l.rewriteLiveRatioMax}`);
  if (!(Number.isInteger(l.rewriteAfterSegments) && l.rewriteAfterSegments >= 1)) problems.push(`rewriteAfterSegments must be an integer >= 1, got ${l.rewriteAfterSegments}`);
  if (!(Number.isSafeInteger(l.writeRetryDelayMsMin) && l.writeRetryDelayMsMin >= 1)) problems.push(`writeRetryDelayMsMin must be an integer >= 1, got ${l.writeRetryDelayMsMin}`);
  if (!(Number.isSafeInteger(l.writeRetryDelayMsMax) && l.writeRetryDelayMsMax >= l.writeRetryDelayMsMin)) problems.push(`writeRetryDelayMsMax must be an integer >= writeRetryDelayMsMin, got ${l.writeRetryDelayMsMax}`);
  if (!(Number.isSafeInteger(l.writeRetriesMax) && l.writeRetriesMax >= 0)) problems.push(`writeRetriesMax must be an integer >= 0, got ${l.writeRetriesMax}`);
  if (l.recordPayloadBytesMax >= 2 ** 32 - 64) problems.push('recordPayloadBytesMax must fit a u32 length');
  return problems;
}
