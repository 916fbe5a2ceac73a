// The messages between the runner and its load-generator worker threads, the shared counters,
// and where the timestamp and unique id sit in every message body.

export type WorkerRole = 'publisher' | 'consumer' | 'rpc-client' | 'rpc-server' | 'sdk-caller' | 'sdk-server';

export interface WorkerSpec {
  role: WorkerRole;
  /** Publisher id written into bodies (unique in a run); consumer index otherwise. */
  id: number;
  url: string;
  /** Publisher: routing keys (queue names) round-robin; consumer: queues to consume. */
  targets: string[];
  /** Consumer: scenario queue index of each target, for the tallies. */
  queueIndexes: number[];
  exchange: string;
  bodyBytes: number;
  persistent: boolean;
  window: number;
  prefetch: number;
  /** Bound of sequence numbers per publisher (tally arrays never grow past it). */
  maxSeq: number;
  settleTimeoutMs: number;
  /** Float64 slots indexed by Counter. */
  counters: SharedArrayBuffer;
}

export enum Counter {
  Published = 0,
  Confirmed = 1,
  Nacked = 2,
  Delivered = 3,
  /** 1 while the broker has this connection blocked (connection.blocked, e.g. a memory alarm). */
  Blocked = 4,
}
export const counterSlots = 5;

export type ToWorker =
  | { cmd: 'phase'; phase: number; ratePerSec: number | undefined; maxMessages: number | undefined }
  | { cmd: 'pause' }
  | { cmd: 'consume' }
  | { cmd: 'finish' };

export interface TallyPart {
  queueIndex: number;
  publisherId: number;
  counts: Uint8Array;
}

export interface DoneMessage {
  ev: 'done';
  /** Encoded HDR histograms of end-to-end latency in µs: [full load, low rate]. */
  histograms: string[];
  tallies: TallyPart[];
  confirmedPerTarget: number[];
  errors: string[];
}

export type FromWorker =
  | { ev: 'ready' }
  | { ev: 'consuming' }
  | { ev: 'paused' }
  | { ev: 'error'; message: string }
  | DoneMessage;

/** Byte offsets in every body: send time (µs, monotonic clock shared by the threads), publisher id, sequence, phase. */
export const header = { timeUs: 0, publisher: 8, seq: 12, phase: 16, bytes: 17 } as const;
