// Property tests: random interleavings of every command, checked against a FIFO queue model
// with at-least-once delivery (test/queue/model.ts says what is checked).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultQueueConfig, liveMsgIds } from '../../src/queue/index.js';
import { configArb, scriptArb } from './gen.js';
import { QueueModel } from './model.js';

describe('queue state machine against a FIFO at-least-once model', () => {
  it('never loses, duplicates or resurrects a message, and keeps priority and FIFO order', () => {
    let delivered = 0;
    fc.assert(
      fc.property(configArb, scriptArb, (config, script) => {
        const model = new QueueModel(config);
        for (const op of script) model.step(op);
        delivered += model.deliveredCount;
      }),
      { numRuns: 300, seed: 4242 },
    );
    // the scripts really exercise delivery, not only enqueues
    expect(delivered).toBeGreaterThan(500);
  });

  it('without limits or TTL, a fresh consumer gets every message left and its acks empty the queue', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.constantFrom(0, 3), scriptArb, (sac, maxPriority, script) => {
        const model = new QueueModel({ ...defaultQueueConfig, singleActiveConsumer: sac, maxPriority });
        for (const op of script) model.step(op.t === 'enqueue' ? { ...op, ttlMs: null } : op);
        model.drain();
        expect(model.ready.size + model.held.size).toBe(0);
        expect(liveMsgIds(model.h.state)).toEqual([]);
      }),
      { numRuns: 150, seed: 777 },
    );
  });
});
