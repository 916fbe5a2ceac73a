// exchange.declare / exchange.delete as RabbitMQ answers them: pre-declared exchanges, the
// default exchange, reserved names, equivalence, alternate-exchange, if-unused, auto-delete.

import { describe, expect, it } from 'vitest';
import { applyMetadata, listExchanges, lookupExchange } from '../../src/model/index.js';
import {
  bindExchange, bindQueue, declareExchange, declareQueue, expectError, expectOk, freshState,
  unbindQueue,
} from './helpers.js';

describe('exchange.declare', () => {
  it('every vhost starts with the default exchange and the amq.* exchanges, durable', () => {
    const s = freshState();
    const byName = new Map(listExchanges(s, '/').map((x) => [x.name, x]));
    expect([...byName.keys()].sort()).toEqual(['', 'amq.direct', 'amq.fanout', 'amq.headers',
      'amq.match', 'amq.rabbitmq.trace', 'amq.topic']);
    expect(byName.get('amq.topic')).toMatchObject({ type: 'topic', durable: true, internal: false });
    expect(byName.get('amq.match')?.type).toBe('headers');
    expect(byName.get('amq.rabbitmq.trace')).toMatchObject({ type: 'topic', internal: true });
  });

  it('creates an exchange, then accepts an equivalent redeclare without creating', () => {
    const s = freshState();
    expect(expectOk(declareExchange(s, 'logs', 'fanout', { durable: true })).created).toBe(true);
    const again = expectOk(declareExchange(s, 'logs', 'fanout', { durable: true }));
    expect(again.created).toBe(false);
    expect(again.exchange?.type).toBe('fanout');
  });

  it('refuses an unknown type with 406', () => {
    expectError(declareExchange(freshState(), 'x', 'x-nonsense'), 406,
      "PRECONDITION_FAILED - invalid exchange type 'x-nonsense'");
  });

  it('refuses the default exchange, passive or not, with 403', () => {
    const s = freshState();
    const text = 'ACCESS_REFUSED - operation not permitted on the default exchange';
    expectError(declareExchange(s, ''), 403, text);
    expectError(declareExchange(s, '', 'direct', { passive: true }), 403, text);
  });

  it('refuses new amq.* names but accepts an equivalent redeclare of amq.direct', () => {
    const s = freshState();
    expectError(declareExchange(s, 'amq.custom'), 403,
      "ACCESS_REFUSED - exchange name 'amq.custom' contains reserved prefix 'amq.*'");
    expectOk(declareExchange(s, 'amq.direct', 'direct', { durable: true }));
  });

  it('reports each inequivalent property in RabbitMQ wording', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'x', 'direct', { durable: true }));
    expectError(declareExchange(s, 'x', 'fanout', { durable: true }), 406,
      "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'");
    expectError(declareExchange(s, 'x', 'direct', { durable: false }), 406,
      "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'false' but current is 'true'");
    expectError(declareExchange(s, 'x', 'direct', { durable: true, autoDelete: true }), 406,
      "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange 'x' in vhost '/': received 'true' but current is 'false'");
    expectError(declareExchange(s, 'x', 'direct', { durable: true, internal: true }), 406,
      "PRECONDITION_FAILED - inequivalent arg 'internal' for exchange 'x' in vhost '/': received 'true' but current is 'false'");
  });

  it('compares alternate-exchange on redeclare and ignores other arguments', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'x', 'direct', { arguments: { 'alternate-exchange': 'ae', other: 1 } }));
    expectOk(declareExchange(s, 'x', 'direct', { arguments: { 'alternate-exchange': Buffer.from('ae') } }));
    expectError(declareExchange(s, 'x', 'direct', { arguments: {} }), 406,
      "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received none but current is the value 'ae' of type 'longstr'");
    expectError(declareExchange(s, 'x', 'direct', { arguments: { 'alternate-exchange': 'b' } }), 406,
      "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received the value 'b' of type 'longstr' but current is the value 'ae' of type 'longstr'");
  });

  it('refuses an alternate-exchange that is not a string', () => {
    expectError(declareExchange(freshState(), 'x', 'direct', { arguments: { 'alternate-exchange': 5 } }),
      406, "PRECONDITION_FAILED - invalid type 'byte' for arg 'alternate-exchange' in exchange 'x' in vhost '/'");
  });

  it('passive declare finds an exchange or answers 404', () => {
    const s = freshState();
    expectError(declareExchange(s, 'nope', 'direct', { passive: true }), 404,
      "NOT_FOUND - no exchange 'nope' in vhost '/'");
    expectOk(declareExchange(s, 'yes', 'topic'));
    // Passive ignores type and flags.
    expect(expectOk(declareExchange(s, 'yes', 'fanout', { passive: true, durable: true })).exchange?.type)
      .toBe('topic');
  });

  it('strips CR and LF from names as RabbitMQ does', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'a\r\nb'));
    expect(lookupExchange(s, '/', 'ab')).toBeDefined();
  });

  it('answers 404 for a missing vhost', () => {
    expectError(declareExchange(freshState(), 'x', 'direct', { vhost: 'other' }), 404, "NOT_FOUND - no vhost 'other'");
  });
});

