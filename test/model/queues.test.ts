// queue.declare / queue.delete / queue.purge and exclusive queues as RabbitMQ answers them:
// equivalence (properties and x-args), x-arg validation, queue kinds, owners, counts.

import { describe, expect, it } from 'vitest';
import { nodeId } from '../../src/lib/ids.js';
import {
  applyMetadata, listBindings, lookupQueue, requestedReplicaCount, route,
} from '../../src/model/index.js';
import {
  bindQueue, conn1, conn2, declareQueue, deleteQueue, expectError, expectOk, freshState,
} from './helpers.js';

const locked = (q: string) => "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '"
  + `${q}' in vhost '/'. It could be originally declared on another connection or the exclusive `
  + 'property value does not match that of the original declaration.';

describe('queue.declare', () => {
  it('makes durable shared queues replicated and everything else local to the declaring node', () => {
    const s = freshState();
    const replicas = [nodeId('node-a'), nodeId('node-b'), nodeId('node-c')];
    const r = expectOk(declareQueue(s, 'jobs', { durable: true, replicas }));
    expect(r.created).toBe(true);
    expect(r.queue).toMatchObject({ kind: 'replicated', replicas, homeNode: 'node-a' });
    for (const arg of [{ 'x-queue-type': 'quorum' }, { 'x-queue-type': 'classic' }]) {
      const name = `d-${String(arg['x-queue-type'])}`;
      expect(expectOk(declareQueue(s, name, { durable: true, arguments: arg })).queue?.kind).toBe('replicated');
    }
    expect(expectOk(declareQueue(s, 'tmp', { durable: false })).queue).toMatchObject({
      kind: 'local', replicas: ['node-a'],
    });
    expect(expectOk(declareQueue(s, 'ex', { durable: true, exclusive: true })).queue).toMatchObject({
      kind: 'local', exclusiveOwner: conn1, durable: false,
    });
    // Exclusive queues are never durable, so either flag redeclares the same queue.
    expectOk(declareQueue(s, 'ex', { durable: false, exclusive: true }));
    expectOk(declareQueue(s, 'ex', { durable: true, exclusive: true }));
    expect(expectOk(declareQueue(s, 'ad', { durable: true, autoDelete: true })).queue?.kind).toBe('local');
  });

  it('refuses client-named amq.* queues but accepts server-named ones', () => {
    const s = freshState();
    expectError(declareQueue(s, 'amq.mine'), 403,
      "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'");
    expectOk(declareQueue(s, 'amq.gen-AbCdEfGhIjKlMnOpQrStUv', { serverNamed: true, exclusive: true }));
  });

  it('reports inequivalent durable and auto_delete', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q1', { durable: true }));
    expectError(declareQueue(s, 'q1', { durable: false }), 406,
      "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q1' in vhost '/': received 'false' but current is 'true'");
    expectError(declareQueue(s, 'q1', { durable: true, autoDelete: true }), 406,
      "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q1' in vhost '/': received 'true' but current is 'false'");
    expect(expectOk(declareQueue(s, 'q1', { durable: true })).created).toBe(false);
  });

  it('compares integer x-args by value across field types', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q', { arguments: { 'x-message-ttl': 60000 } }));
    expectOk(declareQueue(s, 'q', { arguments: { 'x-message-ttl': 60000n } }));
    expectOk(declareQueue(s, 'q', { arguments: { 'x-message-ttl': { tag: 'l', value: 60000n } } }));
    expectOk(declareQueue(s, 'q', { arguments: { 'x-message-ttl': { type: 'I', value: 60000 } } }));
    expectError(declareQueue(s, 'q', { arguments: { 'x-message-ttl': 1000 } }), 406,
      "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received the value '1000' of type 'short' but current is the value '60000' of type 'signedint'");
    expectError(declareQueue(s, 'q', { arguments: {} }), 406,
      "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received none but current is the value '60000' of type 'signedint'");
    expectError(declareQueue(s, 'q', { arguments: { 'x-message-ttl': '60000' } }), 406);
  });

  it('treats x-queue-type classic as absent, but quorum as different', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q', { durable: true }));
    expectOk(declareQueue(s, 'q', { durable: true, arguments: { 'x-queue-type': 'classic' } }));
    expectError(declareQueue(s, 'q', { durable: true, arguments: { 'x-queue-type': 'quorum' } }), 406,
      "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received the value 'quorum' of type 'longstr' but current is none");
  });

  it('ignores unknown arguments on redeclare', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q', { arguments: { 'x-custom': 1 } }));
    expectOk(declareQueue(s, 'q', { arguments: { 'x-custom': 2, 'x-other': 'y' } }));
  });

  const invalid: Array<[string, Record<string, unknown>, string]> = [
    ['x-max-priority', { 'x-max-priority': 300 }, '{max_value_exceeded,300}'],
    ['x-max-priority', { 'x-max-priority': -1 }, '{value_negative,-1}'],
    ['x-overflow', { 'x-overflow': 'drop-tail' }, 'invalid_overflow'],
    ['x-overflow', { 'x-overflow': 1 }, '{unacceptable_type,byte}'],
    ['x-dead-letter-routing-key', { 'x-dead-letter-routing-key': 'k' }, 'routing_key_but_no_dlx_defined'],
    ['x-expires', { 'x-expires': 0 }, '{value_zero,0}'],
    ['x-expires', { 'x-expires': -5 }, '{value_negative,-5}'],
    ['x-message-ttl', { 'x-message-ttl': -1 }, '{value_negative,-1}'],
    ['x-message-ttl', { 'x-message-ttl': 5_000_000_000 }, '{value_too_large,5000000000}'],
    ['x-message-ttl', { 'x-message-ttl': 'soon' }, '{unacceptable_type,longstr}'],
    ['x-max-length', { 'x-max-length': -2 }, '{value_negative,-2}'],
    ['x-max-length-bytes', { 'x-max-length-bytes': 1.5 }, '{unacceptable_type,double}'],
    ['x-single-active-consumer', { 'x-single-active-consumer': 1 }, '{unacceptable_type,byte}'],
    ['x-queue-type', { 'x-queue-type': 'stream' }, 'invalid_queue_type'],
    ['x-quorum-initial-group-size', { 'x-quorum-initial-group-size': 0 }, '{value_zero,0}'],
  ];
  for (const [arg, args, reason] of invalid) {
    it(`refuses ${arg}=${JSON.stringify(Object.values(args)[0])} with 406 ${reason}`, () => {
      const s = freshState();
      expectError(declareQueue(s, 'q', { arguments: args }), 406,
        `PRECONDITION_FAILED - invalid arg '${arg}' for queue 'q' in vhost '/': ${reason}`);
      expect(lookupQueue(s, '/', 'q')).toBeUndefined();
    });
  }

  it('accepts valid x-args of every kind', () => {
    expectOk(declareQueue(freshState(), 'q', { arguments: {
      'x-message-ttl': 0, 'x-expires': 1000, 'x-max-length': 0, 'x-max-length-bytes': 1024,
      'x-overflow': 'reject-publish-dlx', 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dl',
      'x-max-priority': 255, 'x-single-active-consumer': true, 'x-queue-mode': 'lazy',
      'x-queue-version': 2, 'x-delivery-limit': -1,
    } }));
  });

  it('refuses a non-string x-dead-letter-exchange as RabbitMQ channel does', () => {
    expectError(declareQueue(freshState(), 'q', { arguments: { 'x-dead-letter-exchange': 7 } }), 406,
      "PRECONDITION_FAILED - invalid type 'byte' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'");
  });

  it('quorum queues refuse classic-only args and non-durable, exclusive or auto-delete', () => {
    const s = freshState();
    const quorum = { 'x-queue-type': 'quorum' };
    expectError(declareQueue(s, 'q', { durable: true, arguments: { ...quorum, 'x-max-priority': 5 } }), 406,
      "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q' in vhost '/' of queue type quorum");
    expectError(declareQueue(s, 'q', { durable: false, arguments: quorum }), 406,
      "PRECONDITION_FAILED - invalid property 'non-durable' for queue 'q' in vhost '/'");
    expectError(declareQueue(s, 'q', { durable: true, exclusive: true, arguments: quorum }), 406,
      "PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue 'q' in vhost '/'");
    expectError(declareQueue(s, 'q', { durable: true, autoDelete: true, arguments: quorum }), 406,
      "PRECONDITION_FAILED - invalid property 'auto-delete' for queue 'q' in vhost '/'");
  });

  it('passive declare finds the queue, answers 404, and 405 for a foreign exclusive queue', () => {
    const s = freshState();
    expectError(declareQueue(s, 'q', { passive: true }), 404, "NOT_FOUND - no queue 'q' in vhost '/'");
    expectOk(declareQueue(s, 'q', { exclusive: true }));
    expectOk(declareQueue(s, 'q', { passive: true, durable: true }));
    expectError(declareQueue(s, 'q', { passive: true, connection: conn2 }), 405, locked('q'));
  });
});

