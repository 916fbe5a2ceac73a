// The queue state machine's public surface: what the local queue (broker/) and the replicated
// queue (cluster/) import.

export { apply, nextDeadlineMs } from './apply.js';
export { createQueueState, counters, recount, type QueueState } from './state.js';
export { snapshot, restore, liveMsgIds, liveRanges, type QueueSnapshot } from './snapshot.js';
export * from './types.js';
export { type DedupTuple } from './dedup.js';
export * as queueLimits from './limits.js';
export { queueConfigFromArguments, type QueueArguments } from './config.js';
export { deadLetter, isDeadLetterCycle, plainFieldValues, type Death, type DeadLettered, type FieldValues, type HeaderTable } from './dead-letter.js';
export { parseExpiration } from './expiration.js';
export { answerCaller, type CallerAnswer } from './caller-answer.js';
