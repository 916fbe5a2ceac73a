// Routing walks: exchange-to-exchange chains and cycles, each queue once, alternate exchanges,
// the default exchange, CC/BCC keys, publish checks; and the bind/unbind rules.

import { describe, expect, it } from 'vitest';
import {
  applyMetadata, checkPublish, extraRoutingKeys, listBindings, modelLimits, route,
} from '../../src/model/index.js';
import {
  bindExchange, bindQueue, declareExchange, declareQueue, expectError, expectOk, freshState,
  unbindQueue,
} from './helpers.js';

describe('routing through exchange-to-exchange bindings', () => {
  it('follows chains and delivers each queue once, even through cycles', () => {
    const s = freshState();
    for (const x of ['a', 'b', 'c']) expectOk(declareExchange(s, x, 'fanout'));
    for (const q of ['qa', 'qb', 'qc']) expectOk(declareQueue(s, q));
    expectOk(bindExchange(s, 'a', 'b'));
    expectOk(bindExchange(s, 'b', 'c'));
    expectOk(bindExchange(s, 'c', 'a'));
    expectOk(bindExchange(s, 'b', 'b'));
    expectOk(bindQueue(s, 'qa', 'a'));
    expectOk(bindQueue(s, 'qb', 'b'));
    expectOk(bindQueue(s, 'qc', 'c'));
    expectOk(bindQueue(s, 'qc', 'a'));
    expect(route(s, '/', 'a', 'k').sort()).toEqual(['qa', 'qb', 'qc']);
    expect(route(s, '/', 'c', 'k').sort()).toEqual(['qa', 'qb', 'qc']);
  });

  it('deduplicates wide fan-outs and long exchange rings, call after call', () => {
    const s = freshState();
    const ring = Array.from({ length: 30 }, (_, i) => `ring${i}`);
    for (const x of ring) expectOk(declareExchange(s, x, 'fanout'));
    ring.forEach((x, i) => expectOk(bindExchange(s, x, ring[(i + 1) % ring.length] as string)));
    const queues = Array.from({ length: 40 }, (_, i) => `wide${i}`);
    queues.forEach((q, i) => {
      expectOk(declareQueue(s, q));
      expectOk(bindQueue(s, q, ring[i % ring.length] as string));
      expectOk(bindQueue(s, q, ring[(i * 7) % ring.length] as string));
      if (i % 2 === 0) expectOk(bindQueue(s, q, 'amq.direct', 'even'));
    });
    for (let round = 0; round < 3; round++) {
      expect(route(s, '/', 'ring0', '').sort()).toEqual([...queues].sort());
      expect(route(s, '/', 'amq.direct', 'even').sort()).toEqual(queues.filter((_, i) => i % 2 === 0).sort());
      expect(route(s, '/', 'ring5', '', null, ['a', 'b'])).toHaveLength(40);
    }
  });

  it('applies each exchange type on the way (topic into direct)', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'events', 'topic'));
    expectOk(declareExchange(s, 'exact', 'direct'));
    expectOk(declareQueue(s, 'q'));
    expectOk(bindExchange(s, 'events', 'exact', 'orders.#'));
    expectOk(bindQueue(s, 'q', 'exact', 'orders.created'));
    expect(route(s, '/', 'events', 'orders.created')).toEqual(['q']);
    expect(route(s, '/', 'events', 'orders.deleted')).toEqual([]);
    expect(route(s, '/', 'events', 'users.created')).toEqual([]);
  });

  it('reaches internal exchanges as destinations while refusing to publish to them', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'hidden', 'fanout', { internal: true }));
    expectOk(declareQueue(s, 'q'));
    expectOk(bindQueue(s, 'q', 'hidden'));
    expectOk(bindExchange(s, 'amq.fanout', 'hidden'));
    expect(route(s, '/', 'amq.fanout', '')).toEqual(['q']);
    expectError(checkPublish(s, 'guest', '/', 'hidden'), 403,
      "ACCESS_REFUSED - cannot publish to internal exchange 'hidden' in vhost '/'");
  });
});

describe('alternate exchanges', () => {
  it('take messages the exchange routes nowhere, and only those', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'ae', 'fanout'));
    expectOk(declareExchange(s, 'main', 'direct', { arguments: { 'alternate-exchange': 'ae' } }));
    expectOk(declareQueue(s, 'unrouted'));
    expectOk(declareQueue(s, 'known'));
    expectOk(bindQueue(s, 'unrouted', 'ae'));
    expectOk(bindQueue(s, 'known', 'main', 'k'));
    expect(route(s, '/', 'main', 'k')).toEqual(['known']);
    expect(route(s, '/', 'main', 'other')).toEqual(['unrouted']);
  });

  it('is ignored when missing, and an AE cycle ends', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'x', 'direct', { arguments: { 'alternate-exchange': 'missing' } }));
    expect(route(s, '/', 'x', 'k')).toEqual([]);
    expectOk(declareExchange(s, 'p', 'direct', { arguments: { 'alternate-exchange': 'r' } }));
    expectOk(declareExchange(s, 'r', 'direct', { arguments: { 'alternate-exchange': 'p' } }));
    expect(route(s, '/', 'p', 'k')).toEqual([]);
  });

  it('can come from a policy, the exchange argument winning', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'ae1', 'fanout'));
    expectOk(declareExchange(s, 'ae2', 'fanout'));
    expectOk(declareQueue(s, 'q1'));
    expectOk(declareQueue(s, 'q2'));
    expectOk(bindQueue(s, 'q1', 'ae1'));
    expectOk(bindQueue(s, 'q2', 'ae2'));
    expectOk(declareExchange(s, 'plain', 'direct'));
    expectOk(declareExchange(s, 'own', 'direct', { arguments: { 'alternate-exchange': 'ae1' } }));
    expectOk(applyMetadata(s, { kind: 'setPolicy', vhost: '/', name: 'ae', pattern: '^(plain|own)$',
      applyTo: 'exchanges', priority: 0, definition: { 'alternate-exchange': 'ae2' } }));
    expect(route(s, '/', 'plain', 'k')).toEqual(['q2']);
    expect(route(s, '/', 'own', 'k')).toEqual(['q1']);
  });
});