describe('exclusive queues', () => {
  it('another connection gets 405 on redeclare, bind, purge and delete', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'mine', { exclusive: true }));
    expectError(declareQueue(s, 'mine', { exclusive: true, connection: conn2 }), 405, locked('mine'));
    expectError(bindQueue(s, 'mine', 'amq.direct', 'k', {}, { connection: conn2 }), 405, locked('mine'));
    expectError(applyMetadata(s, { kind: 'purgeQueue', vhost: '/', name: 'mine', connection: conn2 }), 405);
    expectError(deleteQueue(s, 'mine', { connection: conn2 }), 405, locked('mine'));
    expectOk(applyMetadata(s, { kind: 'purgeQueue', vhost: '/', name: 'mine', connection: conn1 }));
  });

  it('the owner redeclaring without exclusive, or anyone redeclaring a shared queue exclusive, gets 405', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'mine', { exclusive: true }));
    expectError(declareQueue(s, 'mine', { exclusive: false }), 405, locked('mine'));
    expectOk(declareQueue(s, 'shared'));
    expectError(declareQueue(s, 'shared', { exclusive: true }), 405, locked('shared'));
  });

  it('a closed connection loses its exclusive queues and their bindings, nothing else', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'a', { exclusive: true }));
    expectOk(declareQueue(s, 'b', { exclusive: true }));
    expectOk(declareQueue(s, 'c', { exclusive: true, connection: conn2 }));
    expectOk(declareQueue(s, 'shared'));
    expectOk(bindQueue(s, 'a', 'amq.fanout'));
    const r = expectOk(applyMetadata(s, { kind: 'deleteExclusiveQueues', connection: conn1 }));
    expect(r.deletedQueues.map((q) => q.name).sort()).toEqual(['a', 'b']);
    expect(lookupQueue(s, '/', 'c')).toBeDefined();
    expect(lookupQueue(s, '/', 'shared')).toBeDefined();
    expect(route(s, '/', 'amq.fanout', '')).toEqual([]);
  });
});

