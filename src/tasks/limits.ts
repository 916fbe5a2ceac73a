// Limits and defaults of the Task-RPC SDK, with units; the behaviour at each bound is documented
// where it applies (README "Task-RPC").

export interface RpcLimits {
  /** A call's timeout when the caller names none. */
  readonly defaultTimeoutMs: number;
  /** Longest timeout a call may ask for (1 day). */
  readonly maxTimeoutMs: number;
  /** Calls in flight or waiting for a connection per client; one more is refused with RpcTooManyCallsError. */
  readonly maxPendingCalls: number;
  /** Handlers a server runs at once per method when the caller names no concurrency (also its prefetch). */
  readonly defaultConcurrency: number;
  /** Highest concurrency per method (AMQP prefetch is 16-bit). */
  readonly maxConcurrency: number;
  /** Replies of handlers that finished while the server was disconnected, kept for the next connection; more are dropped. */
  readonly maxHeldReplies: number;
  /** One connection attempt (TCP + AMQP handshake). */
  readonly connectTimeoutMs: number;
  /** AMQP heartbeat asked for when the URL names none: a silent peer is dropped after two intervals. */
  readonly heartbeatSec: number;
  /** Pause after a full round of URLs failed, doubling from min to max. */
  readonly reconnectDelayMinMs: number;
  readonly reconnectDelayMaxMs: number;
  /** close() waits this long for running handlers before closing the connection anyway. */
  readonly closeDrainMs: number;
}

export const defaultRpcLimits: RpcLimits = {
  defaultTimeoutMs: 30_000,
  maxTimeoutMs: 24 * 3600 * 1000,
  maxPendingCalls: 65_536,
  defaultConcurrency: 8,
  maxConcurrency: 65_535,
  maxHeldReplies: 4096,
  connectTimeoutMs: 5_000,
  heartbeatSec: 10,
  reconnectDelayMinMs: 100,
  reconnectDelayMaxMs: 2_000,
  closeDrainMs: 10_000,
};
