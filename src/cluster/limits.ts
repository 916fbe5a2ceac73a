// Limits and tunables of the cluster layer's group host (units last).

export interface GroupHostLimits {
  /**
   * Wall-clock length of one Raft tick. With the host's Raft timing below (electionTimeoutTicks 50,
   * heartbeatIntervalTicks 5), 20 ms gives a 1-2 s election timeout and 100 ms heartbeats.
   */
  readonly tickMs: number;
  /** Proposals waiting for their commit per group; more are refused with Overloaded. */
  readonly pendingProposalsPerGroupMax: number;
  /** Ready cycles run back to back before the host yields one event-loop turn to I/O. */
  readonly cyclesPerTurnMax: number;
  /**
   * After a compaction, a log that has not grown for this long is compacted once more as idle,
   * which also lets go of a mostly dead head segment (storage limits idleHeadRollBytesMin); while
   * it grows the host looks again this often (a timer, no work).
   */
  readonly idleCompactMs: number;
}

export const defaultGroupHostLimits: GroupHostLimits = {
  tickMs: 20,
  pendingProposalsPerGroupMax: 100_000,
  cyclesPerTurnMax: 8,
  idleCompactMs: 5000,
};

export function validateGroupHostLimits(l: GroupHostLimits): string[] {
  const problems: string[] = [];
  for (const k of ['tickMs', 'pendingProposalsPerGroupMax', 'cyclesPerTurnMax', 'idleCompactMs'] as const) {
    if (!Number.isSafeInteger(l[k]) || l[k] <= 0) problems.push(`${k} must be a positive integer`);
  }
  return problems;
}

/**
 * Raft timing on real processes. Heartbeats leave in the next Ready, so a slow fdatasync or an
 * event-loop stall delays them: on a 2-core machine shared by three nodes, fsync and GC pauses of
 * 100+ ms happen, and a 100-200 ms election timeout made leaders flap (one bench run saw 500 leader
 * changes in 50 groups). An election timeout of 1-2 s stays above those stalls (raft-pitfalls.md:
 * election timeout above p99.9 fsync latency) and still fails over "within a few seconds".
 */
export const hostRaftTiming = { electionTimeoutTicks: 50, heartbeatIntervalTicks: 5 } as const;

/**
 * The host compacts the WAL (rewrites sparse segments, deletes dead ones) after a snapshot, at most
 * once per this many milliseconds: a compaction reads whole sparse segments and checkpoints every
 * group's live range, so it must not run after every snapshot of a busy node.
 */
export const walCompactIntervalMs = 1000;

/**
 * Entry and snapshot bytes per RaftBatch payload to one peer; a cycle with more sends several.
 * Well under the transport's payloadBytesMax, which must still fit one append of one largest
 * message (max_message_size, 16 MiB by default) with its headers.
 */
export const raftBatchBytesMax = 4 * 1024 * 1024;
