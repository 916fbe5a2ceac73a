// Commands made JSON-safe for the metadata log behave exactly like the originals: same results
// (including reply texts with type names) and the same state, for arguments of every form.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyMetadata, serializableCommand, snapshotMetadata, type MetadataCommand,
} from '../../src/model/index.js';
import { conn1, freshState } from './helpers.js';

const valueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -10, max: 70000 }), fc.bigInt({ min: -5n, max: 2n ** 40n }), fc.constantFrom('all', 'any', 'drop-head', 'x', ''),
  fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)), fc.boolean(), fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.record({ tag: fc.constantFrom('I', 'l', 'b', 'd', 'S', 'x'), value: fc.integer({ min: -3, max: 300 }) }),
  fc.array(fc.integer(), { maxLength: 2 }),
);
const argKeys = ['x-message-ttl', 'x-expires', 'x-max-priority', 'x-overflow', 'x-dead-letter-exchange',
  'x-dead-letter-routing-key', 'x-match', 'alternate-exchange', 'k', 'x-queue-type'];
const tableArb = fc.dictionary(fc.constantFrom(...argKeys), valueArb, { maxKeys: 3 });

const commandArb: fc.Arbitrary<MetadataCommand> = fc.oneof(
  fc.record({
    kind: fc.constant('declareQueue' as const), vhost: fc.constant('/'), name: fc.constantFrom('q1', 'q2'),
    passive: fc.constant(false), durable: fc.boolean(), exclusive: fc.constant(false), autoDelete: fc.constant(false),
    arguments: tableArb, connection: fc.constant(conn1),
  }),
  fc.record({
    kind: fc.constant('declareExchange' as const), vhost: fc.constant('/'), name: fc.constantFrom('x1', 'x2'),
    type: fc.constantFrom('direct', 'headers'), passive: fc.constant(false), durable: fc.constant(false),
    autoDelete: fc.constant(false), internal: fc.constant(false), arguments: tableArb,
  }),
  fc.record({
    kind: fc.constantFrom('bindQueue' as const, 'unbindQueue' as const), vhost: fc.constant('/'),
    queue: fc.constantFrom('q1', 'q2'), exchange: fc.constantFrom('x1', 'x2', 'amq.headers'),
    routingKey: fc.constant('k'), arguments: tableArb, connection: fc.constant(conn1),
  }),
);

describe('serializable commands', () => {
  it('give the same results and state as the originals after a JSON round trip', () => {
    fc.assert(fc.property(fc.array(commandArb, { maxLength: 25 }), (commands) => {
      const direct = freshState();
      const logged = freshState();
      for (const c of commands) {
        const wire = JSON.parse(JSON.stringify(serializableCommand(c))) as MetadataCommand;
        expect(applyMetadata(logged, wire)).toEqual(applyMetadata(direct, c));
      }
      expect(snapshotMetadata(logged)).toEqual(snapshotMetadata(direct));
    }), { numRuns: 300 });
  });
});