describe('exchange.delete', () => {
  const del = (s: ReturnType<typeof freshState>, name: string, ifUnused = false) =>
    applyMetadata(s, { kind: 'deleteExchange', vhost: '/', name, ifUnused });

  it('is idempotent for a missing exchange', () => {
    expect(expectOk(del(freshState(), 'missing')).deletedExchanges).toEqual([]);
  });

  it('refuses the default exchange and system exchanges with 403', () => {
    const s = freshState();
    expectError(del(s, ''), 403, 'ACCESS_REFUSED - operation not permitted on the default exchange');
    expectError(del(s, 'amq.direct'), 403,
      "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed");
  });

  it('if-unused refuses an exchange with bindings and deletes one without', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'x'));
    expectOk(declareQueue(s, 'q'));
    expectOk(bindQueue(s, 'q', 'x', 'k'));
    expectError(del(s, 'x', true), 406, "PRECONDITION_FAILED - exchange 'x' in vhost '/' in use");
    expectOk(unbindQueue(s, 'q', 'x', 'k'));
    expect(expectOk(del(s, 'x', true)).deletedExchanges.map((x) => x.name)).toEqual(['x']);
    expect(lookupExchange(s, '/', 'x')).toBeUndefined();
  });

  it('removes the bindings the exchange is part of, as source and as destination', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'up', 'fanout'));
    expectOk(declareExchange(s, 'x', 'fanout'));
    expectOk(declareQueue(s, 'q'));
    expectOk(bindExchange(s, 'up', 'x'));
    expectOk(bindQueue(s, 'q', 'x'));
    expectOk(del(s, 'x'));
    // Redeclared, it starts without bindings; 'up' no longer forwards to it.
    expectOk(declareExchange(s, 'x', 'fanout'));
    expectOk(applyMetadata(s, { kind: 'deleteExchange', vhost: '/', name: 'up', ifUnused: true }));
    expectOk(del(s, 'x', true));
  });
});

describe('auto-delete exchanges', () => {
  it('goes when its last binding as source goes, not before its first', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'ad', 'direct', { autoDelete: true }));
    expectOk(declareQueue(s, 'q'));
    expect(lookupExchange(s, '/', 'ad')).toBeDefined();
    expectOk(bindQueue(s, 'q', 'ad', 'a'));
    expectOk(bindQueue(s, 'q', 'ad', 'b'));
    expect(expectOk(unbindQueue(s, 'q', 'ad', 'a')).deletedExchanges).toEqual([]);
    const last = expectOk(unbindQueue(s, 'q', 'ad', 'b'));
    expect(last.deletedExchanges.map((x) => x.name)).toEqual(['ad']);
    expect(lookupExchange(s, '/', 'ad')).toBeUndefined();
  });

  it('cascades along exchange-to-exchange bindings when a queue is deleted', () => {
    const s = freshState();
    expectOk(declareExchange(s, 'outer', 'fanout', { autoDelete: true }));
    expectOk(declareExchange(s, 'inner', 'fanout', { autoDelete: true }));
    expectOk(declareQueue(s, 'q'));
    expectOk(bindExchange(s, 'outer', 'inner'));
    expectOk(bindQueue(s, 'q', 'inner'));
    const r = expectOk(applyMetadata(s, {
      kind: 'deleteQueue', vhost: '/', name: 'q', ifUnused: false, ifEmpty: false,
      consumerCount: 0, messageCount: 0, connection: null,
    }));
    expect(r.deletedExchanges.map((x) => x.name)).toEqual(['inner', 'outer']);
  });
});
