// Limits and defaults of the AMQP server, with units last. Every bound a client can hit has a
// reply code and a text naming the limit (see connection.ts and channel.ts).

export const limits = {
  /** frame_max proposed in connection.tune (RabbitMQ's default). */
  frameMaxBytes: 131072,
  /** Frame size allowed before tune-ok (RabbitMQ's initial_frame_max); old amqplib asks for 4096. */
  frameMinBytes: 4096,
  /** Largest frame accepted before tune-ok is negotiated. */
  frameBeforeTuneBytes: 8192,
  /** channel_max proposed in connection.tune (RabbitMQ's default). */
  channelMax: 2047,
  /** Heartbeat proposed in connection.tune. */
  heartbeatSec: 60,
  /** Largest assembled message body (RabbitMQ's max_message_size default, 16 MiB). */
  maxMessageSizeBytes: 16 * 1024 * 1024,
  /** Hard ceiling for max_message_size, as RabbitMQ (512 MiB). */
  maxMessageSizeCeilingBytes: 512 * 1024 * 1024,
  /** Connections accepted at once; beyond it new sockets get 530 and are closed. */
  maxConnections: 4096,
  /** From accept to connection.open-ok; after it the socket is dropped (RabbitMQ: 10 s). */
  handshakeTimeoutMs: 10_000,
  /** After sending connection.close, wait this long for close-ok before dropping the socket. */
  closeOkTimeoutMs: 3_000,
  /** Frames handled per event-loop turn per connection before yielding (512 halved consumer throughput: pausing costs a turn). */
  framesPerTurnMax: 4096,
  /** How often a channel with global prefetch moves credit parked on consumers of empty queues. */
  globalCreditSweepIntervalMs: 50,
  /** Credit standing for "no limit" for consumers in granted credit mode. */
  unlimitedCredit: 1_000_000_000,
  /** Credit a no-ack consumer gets at a time; refilled at half while the socket keeps up. */
  noAckCreditBatch: 512,
  /** Bytes queued for a client's socket above which no-ack consumers get no more credit until it drains. */
  noAckBufferedMaxBytes: 4 * 1024 * 1024,
  /**
   * Credit flow (credit-flow.ts): a connection whose started and unfinished enqueues (awaiting the
   * Raft commit, or the queue's leader) reach this many stops being read until they are down to
   * half. Bounds what one publisher that outruns the node (disk, replicas) holds in memory; a node
   * that keeps up never reaches it (a confirm window of 256 needs 256). One socket read (64 KiB of
   * frames) may still be handled after the bound is reached.
   */
  inFlightMessagesMax: 4096,
  /** The same bound in message body bytes (16 MiB bodies would otherwise hold 64 GiB). */
  inFlightBytesMax: 32 * 1024 * 1024,
  /** Share of the machine's memory that, in use by the node (memory-alarm.ts), blocks publishing connections (RabbitMQ's 0.6). */
  memoryHighWatermarkFraction: 0.6,
  /** How often the memory alarm reads the memory in use. */
  memoryCheckIntervalMs: 1000,
  /**
   * While the memory alarm is up, a full collection that took t ms is followed by the next one
   * no sooner than this many times t later: forced collections take at most 1/20 of the time.
   */
  memoryCollectGapFactor: 20,
  /** RabbitMQ's default disk_free_limit: below this much free space publishers are blocked. */
  diskFreeLimitBytes: 50_000_000,
  /** How often the disk alarm checks free space of the data directory (statfs: a few µs). */
  diskCheckIntervalMs: 5000,
  /** Unconfirmed publishes tracked per channel; beyond it the channel is closed with 406. */
  unconfirmedPerChannelMax: 1_000_000,
  /** Publishes and acks buffered in one transaction before 406. */
  txBufferedMax: 100_000,
  /** A failed login is answered after this delay (a guessing client waits per try). */
  loginFailureDelayMs: 1000,
  /** Failed logins of one user from one address that lock the pair out... */
  loginFailuresMax: 5,
  /** ...when they fall within this long, and for this long. */
  loginLockoutMs: 60_000,
  /** Address and user pairs the login throttle remembers (the oldest is forgotten first). */
  loginThrottleEntriesMax: 10_000,
  /** Length limit of AMQP short strings (reply texts are cut to it). */
  shortStrMaxBytes: 255,
} as const;
