// Where one sampled message's time goes: a timestamp per stage of its path, from the publish
// received to the settle of its ack, stamped by the layers it passes through on whichever nodes
// and read by observe/. Pure data and arithmetic: the stamps are handed in (wall-clock ms since the
// epoch with a fraction, comparable across the nodes of one machine, and across machines as far as
// their clocks agree).

import type { ByteReader, ByteWriter } from './bytes.js';

/** The stages in path order; numbers are on the wire between nodes: they only grow at the end. */
export const Stage = {
  received: 0, routed: 1, forwarded: 2, proposed: 3, persisted: 4, committed: 5, applied: 6,
  confirmSent: 7, delivered: 8, acked: 9, settled: 10,
} as const;
export type Stage = (typeof Stage)[keyof typeof Stage];
export const stageCount = 11;
/** Metric label of each stage. */
export const stageNames: readonly string[] = [
  'received', 'routed', 'forwarded', 'proposed', 'persisted', 'committed', 'applied', 'confirm_sent', 'delivered', 'acked', 'settled',
];

/** Stages measured where the message was published, ending with its confirm. */
export const publishStages: readonly Stage[] = [
  Stage.routed, Stage.forwarded, Stage.proposed, Stage.persisted, Stage.committed, Stage.applied, Stage.confirmSent,
];
/** Stages measured where the message was consumed: from applied (the queue took it) to its settle. */
export const consumeStages: readonly Stage[] = [Stage.delivered, Stage.acked, Stage.settled];

export interface MessageTrace {
  /** Per stage, when the message reached it (ms since the epoch); NaN: not yet, or not on its path. */
  readonly at: Float64Array;
  /** The queue this copy went to ('' before routing). */
  queue: string;
}

export function newTrace(receivedMs: number): MessageTrace {
  const at = new Float64Array(stageCount).fill(Number.NaN);
  at[Stage.received] = receivedMs;
  return { at, queue: '' };
}

/**
 * The trace of a copy going to another target queue: the stamps up to routing (what happened
 * after it, on the first copy's way to its own queue, is not this copy's).
 */
export function copyTrace(t: MessageTrace, queue: string): MessageTrace {
  const c = newTrace(t.at[Stage.received]!);
  c.at[Stage.routed] = t.at[Stage.routed]!;
  c.queue = queue;
  return c;
}

/** Stamps `stage` once: a stage reached again (a retry) keeps its first time. */
export function stamp(t: MessageTrace, stage: Stage, nowMs: number): void {
  if (Number.isNaN(t.at[stage]!)) t.at[stage] = nowMs;
}

/** Stamps set in `from` and not in `into` (a trace that came back from another node). */
export function mergeTrace(into: MessageTrace, from: MessageTrace): void {
  for (let s = 0; s < stageCount; s++) if (Number.isNaN(into.at[s]!) && !Number.isNaN(from.at[s]!)) into.at[s] = from.at[s]!;
}

/**
 * For each stage of `stages` the message reached: ms since the latest earlier stage it reached (a
 * stage not on its path, e.g. forwarded for a queue led where it was published, is skipped, so
 * consecutive durations add up to the whole path). `out[stage]` is NaN for stages not reached.
 */
export function stageDurations(t: MessageTrace, stages: readonly Stage[], out: Float64Array): void {
  out.fill(Number.NaN);
  for (const s of stages) {
    const at = t.at[s]!;
    if (Number.isNaN(at)) continue;
    for (let prev = s - 1; prev >= 0; prev--) {
      const before = t.at[prev]!;
      if (Number.isNaN(before)) continue;
      // A stage of the other branch (the confirm) is not what the delivery waited on.
      if (s >= Stage.delivered && prev === Stage.confirmSent) continue;
      out[s] = Math.max(0, at - before);
      break;
    }
  }
}

/** Wire form: stage count, then each stamp (f64, NaN for none). */
export function writeTrace(w: ByteWriter, t: MessageTrace): void {
  w.u8(stageCount).str(t.queue);
  for (let s = 0; s < stageCount; s++) w.f64(t.at[s]!);
}

/** Reads what writeTrace wrote; stages a newer peer added beyond ours are skipped. */
export function readTrace(r: ByteReader): MessageTrace {
  const n = r.u8();
  const queue = r.str();
  const t = newTrace(Number.NaN);
  t.queue = queue;
  for (let s = 0; s < n; s++) {
    const v = r.f64();
    if (s < stageCount) t.at[s] = v;
  }
  return t;
}

/** Picks one publish in `every` (0: none): a countdown, so the others cost a decrement. */
export class TraceSampler {
  private left: number;

  constructor(private readonly every: number) {
    this.left = every;
  }

  take(): boolean {
    if (this.every <= 0) return false;
    if (--this.left > 0) return false;
    this.left = this.every;
    return true;
  }
}
