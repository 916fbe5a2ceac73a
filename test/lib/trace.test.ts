// A sampled message's stage trace: durations telescope over the stages it reached (so they add up
// to its whole path), the confirm branch never counts toward its delivery, the wire form survives
// a trip between nodes (and a newer peer's extra stages), and the sampler picks one in N.
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../../src/lib/bytes.js';
import { BucketHistogram } from '../../src/lib/histogram.js';
import {
  consumeStages, copyTrace, mergeTrace, newTrace, publishStages, readTrace, stamp, Stage, stageCount, stageDurations, TraceSampler, writeTrace,
} from '../../src/lib/trace.js';

describe('message traces', () => {
  it('measures each stage from the last one reached, skipping stages not on the path', () => {
    const t = newTrace(1000);
    stamp(t, Stage.routed, 1000.5);
    stamp(t, Stage.proposed, 1001); // led here: never forwarded
    stamp(t, Stage.persisted, 1004);
    stamp(t, Stage.committed, 1006);
    stamp(t, Stage.applied, 1006.5);
    stamp(t, Stage.confirmSent, 1007);
    stamp(t, Stage.delivered, 1008);
    stamp(t, Stage.acked, 1010);
    stamp(t, Stage.settled, 1015);
    const d = new Float64Array(stageCount);
    stageDurations(t, publishStages, d);
    expect(Number.isNaN(d[Stage.forwarded]!)).toBe(true);
    expect([d[Stage.routed], d[Stage.proposed], d[Stage.persisted], d[Stage.committed], d[Stage.applied], d[Stage.confirmSent]]).toEqual([0.5, 0.5, 3, 2, 0.5, 0.5]);
    stageDurations(t, consumeStages, d);
    // Delivery waits on applied, not on the confirm that went out meanwhile.
    expect([d[Stage.delivered], d[Stage.acked], d[Stage.settled]]).toEqual([1.5, 2, 5]);
    expect(Number.isNaN(d[Stage.routed]!)).toBe(true);
  });

  it('keeps the first stamp of a stage, and merges only the stamps it lacks', () => {
    const t = newTrace(1);
    stamp(t, Stage.routed, 1.5);
    stamp(t, Stage.forwarded, 2);
    stamp(t, Stage.forwarded, 9); // a retry to the next leader
    expect(t.at[Stage.forwarded]).toBe(2);
    const back = newTrace(1);
    stamp(back, Stage.proposed, 3);
    back.at[Stage.forwarded] = 99;
    mergeTrace(t, back);
    expect([t.at[Stage.forwarded], t.at[Stage.proposed]]).toEqual([2, 3]);
    // Another target queue's copy starts from the routing, not from the first copy's path.
    const other = copyTrace(t, 'q2');
    expect([other.queue, other.at[Stage.received], other.at[Stage.routed]]).toEqual(['q2', 1, 1.5]);
    expect(Number.isNaN(other.at[Stage.forwarded]!) && Number.isNaN(other.at[Stage.proposed]!)).toBe(true);
  });

  it('crosses the wire between nodes, and skips stages a newer peer added', () => {
    const t = newTrace(1234.5678);
    t.queue = 'orders';
    stamp(t, Stage.routed, 1235);
    const w = new ByteWriter(64);
    writeTrace(w, t);
    const back = readTrace(new ByteReader(w.done(), () => new Error('cut')));
    expect(back.queue).toBe('orders');
    expect([...back.at]).toEqual([...t.at]);
    const newer = new ByteWriter(64).u8(stageCount + 2).str('q');
    for (let s = 0; s < stageCount + 2; s++) newer.f64(s);
    expect([...readTrace(new ByteReader(newer.done(), () => new Error('cut'))).at]).toEqual(Array.from({ length: stageCount }, (_, s) => s));
  });

  it('samples one publish in N, none with 0', () => {
    const s = new TraceSampler(4);
    expect(Array.from({ length: 12 }, () => s.take()).filter(Boolean)).toHaveLength(3);
    const off = new TraceSampler(0);
    expect(Array.from({ length: 10 }, () => off.take()).some(Boolean)).toBe(false);
  });
});

describe('bucket histograms', () => {
  it('counts values into their bucket (upper bounds inclusive, +Inf last) with sum and count', () => {
    const h = new BucketHistogram([1, 5, 10]);
    for (const v of [0.5, 1, 3, 10, 11, 50]) h.record(v);
    expect([...h.counts]).toEqual([2, 1, 1, 2]);
    expect(h.count).toBe(6);
    expect(h.sum).toBe(75.5);
    expect(h.quantileBound(0.5)).toBe(5);
    expect(h.quantileBound(1)).toBe(10);
  });
});
