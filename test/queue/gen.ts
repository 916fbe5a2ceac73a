// Random queue configurations and operation scripts for the property tests. Operations pick
// their targets (consumers, held messages) when they run, so every script is valid.
import fc from 'fast-check';
import { defaultQueueConfig, type QueueConfig } from '../../src/queue/index.js';

export type Op =
  | { t: 'enqueue'; priority: number; ttlMs: number | null }
  | { t: 'register'; ch: number; prefetch: number; priority: number; noAck: boolean; granted: boolean }
  | { t: 'cancel'; pick: number }
  | { t: 'credit'; pick: number; n: number }
  | { t: 'settle' | 'return' | 'discard'; ch: number; picks: number[]; bogus: boolean }
  | { t: 'down'; scope: 'channel' | 'connection'; ch: number }
  | { t: 'purge' }
  | { t: 'get'; ch: number; noAck: boolean }
  | { t: 'tick'; advanceMs: number };

export const channels = ['ch0', 'ch1', 'ch2', 'ch3'];
/** ch0 and ch1 share a connection, so a connection down takes two channels. */
export const connectionOf = (ch: number): string => (ch < 2 ? 'conn-a' : `conn-${ch}`);

const ch = fc.integer({ min: 0, max: channels.length - 1 });

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('enqueue' as const), priority: fc.integer({ min: 0, max: 5 }), ttlMs: fc.option(fc.integer({ min: 0, max: 400 }), { freq: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('register' as const), ch, prefetch: fc.integer({ min: 0, max: 3 }), priority: fc.integer({ min: 0, max: 2 }), noAck: fc.constant(false), granted: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('register' as const), ch, prefetch: fc.constant(0), priority: fc.constant(0), noAck: fc.constant(true), granted: fc.constant(false) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cancel' as const), pick: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('credit' as const), pick: fc.nat(20), n: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constantFrom('settle' as const, 'return' as const, 'discard' as const), ch, picks: fc.array(fc.nat(10), { maxLength: 3 }), bogus: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('down' as const), scope: fc.constantFrom('channel' as const, 'connection' as const), ch }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('purge' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('get' as const), ch, noAck: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('tick' as const), advanceMs: fc.integer({ min: 0, max: 300 }) }) },
);

export const configArb: fc.Arbitrary<QueueConfig> = fc.record({
  maxPriority: fc.constantFrom(0, 3),
  singleActiveConsumer: fc.boolean(),
  deliveryLimit: fc.option(fc.integer({ min: 0, max: 3 })),
  messageTtlMs: fc.option(fc.integer({ min: 50, max: 600 }), { freq: 2 }),
  maxLength: fc.option(fc.integer({ min: 0, max: 6 }), { freq: 2 }),
  overflow: fc.constantFrom('drop-head' as const, 'reject-publish' as const, 'reject-publish-dlx' as const),
  deadLetter: fc.boolean(),
  consumerTimeoutMs: fc.option(fc.integer({ min: 100, max: 800 }), { freq: 2 }),
}).map((c) => ({ ...defaultQueueConfig, ...c }));

export const scriptArb = fc.array(opArb, { minLength: 10, maxLength: 100 });
