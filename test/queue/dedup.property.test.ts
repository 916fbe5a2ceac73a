// Retried enqueues (same origin and seq) reach the log several times and out of order around a
// failover: the queue must store each distinct call exactly once and answer every attempt accepted.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  apply, createQueueState, defaultQueueConfig, restore, snapshot, queueLimits, type Effect, type EnqueueIdentity, type QueueState,
} from '../../src/queue/index.js';

interface Attempt {
  readonly origin: string;
  readonly seq: number;
}

/** Calls per origin, each sent 1..3 times, in a random log order. */
const scheduleArb = fc
  .array(fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 4 })
  .chain((origins) => {
    const attempts: Attempt[] = [];
    origins.forEach((copies, o) => copies.forEach((n, s) => {
      for (let k = 0; k < n; k++) attempts.push({ origin: `o${o}`, seq: s + 1 });
    }));
    return fc.tuple(fc.shuffledSubarray(attempts, { minLength: attempts.length }), fc.nat(attempts.length), fc.array(fc.nat(3), { minLength: attempts.length, maxLength: attempts.length }));
  });

/**
 * The floor a caller would send with each call: its lowest seq still in flight, i.e. at most every
 * seq of that origin that still reaches the log later than this call's first attempt (and maybe
 * lower still: a caller's floor may lag).
 */
function floors(order: readonly Attempt[], lag: readonly number[]): Map<string, number> {
  const out = new Map<string, number>();
  order.forEach((a, i) => {
    const key = `${a.origin}/${a.seq}`;
    if (out.has(key)) return;
    let floor = a.seq;
    for (const b of order.slice(i + 1)) if (b.origin === a.origin) floor = Math.min(floor, b.seq);
    out.set(key, Math.max(1, floor - (lag[i] ?? 0)));
  });
  return out;
}

function enqueue(state: QueueState, id: EnqueueIdentity, index: number, timeMs: number): Effect[] {
  return apply(state, { type: 'enqueue', sizeBytes: 1, priority: 0, ttlMs: null, dedup: id }, { index, timeMs });
}

/** Takes every ready message with no-ack gets: the ids left in the queue, in serving order. */
function drain(state: QueueState, fromIndex: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const effects = apply(state, { type: 'get', owner: { node: 'n', connection: 'c', channel: 'ch' }, noAck: true }, { index: fromIndex + i, timeMs: 0 });
    const got = effects.find((e) => e.type === 'getResult');
    if (got === undefined || got.type !== 'getResult') return ids;
    ids.push(got.msgId);
  }
  throw new Error('drain did not end');
}

describe('retried enqueues are stored once', () => {
  it('every distinct (origin, seq) is enqueued exactly once through duplicates, reordering and a snapshot/restore', () => {
    let duplicates = 0;
    fc.assert(
      fc.property(scheduleArb, ([order, cut, lag]) => {
        const floorOf = floors(order, lag);
        let state = createQueueState(defaultQueueConfig, 0);
        const stored = new Map<number, string>();
        order.forEach((a, i) => {
          if (i === cut) state = restore(JSON.parse(JSON.stringify(snapshot(state))) as ReturnType<typeof snapshot>);
          const key = `${a.origin}/${a.seq}`;
          const effects = enqueue(state, { origin: a.origin, seq: a.seq, floor: floorOf.get(key) ?? 1 }, i + 1, 1000 + i);
          const result = effects.find((e) => e.type === 'enqueueResult');
          expect(result).toMatchObject({ outcome: 'accepted' });
          if (result?.type === 'enqueueResult' && result.duplicate === true) duplicates++;
          else stored.set(i + 1, key);
        });
        const left = drain(state, order.length + 1).map((id) => stored.get(id));
        const distinct = new Set(order.map((a) => `${a.origin}/${a.seq}`));
        expect(left.sort()).toEqual([...distinct].sort());
      }),
      { numRuns: 400, seed: 5150 },
    );
    // the schedules really repeat calls
    expect(duplicates).toBeGreaterThan(400);
  });

  it('a snapshot taken before the table existed restores with no remembered calls', () => {
    const state = createQueueState(defaultQueueConfig, 0);
    enqueue(state, { origin: 'a', seq: 1, floor: 1 }, 1, 0);
    const { dedup: _dropped, ...old } = snapshot(state);
    const restored = restore(old);
    expect(restored.ready).toBe(1);
    expect(enqueue(restored, { origin: 'a', seq: 1, floor: 1 }, 2, 0).find((e) => e.type === 'enqueueResult')).not.toHaveProperty('duplicate');
  });

  it('a retry after the caller moved its floor past it stores nothing, and gaps below the floor are forgotten', () => {
    const state = createQueueState(defaultQueueConfig, 0);
    // seq 1 is being retried; 2..4 commit first with floor 1, so they wait above the gap at 1
    for (const seq of [2, 3, 4]) enqueue(state, { origin: 'a', seq, floor: 1 }, seq, 0);
    expect(state.dedup.get('a')).toMatchObject({ watermark: 0 });
    expect([...(state.dedup.get('a')?.above ?? [])]).toEqual([2, 3, 4]);
    // the caller gave up on 1: seq 5 says so with floor 5, and the table collapses to a watermark
    enqueue(state, { origin: 'a', seq: 5, floor: 5 }, 5, 0);
    expect(state.dedup.get('a')).toMatchObject({ watermark: 5 });
    expect(state.dedup.get('a')?.above.size).toBe(0);
    const late = enqueue(state, { origin: 'a', seq: 1, floor: 1 }, 6, 0).find((e) => e.type === 'enqueueResult');
    expect(late).toMatchObject({ outcome: 'accepted', duplicate: true });
    expect(state.ready).toBe(4);
  });

  it('a rejected enqueue is judged again when retried, and an idle origin is forgotten after the idle bound', () => {
    const state = createQueueState({ ...defaultQueueConfig, maxLength: 1, overflow: 'reject-publish' }, 0);
    enqueue(state, { origin: 'a', seq: 1, floor: 1 }, 1, 0);
    expect(enqueue(state, { origin: 'a', seq: 2, floor: 1 }, 2, 0).find((e) => e.type === 'enqueueResult')).toMatchObject({ outcome: 'rejected' });
    apply(state, { type: 'purge' }, { index: 3, timeMs: 0 });
    expect(enqueue(state, { origin: 'a', seq: 2, floor: 1 }, 4, 0).find((e) => e.type === 'enqueueResult')).toMatchObject({ outcome: 'accepted' });
    expect(state.ready).toBe(1);
    enqueue(state, { origin: 'b', seq: 1, floor: 1 }, 5, queueLimits.dedupOriginIdleMsMax + 1);
    expect([...state.dedup.keys()]).toEqual(['b']);
  });
});
