// Limits and timings of mesh routing (queue calls forwarded to a queue's leader, deliveries
// streamed back), units last; the behaviour at each bound is documented where it is used.

export interface MeshLimits {
  /** A call keeps retrying on the new leader (NotLeader, unreachable, no leader yet) this long, then fails. */
  readonly routeTimeoutMs: number;
  /** One forwarded call without an answer by then is retried (it may have been carried out: at least once). */
  readonly callTimeoutMs: number;
  /** Backoff between retries: doubling from min to max. */
  readonly retryDelayMsMin: number;
  readonly retryDelayMsMax: number;
  /** A peer the transport reports down this long is gone: leaders return its consumers' messages. */
  readonly nodeDownGraceMs: number;
  /** How often leaders look for consumers of gone nodes and earlier incarnations. */
  readonly sweepIntervalMs: number;
  /** A follower replica of a deleted queue drops its group when the delete is applied, or after this. */
  readonly retireGraceMs: number;
  /** Consumers of a gone node remembered per node (to cancel them if it comes back), beyond which they are not. */
  readonly goneConsumersPerNodeMax: number;
  /** Default replicas of a new replicated queue (x-quorum-initial-group-size overrides; capped at the nodes known). */
  readonly defaultReplicas: number;
}

export const defaultMeshLimits: MeshLimits = {
  routeTimeoutMs: 15_000,
  callTimeoutMs: 5_000,
  retryDelayMsMin: 20,
  retryDelayMsMax: 500,
  nodeDownGraceMs: 5_000,
  sweepIntervalMs: 1_000,
  retireGraceMs: 30_000,
  goneConsumersPerNodeMax: 10_000,
  defaultReplicas: 3,
};

/** A new queue's preferred leader campaigns again this often while no leader is known, at most this many times. */
export const preferredCampaignIntervalMs = 150;
export const preferredCampaignsMax = 8;
