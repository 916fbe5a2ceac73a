// Determinism and snapshots: the same command log applied to fresh states gives identical
// effects and state, and a state restored from a snapshot carries on exactly like the original.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { apply, createQueueState, liveRanges, restore, snapshot, type Effect, type QueueConfig, type QueueState } from '../../src/queue/index.js';
import { configArb, scriptArb } from './gen.js';
import { QueueModel } from './model.js';
import { Harness } from './harness.js';

type Log = QueueModel['h']['log'];

function replay(config: QueueConfig, log: Log, state: QueueState = createQueueState(config, 1_000)): { state: QueueState; effects: Effect[][] } {
  const effects = log.map((e) => apply(state, e.command, { index: e.index, timeMs: e.timeMs }));
  return { state, effects };
}

describe('determinism', () => {
  it('replaying the same log on two fresh states gives identical effects and state', () => {
    fc.assert(
      fc.property(configArb, scriptArb, (config, script) => {
        const model = new QueueModel(config);
        for (const op of script) model.step(op);
        const a = replay(config, model.h.log);
        const b = replay(config, model.h.log);
        expect(a.effects).toEqual(b.effects);
        expect(snapshot(a.state)).toEqual(snapshot(b.state));
        expect(snapshot(a.state)).toEqual(snapshot(model.h.state));
      }),
      { numRuns: 150, seed: 99 },
    );
  });

  it('a state restored from a JSON snapshot mid-log continues with the same effects', () => {
    fc.assert(
      fc.property(configArb, scriptArb, fc.nat(), (config, script, cut) => {
        const model = new QueueModel(config);
        for (const op of script) model.step(op);
        const log = model.h.log;
        const at = cut % (log.length + 1);
        const original = replay(config, log.slice(0, at));
        const restored = restore(JSON.parse(JSON.stringify(snapshot(original.state))));
        const rest = log.slice(at);
        const x = replay(config, rest, original.state);
        const y = replay(config, rest, restored);
        expect(y.effects).toEqual(x.effects);
        expect(snapshot(y.state)).toEqual(snapshot(x.state));
      }),
      { numRuns: 150, seed: 7 },
    );
  });
});

describe('live messages', () => {
  it('reports live ids as ranges, so acked prefixes and holes can be compacted', () => {
    const h = new Harness();
    const ids = [1, 2, 3, 4, 5].map(() => h.publish());
    h.consume('c', { prefetch: 2 });
    h.run({ type: 'settle', channel: 'c', msgIds: [ids[0]!] });
    // ids[1] and ids[2] are unacked now, ids[3], ids[4] ready; the register command's index is no message
    expect(liveRanges(h.state)).toEqual([[ids[1], ids[4]]]);
    h.run({ type: 'settle', channel: 'c', msgIds: [ids[2]!] });
    expect(liveRanges(h.state)).toEqual([[ids[1], ids[1]], [ids[3], ids[4]]]);
  });
});
