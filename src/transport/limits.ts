// Limits of the transport: every queue and buffer is bounded, with what happens at the bound.

export interface TransportLimits {
  /**
   * Bytes of payload queued for one peer and not yet written. At the bound `send` refuses the
   * item (returns false and counts it in `dropped`): the layers above retransmit (Raft) or
   * resend on their own timers (gossip), so dropping the newest keeps memory bounded.
   */
  peerQueueBytesMax: number;
  /** Items queued for one peer; same behaviour at the bound as the bytes limit. */
  peerQueueItemsMax: number;
  /** Payload bytes per frame; a turn with more is split into several frames. */
  frameBytesMax: number;
  /** Items per frame. */
  frameItemsMax: number;
  /** One payload; larger sends are refused (a bug in the caller: chunk it). Fits one append of one largest AMQP message (16 MiB body) with its headers. */
  payloadBytesMax: number;
  /** Reconnect backoff: first delay, cap, and the jitter fraction taken off at random. */
  reconnectDelayMsMin: number;
  reconnectDelayMsMax: number;
  reconnectJitter: number;
  /** Time to open a stream and finish the handshake before the attempt counts as failed. */
  connectTimeoutMs: number;
  /** HTTP/2 keepalive ping period and timeout, to notice a peer that vanished silently. */
  keepaliveMs: number;
  keepaliveTimeoutMs: number;
  /** Receive window the dialing (receiving) side asks for; servers cannot enlarge theirs. */
  flowControlWindowBytes: number;
  /** Inbound streams at once (peers plus handshakes in flight). */
  inboundStreamsMax: number;
}

export const defaultTransportLimits: TransportLimits = {
  peerQueueBytesMax: 64 * 1024 * 1024,
  peerQueueItemsMax: 256 * 1024,
  frameBytesMax: 1024 * 1024,
  frameItemsMax: 1024,
  payloadBytesMax: 32 * 1024 * 1024,
  reconnectDelayMsMin: 100,
  reconnectDelayMsMax: 5_000,
  reconnectJitter: 0.5,
  connectTimeoutMs: 5_000,
  keepaliveMs: 10_000,
  keepaliveTimeoutMs: 5_000,
  flowControlWindowBytes: 16 * 1024 * 1024,
  inboundStreamsMax: 256,
};
