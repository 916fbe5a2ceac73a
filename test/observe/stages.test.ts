// The stage recorder and the breakdown ctl prints: traced messages' stages go into per-stage
// histograms and a bounded ring of records; the breakdown's path (sum of stage means up to the
// delivery) adds up to the measured end to end, and names the stage that took most of it.
import { describe, expect, it } from 'vitest';
import { newTrace, stamp, Stage } from '../../src/lib/trace.js';
import { StageRecorder, stageRecordsMax } from '../../src/observe/stage-recorder.js';
import { formatBreakdown, percentile, summarize } from '../../src/observe/stage-summary.js';

/** One message's path on the fake clock: publish at `t0`, every stage `step` ms later, persisted taking `fsyncMs`. */
function traced(recorder: StageRecorder, t0: number, fsyncMs: number, queue = 'q'): void {
  const t = newTrace(t0);
  t.queue = queue;
  const at = [0, 0.1, 0.4, 0.5, 0.5 + fsyncMs, 1 + fsyncMs, 1.2 + fsyncMs];
  const stages = [Stage.received, Stage.routed, Stage.forwarded, Stage.proposed, Stage.persisted, Stage.committed, Stage.applied];
  stages.forEach((s, k) => stamp(t, s, t0 + at[k]!));
  stamp(t, Stage.confirmSent, t0 + 1.5 + fsyncMs);
  recorder.published(t);
  stamp(t, Stage.delivered, t0 + 2 + fsyncMs);
  stamp(t, Stage.acked, t0 + 3 + fsyncMs);
  stamp(t, Stage.settled, t0 + 6 + fsyncMs);
  recorder.consumed(t);
}

describe('stage recorder', () => {
  it('records per-stage histograms and end to end, and keeps records to gather by time and queue', () => {
    let now = 5_000;
    const r = new StageRecorder(1, () => now);
    traced(r, 1_000, 4);
    now = 6_000;
    traced(r, 2_000, 8, 'other');
    expect(r.stageSeconds[Stage.persisted]!.count).toBe(2);
    expect(r.stageSeconds[Stage.persisted]!.sum).toBeCloseTo(0.012);
    expect(r.stageSeconds[Stage.received]!.count).toBe(0);
    expect(r.endToEndSeconds.count).toBe(2);
    expect(r.recordsSince(0)).toHaveLength(4);
    expect(r.recordsSince(5_500)).toHaveLength(2);
    expect(r.recordsSince(0, 'q').every((x) => x.queue === 'q')).toBe(true);
    expect(r.sample()).toBeDefined();
    r.sampleEvery = 0;
    expect(r.sample()).toBeUndefined();
  });

  it('keeps the newest records once full, oldest first', () => {
    let now = 0;
    const r = new StageRecorder(1, () => now);
    for (let i = 0; i < stageRecordsMax + 10; i++) {
      now = i;
      const t = newTrace(i);
      stamp(t, Stage.routed, i + 1);
      r.published(t);
    }
    const all = r.recordsSince(0);
    expect(all).toHaveLength(stageRecordsMax);
    expect(all[0]!.atMs).toBe(10);
    expect(all[all.length - 1]!.atMs).toBe(stageRecordsMax + 9);
  });
});

describe('stage breakdown', () => {
  it('adds the stages up to the end to end and names the largest', () => {
    const r = new StageRecorder(1, () => 0);
    for (let i = 0; i < 100; i++) traced(r, i * 10, i < 50 ? 4 : 8);
    const b = summarize(r.recordsSince(0), null, 0, 1);
    expect([b.published, b.consumed]).toEqual([100, 100]);
    const persisted = b.stages.find((l) => l.stage === 'persisted')!;
    expect([persisted.meanMs, persisted.p50Ms, persisted.p99Ms]).toEqual([6, 4, 8]);
    expect(b.pathMeanMs).toBeCloseTo(b.endToEnd.meanMs);
    expect(b.stages.map((l) => l.stage)).toEqual(['routed', 'forwarded', 'proposed', 'persisted', 'committed', 'applied', 'confirm_sent', 'delivered', 'acked', 'settled']);
    const text = formatBreakdown(b);
    expect(text).toContain('largest stage: persisted');
    expect(text).toContain('100 publishes and 100 deliveries traced');
  });

  it('says so when nothing was traced, and takes percentiles by nearest rank', () => {
    expect(formatBreakdown(summarize([], 'q', 0, 1))).toContain('no traced messages');
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(percentile([1, 2, 3, 4], 0.99)).toBe(4);
    expect(percentile([], 0.5)).toBe(0);
  });
});
