// Limits of the queue state machine: every structure it keeps is bounded by one of these, and
// the behaviour at the bound is documented next to it.

/** Strict priority levels per queue (x-max-priority is clamped to levelsMax - 1). */
export const priorityLevelsMax = 32;

/** Ready + unacked messages one queue holds; an enqueue past it is rejected (publisher nack). */
export const messagesMax = 50_000_000;

/** Consumers (active and waiting) per queue; a register past it is cancelled at once ('limit'). */
export const consumersMax = 100_000;

/** Message ids in one settle/return/discard command; the edge splits longer lists. */
export const idsPerCommandMax = 65_536;

/** Default x-delivery-limit of replicated queues (RabbitMQ 4); local classic queues have none. */
export const deliveryLimitReplicatedDefault = 20;

/** Largest TTL/timeout we accept in ms (about 24.8 days: fits a Node timer and a 32-bit smi). */
export const durationMsMax = 2_147_483_647;

/**
 * Callers whose retried enqueues a replicated queue recognises. At the cap the origin unused for
 * longest is forgotten: a retry still in flight from it would be applied again (a duplicate, as
 * before deduplication existed).
 */
export const dedupOriginsMax = 4_096;

/**
 * Applied seqs kept above one origin's watermark (calls committed past a gap left by a call still
 * being retried). At the cap the watermark jumps to the lowest of them: the call in the oldest gap
 * would be taken for a duplicate (answered ok, not stored). Callers hold later calls of a queue
 * behind a retried one, so a gap this wide means a caller that misbehaves.
 */
export const dedupSeqsAboveMax = 65_536;

/**
 * An origin with no enqueue for this long (log time: the leaders' timestamps) is forgotten. Far
 * above how long a caller retries a call (15 s route bound in the mesh).
 */
export const dedupOriginIdleMsMax = 10 * 60 * 1000;
