import { describe, expect, it } from 'vitest';
import { applyTask, createTaskState, dispatchDue, type TaskEntry, type TaskState } from '../../src/tasks/task-machine.js';
import { validate, checkSchema } from '../../src/tasks/task-schema.js';

type Dist<T> = T extends unknown ? Omit<T, 'at'> : never;

function run(s: TaskState, at: number, e: Dist<TaskEntry>) {
  return applyTask(s, { ...e, at } as TaskEntry);
}

function submitted(maxAttempts = 3, leaseMs = 1000, retentionMs = 5000): TaskState {
  const s = createTaskState();
  run(s, 100, { k: 'submit', id: 't1', type: 'build', vhost: '/', input: { n: 1 }, user: 'guest', maxAttempts, retentionMs, leaseMs });
  return s;
}

describe('task state machine', () => {
  it('runs a task through dispatch, claim, steps and completion with the log\'s time', () => {
    const s = submitted();
    expect(dispatchDue(s, 100, 10_000, 10)).toEqual(['t1']);
    const d = run(s, 110, { k: 'dispatch', id: 't1', redispatchMs: 10_000 });
    expect(d.ok && d.dispatch).toBe(1);
    run(s, 111, { k: 'dispatched', id: 't1', dispatch: 1 });
    expect(dispatchDue(s, 5000, 10_000, 10)).toEqual([]);
    const c = run(s, 120, { k: 'claim', id: 't1', dispatch: 1, worker: 'w1', node: 'n3' });
    expect(c.ok).toBe(true);
    run(s, 130, { k: 'stepStart', id: 't1', attempt: 1, name: 'fetch' });
    run(s, 140, { k: 'stepDone', id: 't1', attempt: 1, name: 'fetch', result: { bytes: 3 } });
    const done = run(s, 150, { k: 'complete', id: 't1', attempt: 1, result: 'ok' });
    expect(done.ok).toBe(true);
    const t = s.tasks.get('t1')!;
    expect(t.status).toBe('succeeded');
    expect(t.steps).toEqual([{ name: 'fetch', status: 'succeeded', attempt: 1, startedAt: 130, finishedAt: 140, detail: null, result: { bytes: 3 } }]);
    expect([t.createdAt, t.updatedAt, t.finishedAt]).toEqual([100, 150, 150]);
    expect(t.attempts).toEqual([{ n: 1, worker: 'w1', node: 'n3', startedAt: 120, endedAt: 150, error: null }]);
  });

  it('a second claim of the same dispatch takes over, fences the old owner and keeps finished steps', () => {
    const s = submitted();
    run(s, 110, { k: 'dispatch', id: 't1', redispatchMs: 10_000 });
    run(s, 120, { k: 'claim', id: 't1', dispatch: 1, worker: 'w1', node: 'n1' });
    run(s, 130, { k: 'stepDone', id: 't1', attempt: 1, name: 'a', result: 1 });
    run(s, 131, { k: 'stepStart', id: 't1', attempt: 1, name: 'b' });
    const c2 = run(s, 200, { k: 'claim', id: 't1', dispatch: 1, worker: 'w2', node: 'n2' });
    expect(c2.ok).toBe(true);
    const t = s.tasks.get('t1')!;
    expect(t.steps.map((x) => [x.name, x.status])).toEqual([['a', 'succeeded']]);
    expect(t.attempts.map((a) => a.worker)).toEqual(['w1', 'w2']);
    expect(t.attempts[0]!.error?.message).toMatch(/w1.*lost the task/);
    const old = run(s, 210, { k: 'stepDone', id: 't1', attempt: 1, name: 'b', result: 'late' });
    expect(old.ok === false && old.refusal).toBe('fenced');
    // A step committed twice keeps its first result.
    run(s, 220, { k: 'stepDone', id: 't1', attempt: 2, name: 'a', result: 99 });
    expect(t.steps.find((x) => x.name === 'a')!.result).toBe(1);
  });

  it('a claim of a replaced dispatch is stale; an expired lease re-dispatches and ends the attempt', () => {
    const s = submitted(3, 1000);
    run(s, 110, { k: 'dispatch', id: 't1', redispatchMs: 10_000 });
    run(s, 120, { k: 'claim', id: 't1', dispatch: 1, worker: 'w1', node: 'n1' });
    expect(run(s, 500, { k: 'dispatch', id: 't1', redispatchMs: 10_000 }).ok).toBe(false);
    expect(dispatchDue(s, 1119, 10_000, 10)).toEqual([]);
    expect(dispatchDue(s, 1120, 10_000, 10)).toEqual(['t1']);
    const d2 = run(s, 1200, { k: 'dispatch', id: 't1', redispatchMs: 10_000 });
    expect(d2.ok && d2.dispatch).toBe(2);
    expect(s.tasks.get('t1')!.attempts[0]!.error?.message).toMatch(/lease expired/);
    const stale = run(s, 1210, { k: 'claim', id: 't1', dispatch: 1, worker: 'w1', node: 'n1' });
    expect(stale.ok === false && stale.refusal).toBe('stale');
    expect(run(s, 1220, { k: 'claim', id: 't1', dispatch: 2, worker: 'w2', node: 'n2' }).ok).toBe(true);
  });

  it('fails after max attempts keeping every attempt\'s error', () => {
    const s = submitted(2);
    run(s, 110, { k: 'dispatch', id: 't1', redispatchMs: 10_000 });
    run(s, 120, { k: 'claim', id: 't1', dispatch: 1, worker: 'w1', node: 'n1' });
    run(s, 130, { k: 'fail', id: 't1', attempt: 1, message: 'boom 1' });
    expect(s.tasks.get('t1')!.status).toBe('queued');
    run(s, 140, { k: 'claim', id: 't1', dispatch: 1, worker: 'w1', node: 'n1' });
    run(s, 150, { k: 'fail', id: 't1', attempt: 2, message: 'boom 2', details: { code: 7 } });
    const t = s.tasks.get('t1')!;
    expect(t.status).toBe('failed');
    expect(t.attempts.map((a) => a.error?.message)).toEqual(['boom 1', 'boom 2']);
    expect(t.error?.message).toMatch(/all 2 attempts failed; the last: boom 2/);
    expect(run(s, 160, { k: 'claim', id: 't1', dispatch: 1, worker: 'w3', node: 'n1' }).ok).toBe(false);
  });

  it('cancel ends a running task and refuses its owner\'s later reports', () => {
    const s = submitted();
    run(s, 110, { k: 'dispatch', id: 't1', redispatchMs: 10_000 });
    run(s, 120, { k: 'claim', id: 't1', dispatch: 1, worker: 'w1', node: 'n1' });
    expect(run(s, 130, { k: 'cancel', id: 't1', user: 'guest' }).ok).toBe(true);
    const hb = run(s, 140, { k: 'heartbeat', id: 't1', attempt: 1 });
    expect(hb.ok === false && hb.refusal).toBe('cancelled');
    expect(run(s, 150, { k: 'cancel', id: 't1', user: 'guest' }).ok).toBe(false);
  });

  it('prunes only finished tasks whose retention ran out, by the entry\'s time', () => {
    const s = createTaskState();
    const sub = (id: string, at: number) => run(s, at, { k: 'submit', id, type: 'x', vhost: '/', input: null, user: '', maxAttempts: 1, retentionMs: 1000, leaseMs: 1000 });
    sub('done', 0);
    sub('queued', 0);
    sub('running', 0);
    for (const id of ['done', 'running']) {
      run(s, 1, { k: 'dispatch', id, redispatchMs: 10_000 });
      run(s, 2, { k: 'claim', id, dispatch: 1, worker: 'w', node: 'n' });
    }
    run(s, 10, { k: 'complete', id: 'done', attempt: 1, result: null });
    expect(run(s, 1009, { k: 'prune' })).toMatchObject({ ok: true, pruned: 0 });
    // The clock never goes back: an entry stamped earlier counts as the latest time seen.
    expect(run(s, 5, { k: 'prune' })).toMatchObject({ ok: true, pruned: 0 });
    expect(run(s, 1010, { k: 'prune' })).toMatchObject({ ok: true, pruned: 1 });
    expect([...s.tasks.keys()].sort()).toEqual(['queued', 'running']);
    expect(run(s, 99_999, { k: 'prune' })).toMatchObject({ ok: true, pruned: 0 });
  });
});

