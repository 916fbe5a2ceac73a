// Where sampled messages' time went: the broker hands each finished trace here (its publishing
// side on the node it was published to, its consuming side on the node of its consumer). Each
// stage's duration goes into a histogram per stage (/metrics) and a bounded ring of recent records
// that `espresso ctl profile stages` gathers from every node.

import { BucketHistogram, latencyBucketsSeconds } from '../lib/histogram.js';
import { consumeStages, newTrace, publishStages, Stage, stageCount, stageDurations, TraceSampler, type MessageTrace } from '../lib/trace.js';
import type { TraceRecorder } from '../broker/counters.js';
import { traceNowMs } from '../cluster/trace-clock.js';

/** One side of one traced message, as kept for ctl. Durations in ms per stage, null where not reached. */
export interface StageRecord {
  /** When the record was made (ms since the epoch). */
  readonly atMs: number;
  readonly queue: string;
  readonly side: 'publish' | 'consume';
  readonly durationsMs: ReadonlyArray<number | null>;
  /** Consume side: publish received to delivered (ms); null on the publish side. */
  readonly endToEndMs: number | null;
}

/** Records kept per node (about 100 s of 20,000 msg/s traced 1 in 100). */
export const stageRecordsMax = 20_000;

export class StageRecorder implements TraceRecorder {
  /** Per stage (index = Stage), seconds since the previous stage reached. */
  readonly stageSeconds: readonly BucketHistogram[];
  /** Publish received to delivered, sampled messages (seconds). */
  readonly endToEndSeconds = new BucketHistogram(latencyBucketsSeconds);
  private readonly records: StageRecord[] = [];
  private next = 0;
  private sampler: TraceSampler;
  private readonly scratch = new Float64Array(stageCount);
  private every: number;

  constructor(sampleEvery: number, private readonly nowMs: () => number = traceNowMs) {
    this.every = sampleEvery;
    this.sampler = new TraceSampler(sampleEvery);
    this.stageSeconds = Array.from({ length: stageCount }, () => new BucketHistogram(latencyBucketsSeconds));
  }

  /** One publish in this many is traced (0: none). */
  get sampleEvery(): number {
    return this.every;
  }

  set sampleEvery(n: number) {
    this.every = n;
    this.sampler = new TraceSampler(n);
  }

  sample(): MessageTrace | undefined {
    return this.sampler.take() ? newTrace(this.nowMs()) : undefined;
  }

  published(trace: MessageTrace): void {
    this.keep(trace, 'publish', publishStages, null);
  }

  consumed(trace: MessageTrace): void {
    const delivered = trace.at[Stage.delivered]! - trace.at[Stage.received]!;
    const e2e = Number.isNaN(delivered) ? null : Math.max(0, delivered);
    if (e2e !== null) this.endToEndSeconds.record(e2e / 1000);
    this.keep(trace, 'consume', consumeStages, e2e);
  }

  /** Records made at or after `sinceMs` (of `queue` only, when given), oldest first. */
  recordsSince(sinceMs: number, queue?: string): StageRecord[] {
    const n = this.records.length;
    const out: StageRecord[] = [];
    for (let k = 0; k < n; k++) {
      const r = this.records[(this.next + k) % n]!;
      if (r.atMs >= sinceMs && (queue === undefined || r.queue === queue)) out.push(r);
    }
    return out;
  }

  private keep(trace: MessageTrace, side: StageRecord['side'], stages: readonly Stage[], endToEndMs: number | null): void {
    const d = this.scratch;
    stageDurations(trace, stages, d);
    const durationsMs: Array<number | null> = new Array<number | null>(stageCount).fill(null);
    for (const s of stages) {
      const ms = d[s]!;
      if (Number.isNaN(ms)) continue;
      durationsMs[s] = ms;
      this.stageSeconds[s]!.record(ms / 1000);
    }
    const record: StageRecord = { atMs: this.nowMs(), queue: trace.queue, side, durationsMs, endToEndMs };
    if (this.records.length < stageRecordsMax) return void this.records.push(record);
    // Full: `next` is the oldest, overwritten now.
    this.records[this.next] = record;
    this.next = (this.next + 1) % stageRecordsMax;
  }
}
