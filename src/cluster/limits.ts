// Limits and tunables of the cluster layer's group host (units last).

export interface GroupHostLimits {
  /**
   * Wall-clock length of one Raft tick. With src/raft's defaults (electionTimeoutTicks 10,
   * heartbeatIntervalTicks 2) 10 ms gives a 100-200 ms election timeout and 20 ms heartbeats.
   */
  readonly tickMs: number;
  /** Proposals waiting for their commit per group; more are refused with Overloaded. */
  readonly pendingProposalsPerGroupMax: number;
  /** Ready cycles run back to back before the host yields one event-loop turn to I/O. */
  readonly cyclesPerTurnMax: number;
}

export const defaultGroupHostLimits: GroupHostLimits = {
  tickMs: 10,
  pendingProposalsPerGroupMax: 100_000,
  cyclesPerTurnMax: 8,
};

export function validateGroupHostLimits(l: GroupHostLimits): string[] {
  const problems: string[] = [];
  for (const k of ['tickMs', 'pendingProposalsPerGroupMax', 'cyclesPerTurnMax'] as const) {
    if (!Number.isSafeInteger(l[k]) || l[k] <= 0) problems.push(`${k} must be a positive integer`);
  }
  return problems;
}