describe('task input schema', () => {
  const schema = {
    type: 'object', required: ['repo', 'count'], additionalProperties: false,
    properties: { repo: { type: 'string', minLength: 1 }, count: { type: 'integer', minimum: 1 }, tags: { type: 'array', items: { type: 'string' } } },
  };
  it('names every failing field', () => {
    expect(checkSchema(schema)).toEqual([]);
    expect(validate(schema, { repo: 'a', count: 2, tags: ['x'] })).toEqual([]);
    expect(validate(schema, { repo: '', count: 1.5, tags: [1], extra: true })).toEqual([
      { path: 'input.repo', message: 'must have at least 1 characters' },
      { path: 'input.count', message: 'must be integer (got number)' },
      { path: 'input.tags[0]', message: 'must be string (got number)' },
      { path: 'input.extra', message: 'is not allowed' },
    ]);
    expect(validate(schema, {})).toEqual([{ path: 'input.repo', message: 'is required' }, { path: 'input.count', message: 'is required' }]);
  });
  it('refuses schemas with keywords it does not check', () => {
    expect(checkSchema({ type: 'object', oneOf: [] })).toEqual([{ path: 'schema.oneOf', message: "keyword 'oneOf' is not supported" }]);
  });
});

describe('task state machine under random interleavings (simulation)', () => {
  // Workers, lease expiries, redeliveries, cancels and prunes in a seeded random order: whatever
  // happens, a committed step's result never changes, only the current attempt's reports count,
  // attempts stay within max, a finished task never changes again, and pruning takes only
  // finished tasks whose retention ran out.
  it('keeps its invariants on 300 seeds', () => {
    for (let seed = 1; seed <= 300; seed++) simulate(seed);
  });
});

