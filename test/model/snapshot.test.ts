// Snapshot/restore: the whole state survives a JSON round trip, routes the same, and keeps
// working (indexes rebuilt: unbinding and deleting after restore behave as before).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyMetadata, restoreMetadata, route, snapshotMetadata, type MetadataState,
} from '../../src/model/index.js';
import {
  bindExchange, bindQueue, declareExchange, declareQueue, deleteQueue, expectOk, freshState,
  unbindQueue,
} from './helpers.js';

function richState(): MetadataState {
  const s = freshState();
  expectOk(applyMetadata(s, { kind: 'addVhost', name: 'dev' }));
  expectOk(applyMetadata(s, { kind: 'addUser', name: 'bob', passwordHash: 'salted', tags: ['x'] }));
  expectOk(applyMetadata(s, { kind: 'setPermissions', user: 'bob', vhost: 'dev', configure: '.*', write: '^w', read: '' }));
  expectOk(applyMetadata(s, { kind: 'setPolicy', vhost: '/', name: 'ttl', pattern: '^t', applyTo: 'all', priority: 2,
    definition: { 'message-ttl': 100n } }));
  expectOk(declareExchange(s, 'topic', 'topic', { durable: true, arguments: { 'alternate-exchange': 'ae' } }));
  expectOk(declareExchange(s, 'ae', 'fanout', { autoDelete: true }));
  expectOk(declareExchange(s, 'hx', 'headers'));
  expectOk(declareQueue(s, 'tq', { durable: true, arguments: { 'x-max-length': 5n, 'x-dead-letter-exchange': Buffer.from('d') } }));
  expectOk(declareQueue(s, 'lost'));
  expectOk(declareQueue(s, 'hq', { exclusive: true }));
  expectOk(bindQueue(s, 'tq', 'topic', 'a.*.#'));
  expectOk(bindQueue(s, 'lost', 'ae'));
  expectOk(bindQueue(s, 'hq', 'hx', '', { 'x-match': 'any', k: 1n, v: null }));
  expectOk(bindExchange(s, 'amq.topic', 'topic', '#'));
  return s;
}

const probes: Array<[string, string, Record<string, unknown> | null]> = [
  ['topic', 'a.b.c', null], ['topic', 'zzz', null], ['amq.topic', 'a.x', null],
  ['hx', '', { k: 1 }], ['hx', '', { v: 'present' }], ['hx', '', { k: 2 }], ['', 'tq', null],
];

describe('snapshot and restore', () => {
  it('round-trips through JSON to an identical snapshot that routes the same', () => {
    const s = richState();
    const snap = snapshotMetadata(s);
    const restored = restoreMetadata(JSON.parse(JSON.stringify(snap)));
    expect(snapshotMetadata(restored)).toEqual(snap);
    for (const [x, key, headers] of probes) {
      expect(route(restored, '/', x, key, headers).sort()).toEqual(route(s, '/', x, key, headers).sort());
    }
    expect(route(restored, '/', 'topic', 'zzz')).toEqual(['lost']);
  });

  it('keeps working after restore: unbind, auto-delete and queue delete', () => {
    const restored = restoreMetadata(JSON.parse(JSON.stringify(snapshotMetadata(richState()))));
    expectOk(unbindQueue(restored, 'tq', 'topic', 'a.*.#'));
    expect(route(restored, '/', 'topic', 'a.b.c')).toEqual(['lost']);
    expect(expectOk(deleteQueue(restored, 'lost')).deletedExchanges.map((x) => x.name)).toEqual(['ae']);
    expect(route(restored, '/', 'topic', 'a.b.c')).toEqual([]);
  });

  it('any sequence of bind/unbind commands gives the same routing after a round trip', () => {
    const keys = ['a', 'a.b', 'b.#', '*', '#', ''];
    const step = fc.record({ bind: fc.boolean(), q: fc.integer({ min: 0, max: 3 }), k: fc.constantFrom(...keys) });
    fc.assert(fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
      const s = freshState();
      for (let i = 0; i < 4; i++) expectOk(declareQueue(s, `q${i}`));
      for (const { bind, q, k } of steps) {
        expectOk(bind ? bindQueue(s, `q${q}`, 'amq.topic', k) : unbindQueue(s, `q${q}`, 'amq.topic', k));
      }
      const restored = restoreMetadata(JSON.parse(JSON.stringify(snapshotMetadata(s))));
      for (const rk of ['', 'a', 'a.b', 'b', 'b.c.d', 'x']) {
        expect(route(restored, '/', 'amq.topic', rk).sort()).toEqual(route(s, '/', 'amq.topic', rk).sort());
      }
    }), { numRuns: 100 });
  });
});
