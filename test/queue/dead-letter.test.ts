// x-death headers and dead-letter routing as RabbitMQ writes them (SURFACE.md section 8).
import { describe, expect, it } from 'vitest';
import { deadLetter, isDeadLetterCycle, plainFieldValues as fv, type Death } from '../../src/queue/dead-letter.js';

const death = (over: Partial<Death> = {}): Death => ({
  queue: 'work', reason: 'rejected', exchange: 'orders', routingKey: 'new', expiration: undefined, timeMs: 1_700_000_000_500, ...over,
});

describe('x-death', () => {
  it('first death: one entry with count, reason, queue, time in seconds, exchange and keys incl. CC', () => {
    const out = deadLetter({ CC: ['audit'], BCC: ['secret'], app: 'x' }, death({ expiration: '5000' }), { routingKey: null }, fv);
    expect(out.headers['x-death']).toEqual([
      { count: 1, reason: 'rejected', queue: 'work', time: 1_700_000_000, exchange: 'orders', 'routing-keys': ['new', 'audit'], 'original-expiration': '5000' },
    ]);
    expect(out.headers).toMatchObject({ 'x-first-death-queue': 'work', 'x-first-death-reason': 'rejected', 'x-first-death-exchange': 'orders', 'x-last-death-reason': 'rejected', app: 'x', CC: ['audit'] });
    expect(out.headers['BCC']).toBeUndefined();
    expect(out.routingKeys).toEqual(['new', 'audit']);
  });

  it('a dead-letter routing key replaces the original keys and removes CC', () => {
    const out = deadLetter({ CC: ['audit'] }, death(), { routingKey: 'dead' }, fv);
    expect(out.routingKeys).toEqual(['dead']);
    expect(out.headers['CC']).toBeUndefined();
  });

  it('dying again in the same queue for the same reason increments the count and moves it first', () => {
    const once = deadLetter(undefined, death(), { routingKey: null }, fv);
    const elsewhere = deadLetter(once.headers, death({ queue: 'retry', reason: 'expired', timeMs: 1_700_000_100_000 }), { routingKey: null }, fv);
    const again = deadLetter(elsewhere.headers, death({ timeMs: 1_700_000_200_000 }), { routingKey: null }, fv);
    const entries = again.headers['x-death'] as Array<Record<string, unknown>>;
    expect(entries.map((e) => [e['queue'], e['reason'], e['count'], e['time']])).toEqual([
      ['work', 'rejected', 2, 1_700_000_000],
      ['retry', 'expired', 1, 1_700_000_100],
    ]);
    expect(again.headers['x-first-death-queue']).toBe('work');
    expect(elsewhere.headers['x-last-death-queue']).toBe('retry');
    expect(again.headers['x-last-death-queue']).toBe('work');
  });
});

describe('cycles', () => {
  it('routing an expired message back to a queue it died in is a cycle, unless a rejection came between', () => {
    const first = deadLetter(undefined, death({ queue: 'a', reason: 'expired' }), { routingKey: null }, fv);
    expect(isDeadLetterCycle(first.headers, 'a', fv)).toBe(true);
    expect(isDeadLetterCycle(first.headers, 'b', fv)).toBe(false);
    const rejected = deadLetter(first.headers, death({ queue: 'b', reason: 'rejected' }), { routingKey: null }, fv);
    expect(isDeadLetterCycle(rejected.headers, 'a', fv)).toBe(false);
  });
});
