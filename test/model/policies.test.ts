// Policies and effective queue settings: which policy applies, how it combines with x-args
// (numeric limits: the smaller wins; other keys: the x-arg wins), and validation.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyMetadata, modelLimits, queueSettings, type FieldTable, type MetadataState, type PolicyApplyTo,
} from '../../src/model/index.js';
import { declareQueue, expectError, expectOk, freshState } from './helpers.js';

function setPolicy(s: MetadataState, name: string, pattern: string, definition: FieldTable,
  priority = 0, applyTo: PolicyApplyTo = 'queues') {
  return applyMetadata(s, { kind: 'setPolicy', vhost: '/', name, pattern, applyTo, priority, definition });
}

describe('queue settings', () => {
  it('come from x-args with RabbitMQ defaults', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'plain'));
    expect(queueSettings(s, '/', 'plain')).toEqual({
      messageTtlMs: null, expiresMs: null, maxLength: null, maxLengthBytes: null,
      overflow: 'drop-head', deadLetter: false, deadLetterExchange: null, deadLetterRoutingKey: null,
      maxPriority: 0, singleActiveConsumer: false, deliveryLimit: null, consumerTimeoutMs: null,
      policy: null,
    });
    expectOk(declareQueue(s, 'rich', { arguments: {
      'x-message-ttl': 1000, 'x-max-length': 10n, 'x-overflow': 'reject-publish',
      'x-dead-letter-exchange': 'dlx', 'x-dead-letter-routing-key': 'dead', 'x-max-priority': 9,
      'x-single-active-consumer': true, 'x-delivery-limit': 3,
    } }));
    expect(queueSettings(s, '/', 'rich')).toMatchObject({
      messageTtlMs: 1000, maxLength: 10, overflow: 'reject-publish', deadLetter: true,
      deadLetterExchange: 'dlx', deadLetterRoutingKey: 'dead', maxPriority: 9,
      singleActiveConsumer: true, deliveryLimit: 3,
    });
  });

  it('quorum queues default to a delivery limit of 20; -1 means none', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'qq', { durable: true, arguments: { 'x-queue-type': 'quorum' } }));
    expectOk(declareQueue(s, 'qq-unlimited', { durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': -1 } }));
    expect(queueSettings(s, '/', 'qq')?.deliveryLimit).toBe(20);
    expect(queueSettings(s, '/', 'qq-unlimited')?.deliveryLimit).toBeNull();
  });

  it('take the smaller numeric limit of policy and x-arg, and the x-arg for other keys', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'orders', { arguments: {
      'x-message-ttl': 5000, 'x-max-length': 100, 'x-overflow': 'reject-publish',
      'x-dead-letter-exchange': 'own-dlx',
    } }));
    expectOk(declareQueue(s, 'orders-bare'));
    expectOk(setPolicy(s, 'limits', '^orders', {
      'message-ttl': 1000, 'max-length': 500, 'overflow': 'drop-head', 'dead-letter-exchange': 'pol-dlx',
      'dead-letter-routing-key': 'pol-key', 'expires': 60000,
    }));
    expect(queueSettings(s, '/', 'orders')).toMatchObject({
      messageTtlMs: 1000, maxLength: 100, overflow: 'reject-publish', deadLetterExchange: 'own-dlx',
      deadLetterRoutingKey: 'pol-key', expiresMs: 60000, policy: 'limits',
    });
    expect(queueSettings(s, '/', 'orders-bare')).toMatchObject({
      messageTtlMs: 1000, maxLength: 500, overflow: 'drop-head', deadLetterExchange: 'pol-dlx',
      deadLetter: true,
    });
  });

  it('use only the highest-priority matching policy that applies to queues', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q'));
    expectOk(setPolicy(s, 'low', '.*', { 'max-length': 1 }, 1));
    expectOk(setPolicy(s, 'high', '^q$', { 'message-ttl': 7 }, 5));
    expectOk(setPolicy(s, 'exchanges-only', '.*', { 'alternate-exchange': 'ae' }, 9, 'exchanges'));
    expect(queueSettings(s, '/', 'q')).toMatchObject({ policy: 'high', messageTtlMs: 7, maxLength: null });
    expectOk(applyMetadata(s, { kind: 'clearPolicy', vhost: '/', name: 'high' }));
    expect(queueSettings(s, '/', 'q')).toMatchObject({ policy: 'low', messageTtlMs: null, maxLength: 1 });
  });
});