describe('placement', () => {
  it('a removed node loses its local queues; replicated queues stay', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'local-a', { autoDelete: true }));
    expectOk(declareQueue(s, 'excl-b', { exclusive: true, connection: conn2 }));
    expectOk(declareQueue(s, 'durable-a', { durable: true }));
    const r = expectOk(applyMetadata(s, { kind: 'deleteNodeQueues', nodeId: nodeId('node-a') }));
    expect(r.deletedQueues.map((q) => q.name)).toEqual(['local-a']);
    expect(lookupQueue(s, '/', 'durable-a')).toBeDefined();
    expect(lookupQueue(s, '/', 'excl-b')).toBeDefined();
  });

  it('reads the replica count a declare asks for', () => {
    expect(requestedReplicaCount({ 'x-quorum-initial-group-size': 5 })).toBe(5);
    expect(requestedReplicaCount({ 'x-initial-cluster-size': 3n })).toBe(3);
    expect(requestedReplicaCount({ 'x-quorum-initial-group-size': 'five' })).toBeNull();
    expect(requestedReplicaCount({})).toBeNull();
  });

  it('moves the replica set of a replicated queue, and only of one', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'd', { durable: true }));
    expectOk(declareQueue(s, 't'));
    const replicas = [nodeId('node-b'), nodeId('node-c'), nodeId('node-a')];
    const r = expectOk(applyMetadata(s, { kind: 'setQueueReplicas', vhost: '/', name: 'd', replicas }));
    expect(r.changedQueues.map((q) => q.name)).toEqual(['d']);
    expect(lookupQueue(s, '/', 'd')?.replicas).toEqual(replicas);
    expectError(applyMetadata(s, { kind: 'setQueueReplicas', vhost: '/', name: 't', replicas }), 406);
    expectError(applyMetadata(s, { kind: 'setQueueReplicas', vhost: '/', name: 'nope', replicas }), 404);
  });
});

describe('queue.delete', () => {
  it('is ok for a missing queue', () => {
    expect(expectOk(deleteQueue(freshState(), 'none')).deletedQueues).toEqual([]);
  });

  it('if-unused refuses a queue with consumers, if-empty one with messages (in that order)', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q'));
    expectError(deleteQueue(s, 'q', { ifUnused: true, ifEmpty: true, consumers: 1, messages: 3 }), 406,
      "PRECONDITION_FAILED - queue 'q' in vhost '/' in use");
    expectError(deleteQueue(s, 'q', { ifEmpty: true, messages: 3 }), 406,
      "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty");
    expectOk(deleteQueue(s, 'q', { ifUnused: true, ifEmpty: true }));
    expect(lookupQueue(s, '/', 'q')).toBeUndefined();
  });

  it('removes the queue bindings and reports the deleted queue', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q', { durable: true }));
    expectOk(bindQueue(s, 'q', 'amq.direct', 'k'));
    expectOk(bindQueue(s, 'q', 'amq.topic', '#'));
    const r = expectOk(deleteQueue(s, 'q'));
    expect(r.deletedQueues.map((q) => q.name)).toEqual(['q']);
    expect(listBindings(s, '/')).toEqual([]);
    expectOk(declareQueue(s, 'q', { durable: true }));
    expect(route(s, '/', 'amq.direct', 'k')).toEqual([]);
  });
});

describe('queue.purge', () => {
  it('answers 404 for a missing queue and ok with the record otherwise', () => {
    const s = freshState();
    expectError(applyMetadata(s, { kind: 'purgeQueue', vhost: '/', name: 'q', connection: conn1 }), 404,
      "NOT_FOUND - no queue 'q' in vhost '/'");
    expectOk(declareQueue(s, 'q'));
    expect(expectOk(applyMetadata(s, { kind: 'purgeQueue', vhost: '/', name: 'q', connection: conn1 })).queue?.name)
      .toBe('q');
  });
});