describe('default exchange', () => {
  it('routes to the queue named by the routing key when it exists', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'tasks'));
    expect(route(s, '/', '', 'tasks')).toEqual(['tasks']);
    expect(route(s, '/', '', 'nobody')).toEqual([]);
  });

  it('cannot be bound to or from', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q'));
    const text = 'ACCESS_REFUSED - operation not permitted on the default exchange';
    expectError(bindQueue(s, 'q', '', 'q'), 403, text);
    expectError(bindExchange(s, '', 'amq.direct'), 403, text);
    expectError(bindExchange(s, 'amq.direct', ''), 403, text);
  });
});

describe('CC and BCC', () => {
  it('add routing keys, deduplicating queues', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'a'));
    expectOk(declareQueue(s, 'b'));
    expectOk(bindQueue(s, 'a', 'amq.direct', 'ka'));
    expectOk(bindQueue(s, 'b', 'amq.direct', 'kb'));
    const keys = extraRoutingKeys({ CC: ['kb', 'ka'], BCC: [Buffer.from('kb')] });
    expect(keys).toEqual(['kb', 'ka', 'kb']);
    expect(route(s, '/', 'amq.direct', 'ka', null, keys as string[]).sort()).toEqual(['a', 'b']);
    expect(route(s, '/', '', 'a', null, ['b', 'a']).sort()).toEqual(['a', 'b']);
  });

  it('must be arrays of strings', () => {
    expect(extraRoutingKeys({ other: 1 })).toBeNull();
    expectError(extraRoutingKeys({ CC: 'k' }), 406);
    expectError(extraRoutingKeys({ BCC: [1] }), 406);
  });
});

describe('publish checks', () => {
  it('refuse a missing exchange with 404 and pass a normal one', () => {
    const s = freshState();
    expectError(checkPublish(s, 'guest', '/', 'nope'), 404, "NOT_FOUND - no exchange 'nope' in vhost '/'");
    expect(checkPublish(s, 'guest', '/', '')).toMatchObject({ name: '', type: 'direct' });
  });
});

describe('queue.bind / queue.unbind', () => {
  it('answers 404 for a missing exchange or queue', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q'));
    expectError(bindQueue(s, 'q', 'nox'), 404, "NOT_FOUND - no exchange 'nox' in vhost '/'");
    expectError(bindQueue(s, 'noq', 'amq.direct'), 404, "NOT_FOUND - no queue 'noq' in vhost '/'");
    expectError(bindExchange(s, 'amq.direct', 'nox'), 404, "NOT_FOUND - no exchange 'nox' in vhost '/'");
  });

  it('binding twice keeps one binding; unbinding a missing binding is ok', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q'));
    expect(expectOk(bindQueue(s, 'q', 'amq.direct', 'k')).created).toBe(true);
    expect(expectOk(bindQueue(s, 'q', 'amq.direct', 'k')).created).toBe(false);
    expect(listBindings(s, '/')).toHaveLength(1);
    expectOk(unbindQueue(s, 'q', 'amq.direct', 'other'));
    expectOk(unbindQueue(s, 'q', 'amq.direct', 'k'));
    expectOk(unbindQueue(s, 'q', 'amq.direct', 'k'));
    expect(route(s, '/', 'amq.direct', 'k')).toEqual([]);
  });

  it('treats bindings with different arguments as different bindings', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q'));
    expectOk(bindQueue(s, 'q', 'amq.headers', '', { a: 1 }));
    expectOk(bindQueue(s, 'q', 'amq.headers', '', { b: 2 }));
    expectOk(unbindQueue(s, 'q', 'amq.headers', '', { a: 1 }));
    expect(route(s, '/', 'amq.headers', '', { a: 1 })).toEqual([]);
    expect(route(s, '/', 'amq.headers', '', { b: 2 })).toEqual(['q']);
  });

  it('refuses to bind a direct reply-to pseudo queue with 403', () => {
    expectError(bindQueue(freshState(), 'amq.rabbitmq.reply-to.g1h2AA', 'amq.direct', 'k'), 403,
      "ACCESS_REFUSED - cannot bind queue 'amq.rabbitmq.reply-to.g1h2AA' in vhost '/': it is a direct reply-to pseudo queue");
  });

  it('refuses bindings past the per-exchange bound with 406 and keeps routing the rest', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q'));
    for (let i = 0; i < modelLimits.bindingsPerExchangeMax; i++) expectOk(bindQueue(s, 'q', 'amq.direct', `k${i}`));
    expectError(bindQueue(s, 'q', 'amq.direct', 'one-more'), 406,
      `PRECONDITION_FAILED - binding count of exchange 'amq.direct' limit (${modelLimits.bindingsPerExchangeMax}) is reached`);
    expect(route(s, '/', 'amq.direct', 'k7')).toEqual(['q']);
    expect(expectOk(bindQueue(s, 'q', 'amq.direct', 'k7')).created).toBe(false);
  });
});