describe('policy commands', () => {
  it('report the queues whose settings the change touches', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'a1'));
    expectOk(declareQueue(s, 'a2'));
    expectOk(declareQueue(s, 'b1'));
    const set = expectOk(setPolicy(s, 'p', '^a', { 'max-length': 5 }));
    expect(set.created).toBe(true);
    expect(set.changedQueues.map((q) => q.name)).toEqual(['a1', 'a2']);
    const moved = expectOk(setPolicy(s, 'p', '^(a2|b1)$', { 'max-length': 5 }));
    expect(moved.changedQueues.map((q) => q.name)).toEqual(['a1', 'a2', 'b1']);
    expect(expectOk(applyMetadata(s, { kind: 'clearPolicy', vhost: '/', name: 'p' })).changedQueues
      .map((q) => q.name)).toEqual(['a2', 'b1']);
  });

  it('report exactly the queues that follow the edited policy before or after (random edits)', () => {
    const names = ['a', 'ab', 'b', 'ba', 'c'];
    const edit = fc.record({ clear: fc.boolean(), name: fc.constantFrom('p1', 'p2', 'p3'),
      pattern: fc.constantFrom('^a', 'b', '.*', '^c$'), priority: fc.integer({ min: 0, max: 3 }),
      applyTo: fc.constantFrom<PolicyApplyTo>('queues', 'exchanges', 'all') });
    fc.assert(fc.property(fc.array(edit, { maxLength: 12 }), (edits) => {
      const s = freshState();
      for (const n of names) expectOk(declareQueue(s, n));
      for (const e of edits) {
        const before = names.map((n) => queueSettings(s, '/', n)?.policy);
        const r = e.clear ? applyMetadata(s, { kind: 'clearPolicy', vhost: '/', name: e.name })
          : setPolicy(s, e.name, e.pattern, { 'max-length': 1 }, e.priority, e.applyTo);
        if (!r.ok) continue;
        const after = names.map((n) => queueSettings(s, '/', n)?.policy);
        const expected = names.filter((_, i) => before[i] === e.name || after[i] === e.name);
        expect(r.changedQueues.map((q) => q.name)).toEqual(expected);
      }
    }), { numRuns: 200 });
  });

  it('stop at the per-vhost bound with 406, still replacing existing ones', () => {
    const s = freshState();
    for (let i = 0; i < modelLimits.policiesPerVhostMax; i++) expectOk(setPolicy(s, `p${i}`, `^x${i}$`, { 'max-length': 1 }));
    expectError(setPolicy(s, 'extra', '.*', { 'max-length': 1 }), 406,
      `PRECONDITION_FAILED - policy count in vhost '/' limit (${modelLimits.policiesPerVhostMax}) is reached`);
    expectOk(setPolicy(s, 'p0', '.*', { 'max-length': 2 }));
  });

  it('refuse bad patterns, unknown keys, bad values, and clearing a missing policy', () => {
    const s = freshState();
    expectError(setPolicy(s, 'p', '(', { 'max-length': 1 }), 406);
    expectError(setPolicy(s, 'p', '.*', { 'max-lenght': 1 }), 406);
    expectError(setPolicy(s, 'p', '.*', { 'max-length': -1 }), 406);
    expectError(setPolicy(s, 'p', '.*', { 'expires': 0 }), 406);
    expectError(setPolicy(s, 'p', '.*', { 'overflow': 'sideways' }), 406);
    expectError(setPolicy(s, 'p', '.*', {}), 406);
    expectError(applyMetadata(s, { kind: 'clearPolicy', vhost: '/', name: 'p' }), 404,
      "NOT_FOUND - no policy 'p' in vhost '/'");
  });
});
