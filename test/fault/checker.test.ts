// The fault checker on synthetic histories: a clean run passes; a confirmed message never
// delivered is lost; a delivery nobody published (or with a body that disagrees) is unexpected;
// duplicates, redeliveries and first-delivery order are counted; availability is the longest gap.

import { describe, expect, it } from 'vitest';
import { check, longestGap, type DeliveryRecord, type History, type PublishRecord } from '../../cluster/checker.js';

function pub(producer: string, queue: string, seq: number, outcome: PublishRecord['outcome'] = 'ok', doneMs = seq * 10 + 5): PublishRecord {
  const r: PublishRecord = { id: `${producer}-${queue}-${seq}`, producer, queue, seq, sentMs: seq * 10, outcome };
  if (outcome !== 'unknown') r.doneMs = doneMs;
  return r;
}

function del(p: PublishRecord, atMs: number, redelivered = false): DeliveryRecord {
  return { id: p.id, queue: p.queue, consumer: 'c1', redelivered, atMs, bodyId: p.id };
}

function history(publishes: PublishRecord[], deliveries: DeliveryRecord[], endMs = 1000): History {
  return { publishes, deliveries, ops: [], startMs: 0, endMs };
}

describe('fault checker', () => {
  it('passes a run where every confirmed message is delivered once, in order', () => {
    const ps = [0, 1, 2, 3].map((s) => pub('p1', 'q1', s));
    const v = check(history(ps, ps.map((p, i) => del(p, 100 + i))));
    expect(v.ok).toBe(true);
    expect(v).toMatchObject({ confirmed: 4, lost: [], unexpected: [], duplicates: 0, redelivered: 0, orderViolations: [] });
  });

  it('reports a confirmed message that was never delivered as lost, and fails', () => {
    const ps = [0, 1, 2].map((s) => pub('p1', 'q1', s));
    const v = check(history(ps, [del(ps[0]!, 100), del(ps[2]!, 101)]));
    expect(v.ok).toBe(false);
    expect(v.lost).toEqual(['p1-q1-1']);
    expect(v.lostCount).toBe(1);
  });

  it('does not count unconfirmed or nacked messages as lost, and notes unknown ones delivered anyway', () => {
    const ps = [pub('p1', 'q1', 0, 'unknown'), pub('p1', 'q1', 1, 'nack'), pub('p1', 'q1', 2, 'unknown')];
    const v = check(history(ps, [del(ps[0]!, 100)]));
    expect(v.ok).toBe(true);
    expect(v).toMatchObject({ confirmed: 0, nacked: 1, unknown: 2, unknownDelivered: 1, lost: [] });
  });

  it('reports deliveries nobody published, in the wrong queue, or whose body disagrees as unexpected', () => {
    const p = pub('p1', 'q1', 0);
    const stray: DeliveryRecord = { id: 'ghost', queue: 'q1', consumer: 'c1', redelivered: false, atMs: 1, bodyId: 'ghost' };
    const wrongQueue: DeliveryRecord = { ...del(p, 2), queue: 'q2' };
    const wrongBody: DeliveryRecord = { ...del(p, 3), bodyId: 'p1-q1-9' };
    const v = check(history([p], [del(p, 0), stray, wrongQueue, wrongBody]));
    expect(v.ok).toBe(false);
    expect(v.unexpected).toEqual(['ghost', 'p1-q1-0', 'p1-q1-0']);
  });

  it('counts duplicates and redeliveries without failing (at-least-once)', () => {
    const ps = [0, 1].map((s) => pub('p1', 'q1', s));
    const v = check(history(ps, [del(ps[0]!, 1), del(ps[1]!, 2), del(ps[0]!, 3, true), del(ps[1]!, 4, false)]));
    expect(v.ok).toBe(true);
    expect(v.duplicates).toBe(2);
    expect(v.redelivered).toBe(1);
    expect(v.distinctDelivered).toBe(2);
  });

  it('finds first deliveries out of publish order per producer and queue, ignoring redeliveries', () => {
    const a = [0, 1, 2].map((s) => pub('p1', 'q1', s));
    const b = [0, 1].map((s) => pub('p2', 'q1', s));
    // p2's interleaving with p1 is fine; p1's 0 arriving after its 2 is a violation; a redelivered
    // message arriving late is not.
    const v = check(history([...a, ...b], [del(a[1]!, 1), del(b[0]!, 2), del(a[2]!, 3), del(a[0]!, 4), del(b[1]!, 5)]));
    expect(v.orderViolations).toEqual([{ producer: 'p1', queue: 'q1', seq: 0, afterSeq: 2 }]);
    expect(v.orderViolationCount).toBe(1);
    expect(v.ok).toBe(false);
    const w = check(history(a, [del(a[1]!, 1), del(a[2]!, 2), del(a[0]!, 3, true)]));
    expect(w.orderViolations).toEqual([]);
  });

  it('measures the longest window without a confirm, overall and per nemesis operation', () => {
    expect(longestGap([10, 20, 80], 0, 100)).toBe(60);
    expect(longestGap([], 0, 100)).toBe(100);
    expect(longestGap([5, 95], 0, 100)).toBe(90);
    const ps = [pub('p1', 'q1', 0, 'ok', 100), pub('p1', 'q1', 1, 'ok', 900), pub('p1', 'q1', 2, 'ok', 950), pub('p1', 'q1', 3, 'ok', 2000)];
    const h: History = {
      publishes: ps,
      deliveries: ps.map((p, i) => del(p, 3000 + i)),
      ops: [{ name: 'kill', target: 'n1', startMs: 200, endMs: 600 }, { name: 'pause', target: 'n2', startMs: 1000, endMs: 1500 }],
      startMs: 0,
      endMs: 2500,
    };
    const v = check(h);
    expect(v.availability.map((a) => [a.op.name, a.longestGapMs, a.confirms])).toEqual([['kill', 700, 2], ['pause', 1000, 1]]);
    expect(v.longestGapMs).toBe(1050);
    // The drain after the producers stop is not unavailability.
    const drained = check({ ...h, endMs: 9000, loadEndMs: 2500 });
    expect(drained.availability.map((a) => a.longestGapMs)).toEqual([700, 1000]);
    expect(drained.longestGapMs).toBe(1050);
  });
});
