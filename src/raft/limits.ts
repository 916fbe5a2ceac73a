// Raft limits and tunables, in ticks, counts and bytes (units last). One config per node,
// shared by every group it hosts; validateRaftConfig checks it once at construction.

export interface RaftConfig {
  /** A follower that hears nothing from a leader for [this, 2x this) ticks starts a pre-vote. */
  readonly electionTimeoutTicks: number;
  /** Leaders send one coalesced heartbeat per peer every this many ticks. */
  readonly heartbeatIntervalTicks: number;
  /** Appends in flight per follower in the Replicate state before the leader waits for acks. */
  readonly maxInflightAppends: number;
  /** Entries per append message. */
  readonly maxEntriesPerAppend: number;
  /** Payload bytes per append message (at least one entry is always sent). */
  readonly maxBytesPerAppend: number;
  /** Leader's unreplicated-and-uncommitted payload bytes; proposals beyond it are dropped. */
  readonly maxUncommittedBytes: number;
  /** Committed payload bytes handed to the application per Ready per group (at least one entry). */
  readonly maxApplyBytesPerReady: number;
  /** Bytes of snapshot data per InstallSnapshot chunk. */
  readonly snapshotChunkBytes: number;
  /** Pending read-index requests per group; more are refused with 'dropped'. */
  readonly maxPendingReads: number;
  /** Groups one node may host. */
  readonly maxGroups: number;
  /**
   * Deliberately broken behaviours, only for proving the simulation checker can fail.
   * Never set outside tests.
   */
  readonly unsafe?: UnsafeTestFlags;
}

export interface UnsafeTestFlags {
  /** The leader commits its own last index without waiting for a majority. */
  readonly commitWithoutQuorum?: boolean;
  /** The leader counts replicas of entries from earlier terms (Raft paper, Figure 8). */
  readonly countOldTermEntries?: boolean;
  /** Append acks and votes leave before the Ready that justifies them is durable. */
  readonly ackBeforePersist?: boolean;
  /** Read index answered from the leader's commit without a heartbeat round (stale reads). */
  readonly readWithoutQuorum?: boolean;
}

export const defaultRaftConfig: RaftConfig = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 2,
  maxInflightAppends: 64,
  maxEntriesPerAppend: 512,
  maxBytesPerAppend: 1 << 20,
  maxUncommittedBytes: 64 << 20,
  maxApplyBytesPerReady: 8 << 20,
  snapshotChunkBytes: 1 << 20,
  maxPendingReads: 4096,
  maxGroups: 100_000,
};

/** Returns the problems with a config (empty when valid); errors as values. */
export function validateRaftConfig(c: RaftConfig): string[] {
  const problems: string[] = [];
  const positive: Array<keyof RaftConfig> = [
    'electionTimeoutTicks', 'heartbeatIntervalTicks', 'maxInflightAppends', 'maxEntriesPerAppend',
    'maxBytesPerAppend', 'maxUncommittedBytes', 'maxApplyBytesPerReady', 'snapshotChunkBytes',
    'maxPendingReads', 'maxGroups',
  ];
  for (const k of positive) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) problems.push(`${k} must be a positive integer`);
  }
  if (c.heartbeatIntervalTicks * 2 > c.electionTimeoutTicks) {
    // A follower must see at least two heartbeats per election timeout, or one lost message elects.
    problems.push('electionTimeoutTicks must be at least 2 x heartbeatIntervalTicks');
  }
  return problems;
}
