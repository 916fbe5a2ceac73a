// Random command sequences against the state machine: a failed command changes nothing, every
// index stays in step with the bindings (routers, incoming/outgoing, exclusive owners), and no
// binding outlives either of its ends.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyMetadata, snapshotMetadata, type MetadataCommand, type MetadataState,
} from '../../src/model/index.js';
import { connectionKey } from '../../src/model/state.js';
import { conn1, conn2, freshState } from './helpers.js';

const xNames = ['x1', 'x2', 'x3', 'amq.topic', 'amq.fanout', ''];
const qNames = ['q1', 'q2', 'q3'];
const types = ['direct', 'fanout', 'topic', 'headers', 'bogus'];
const keys = ['', 'a', 'a.b', '#', '*.b', '#.#.#'];

const commandArb: fc.Arbitrary<MetadataCommand> = fc.oneof(
  fc.record({
    kind: fc.constant('declareExchange' as const), vhost: fc.constant('/'), name: fc.constantFrom(...xNames),
    type: fc.constantFrom(...types), passive: fc.boolean(), durable: fc.boolean(), autoDelete: fc.boolean(),
    internal: fc.constant(false), arguments: fc.constantFrom({}, { 'alternate-exchange': 'x2' }),
  }),
  fc.record({
    kind: fc.constant('deleteExchange' as const), vhost: fc.constant('/'), name: fc.constantFrom(...xNames),
    ifUnused: fc.boolean(),
  }),
  fc.record({
    kind: fc.constantFrom('bindExchange' as const, 'unbindExchange' as const), vhost: fc.constant('/'),
    source: fc.constantFrom(...xNames), destination: fc.constantFrom(...xNames),
    routingKey: fc.constantFrom(...keys), arguments: fc.constantFrom({}, { 'x-match': 'any', a: 1 }),
  }),
  fc.record({
    kind: fc.constant('declareQueue' as const), vhost: fc.constant('/'), name: fc.constantFrom(...qNames),
    passive: fc.boolean(), durable: fc.boolean(), exclusive: fc.boolean(), autoDelete: fc.boolean(),
    arguments: fc.constantFrom({}, { 'x-max-length': 5 }, { 'x-queue-type': 'quorum' }),
    connection: fc.constantFrom(conn1, conn2),
  }),
  fc.record({
    kind: fc.constant('deleteQueue' as const), vhost: fc.constant('/'), name: fc.constantFrom(...qNames),
    ifUnused: fc.boolean(), ifEmpty: fc.boolean(), consumerCount: fc.constantFrom(0, 1),
    messageCount: fc.constantFrom(0, 2), connection: fc.constantFrom(conn1, conn2, null),
  }),
  fc.record({
    kind: fc.constantFrom('bindQueue' as const, 'unbindQueue' as const), vhost: fc.constant('/'),
    queue: fc.constantFrom(...qNames), exchange: fc.constantFrom(...xNames),
    routingKey: fc.constantFrom(...keys), arguments: fc.constantFrom({}, { 'x-match': 'nope' }, { b: 2 }),
    connection: fc.constantFrom(conn1, conn2, null),
  }),
  fc.record({ kind: fc.constant('deleteExclusiveQueues' as const), connection: fc.constantFrom(conn1, conn2) }),
);

function checkIndexes(s: MetadataState): void {
  for (const v of s.vhosts.values()) {
    let outgoing = 0;
    let incoming = 0;
    for (const x of v.exchanges.values()) {
      expect(x.router.size).toBe(x.outgoing.size);
      outgoing += x.outgoing.size;
      incoming += x.incoming.size;
    }
    for (const q of v.queues.values()) incoming += q.incoming.size;
    expect(outgoing).toBe(v.bindings.size);
    expect(incoming).toBe(v.bindings.size);
    for (const b of v.bindings.values()) {
      const x = v.exchanges.get(b.source);
      expect(x?.outgoing.has(b)).toBe(true);
      const dest = b.destinationKind === 'queue' ? v.queues.get(b.destination) : v.exchanges.get(b.destination);
      expect(dest?.incoming.has(b)).toBe(true);
    }
    let exclusive = 0;
    for (const q of v.queues.values()) {
      if (q.record.exclusiveOwner === null) continue;
      exclusive++;
      expect(v.exclusiveQueues.get(connectionKey(q.record.exclusiveOwner))?.has(q.record.name)).toBe(true);
    }
    expect([...v.exclusiveQueues.values()].reduce((n, set) => n + set.size, 0)).toBe(exclusive);
  }
}

describe('metadata state machine invariants', () => {
  it('failed commands change nothing and indexes stay consistent', () => {
    fc.assert(fc.property(fc.array(commandArb, { maxLength: 60 }), (commands) => {
      const s = freshState();
      for (const c of commands) {
        const before = JSON.stringify(snapshotMetadata(s));
        const r = applyMetadata(s, c);
        if (!r.ok) {
          expect(JSON.stringify(snapshotMetadata(s))).toBe(before);
          expect(r.replyText.startsWith(['ACCESS_REFUSED', 'NOT_FOUND', 'RESOURCE_LOCKED',
            'PRECONDITION_FAILED'][[403, 404, 405, 406].indexOf(r.replyCode)] ?? '?')).toBe(true);
        }
        checkIndexes(s);
      }
    }), { numRuns: 300 });
  });

  it('the same commands give the same state (deterministic apply)', () => {
    fc.assert(fc.property(fc.array(commandArb, { maxLength: 40 }), (commands) => {
      const a = freshState();
      const b = freshState();
      const ra = commands.map((c) => applyMetadata(a, c));
      const rb = commands.map((c) => applyMetadata(b, c));
      expect(rb).toEqual(ra);
      expect(snapshotMetadata(b)).toEqual(snapshotMetadata(a));
    }), { numRuns: 100 });
  });
});