function simulate(seed: number): void {
  let x = seed;
  const rand = (n: number): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  const s = createTaskState();
  const maxAttempts = 1 + rand(4);
  const retentionMs = 500 + rand(2000);
  run(s, 0, { k: 'submit', id: 't', type: 'x', vhost: '/', input: null, user: '', maxAttempts, retentionMs, leaseMs: 300 });
  const steps = ['a', 'b', 'c'];
  // What each simulated worker believes: the dispatch it holds and its attempt.
  const workers = [0, 1, 2].map(() => ({ dispatch: 0, attempt: 0, next: 0 }));
  const committed = new Map<string, unknown>();
  let finishedSnapshot: string | null = null;
  let now = 0;
  for (let i = 0; i < 120; i++) {
    now += rand(120);
    const t = s.tasks.get('t');
    if (t === undefined) {
      expect(finishedSnapshot, `seed ${seed}: pruned before it finished`).not.toBeNull();
      break;
    }
    if (finishedSnapshot !== null) expect(JSON.stringify(t), `seed ${seed}: a finished task changed`).toBe(finishedSnapshot);
    const w = workers[rand(workers.length)]!;
    const r = rand(10);
    const before = JSON.stringify(t);
    if (r === 0) run(s, now, { k: 'dispatch', id: 't', redispatchMs: 1000 });
    else if (r === 1) {
      // This worker gets the current dispatch's message (a delivery or a redelivery).
      const c = run(s, now, { k: 'claim', id: 't', dispatch: t.dispatch, worker: 'w', node: 'n' });
      if (c.ok) Object.assign(w, { dispatch: t.dispatch, attempt: t.attempts.length, next: 0 });
    } else if (r === 2) run(s, now, { k: 'claim', id: 't', dispatch: Math.max(0, t.dispatch - 1), worker: 'w', node: 'n' });
    else if (r <= 6 && w.attempt > 0) {
      const name = steps[w.next % steps.length]!;
      const result = `${name}@${w.attempt}:${i}`;
      const current = t.status === 'running' && w.attempt === t.attempts.length;
      const d = run(s, now, { k: 'stepDone', id: 't', attempt: w.attempt, name, result });
      expect(d.ok, `seed ${seed}: a report of attempt ${w.attempt} (current: ${current})`).toBe(current);
      if (!d.ok) expect(JSON.stringify(s.tasks.get('t')), `seed ${seed}: a refused report changed the task`).toBe(before);
      if (d.ok && !committed.has(name)) committed.set(name, result);
      w.next++;
    } else if (r === 7 && w.attempt > 0) run(s, now, { k: rand(2) === 0 ? 'complete' : 'fail', id: 't', attempt: w.attempt, result: 1, message: 'boom' } as never);
    else if (r === 8 && rand(8) === 0) run(s, now, { k: 'cancel', id: 't', user: 'u' });
    else run(s, now, { k: 'prune' });
    const after = s.tasks.get('t');
    if (after === undefined) {
      expect(t.finishedAt, `seed ${seed}: pruned an unfinished task`).not.toBeNull();
      expect(now - t.finishedAt!).toBeGreaterThanOrEqual(retentionMs);
      break;
    }
    for (const st of after.steps) if (st.status === 'succeeded') expect(st.result, `seed ${seed}: step ${st.name} result changed`).toBe(committed.get(st.name));
    expect(after.attempts.length, `seed ${seed}`).toBeLessThanOrEqual(maxAttempts);
    if (['succeeded', 'failed', 'cancelled'].includes(after.status) && finishedSnapshot === null) finishedSnapshot = JSON.stringify(after);
  }
}
