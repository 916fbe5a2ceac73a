// The breakdown `espresso ctl profile stages` prints: per stage, how many sampled messages reached
// it and the mean, p50 and p99 of the time it took, from the records of every node.

import { Stage, stageCount, stageNames } from '../lib/trace.js';
import type { StageRecord } from './stage-recorder.js';

export interface StageLine {
  readonly stage: string;
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface StageBreakdown {
  readonly queue: string | null;
  readonly fromMs: number;
  readonly toMs: number;
  /** Records that went into it, by side. */
  readonly published: number;
  readonly consumed: number;
  /** Stages in path order, received excluded (it starts the clock); stages nobody reached are left out. */
  readonly stages: readonly StageLine[];
  /** Publish received to delivered, as the consuming nodes measured it. */
  readonly endToEnd: StageLine;
  /** Sum of the mean of each stage on the path to delivery (received -> delivered, confirm excluded). */
  readonly pathMeanMs: number;
}

/** Nearest-rank percentile of sorted values (0 when none). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

function line(stage: string, values: number[]): StageLine {
  values.sort((a, b) => a - b);
  const sum = values.reduce((a, v) => a + v, 0);
  return { stage, count: values.length, meanMs: values.length === 0 ? 0 : sum / values.length, p50Ms: percentile(values, 0.5), p99Ms: percentile(values, 0.99) };
}

export function summarize(records: readonly StageRecord[], queue: string | null, fromMs: number, toMs: number): StageBreakdown {
  const perStage: number[][] = Array.from({ length: stageCount }, () => []);
  const e2e: number[] = [];
  let published = 0;
  let consumed = 0;
  for (const r of records) {
    if (r.side === 'publish') published++;
    else consumed++;
    r.durationsMs.forEach((ms, s) => { if (ms !== null) perStage[s]!.push(ms); });
    if (r.endToEndMs !== null) e2e.push(r.endToEndMs);
  }
  const stages: StageLine[] = [];
  let pathMeanMs = 0;
  for (let s: number = Stage.routed; s < stageCount; s++) {
    if (perStage[s]!.length === 0) continue;
    const l = line(stageNames[s]!, perStage[s]!);
    stages.push(l);
    if (s <= Stage.delivered && s !== Stage.confirmSent) pathMeanMs += l.meanMs;
  }
  return { queue, fromMs, toMs, published, consumed, stages, endToEnd: line('end_to_end', e2e), pathMeanMs };
}

/** The breakdown as a table (ms), the stage that took most of the path named. */
export function formatBreakdown(b: StageBreakdown): string {
  const rows = b.stages.map((l) => [l.stage, String(l.count), l.meanMs.toFixed(3), l.p50Ms.toFixed(3), l.p99Ms.toFixed(3)]);
  rows.push([b.endToEnd.stage, String(b.endToEnd.count), b.endToEnd.meanMs.toFixed(3), b.endToEnd.p50Ms.toFixed(3), b.endToEnd.p99Ms.toFixed(3)]);
  const head = ['STAGE', 'COUNT', 'MEAN MS', 'P50 MS', 'P99 MS'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: readonly string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const path = b.stages.filter((l) => l.stage !== 'confirm_sent' && stageNames.indexOf(l.stage) <= Stage.delivered);
  const top = [...path].sort((x, y) => y.meanMs - x.meanMs)[0];
  const lines = [
    `stage breakdown${b.queue === null ? '' : ` of queue '${b.queue}'`}: ${b.published} publishes and ${b.consumed} deliveries traced`,
    fmt(head), ...rows.map(fmt),
    `path to delivery (sum of stage means): ${b.pathMeanMs.toFixed(3)} ms; end to end mean ${b.endToEnd.meanMs.toFixed(3)} ms`,
  ];
  if (top !== undefined && b.pathMeanMs > 0) lines.push(`largest stage: ${top.stage} (${((100 * top.meanMs) / b.pathMeanMs).toFixed(0)}% of the path)`);
  if (b.published + b.consumed === 0) lines.push('(no traced messages in the window: is traffic flowing, and --trace-sample above 0?)');
  return `${lines.join('\n')}\n`;
}
