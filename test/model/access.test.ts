// Users, vhosts and permissions: who may open a vhost (530) and configure/write/read which
// resources (403), with RabbitMQ's regex semantics and reply texts.

import { describe, expect, it } from 'vitest';
import {
  applyMetadata, checkPublish, checkQueueAccess, checkTopicAccess, checkVhostAccess,
  checkVhostConnectionLimit, findUser,
  listVhosts, lookupExchange, lookupQueue, restoreMetadata, route, snapshotMetadata,
  type ExchangeRecord, type MetadataState,
} from '../../src/model/index.js';
import {
  bindQueue, conn1, declareExchange, declareQueue, expectError, expectOk, freshState,
} from './helpers.js';

function withUser(configure: string, write: string, read: string): MetadataState {
  const s = freshState();
  expectOk(applyMetadata(s, { kind: 'addUser', name: 'bob', passwordHash: 'h', tags: [] }));
  expectOk(applyMetadata(s, { kind: 'setPermissions', user: 'bob', vhost: '/', configure, write, read }));
  return s;
}

describe('vhost access', () => {
  it('allows a user with permissions in an existing vhost and refuses others with 530', () => {
    const s = freshState();
    expect(checkVhostAccess(s, 'guest', '/')).toBeNull();
    expectError(checkVhostAccess(s, 'guest', 'nope'), 530, "NOT_ALLOWED - access to vhost 'nope' refused for user 'guest'");
    expectOk(applyMetadata(s, { kind: 'addUser', name: 'eve', passwordHash: 'x', tags: [] }));
    expectError(checkVhostAccess(s, 'eve', '/'), 530, "NOT_ALLOWED - access to vhost '/' refused for user 'eve'");
    expect(checkVhostAccess(s, 'guest', '/')).toBeNull();
  });

  it('the scope of a 530 is the connection', () => {
    expect(checkVhostAccess(freshState(), 'guest', 'x')?.scope).toBe('connection');
  });
});

describe('resource permissions', () => {
  it('declare needs configure on the name', () => {
    const s = withUser('^mine-', '.*', '.*');
    expectOk(declareQueue(s, 'mine-1', { user: 'bob' }));
    expectError(declareQueue(s, 'other', { user: 'bob' }), 403,
      "ACCESS_REFUSED - configure access to queue 'other' in vhost '/' refused for user 'bob'");
    expectError(declareExchange(s, 'other-x', 'direct', { user: 'bob' }), 403,
      "ACCESS_REFUSED - configure access to exchange 'other-x' in vhost '/' refused for user 'bob'");
    expect(lookupQueue(s, '/', 'other')).toBeUndefined();
  });

  it('bind needs write on the queue and read on the exchange', () => {
    const s = withUser('.*', '^q$', '^amq\\.direct$');
    expectOk(declareQueue(s, 'q'));
    expectOk(declareQueue(s, 'r'));
    expectOk(bindQueue(s, 'q', 'amq.direct', 'k', {}, { user: 'bob' }));
    expectError(bindQueue(s, 'r', 'amq.direct', 'k', {}, { user: 'bob' }), 403,
      "ACCESS_REFUSED - write access to queue 'r' in vhost '/' refused for user 'bob'");
    expectError(bindQueue(s, 'q', 'amq.fanout', 'k', {}, { user: 'bob' }), 403,
      "ACCESS_REFUSED - read access to exchange 'amq.fanout' in vhost '/' refused for user 'bob'");
  });

  it('purge and consume need read; the checks come before existence', () => {
    const s = withUser('.*', '.*', '^readable$');
    expectOk(declareQueue(s, 'readable'));
    expectOk(declareQueue(s, 'secret'));
    expectOk(applyMetadata(s, { kind: 'purgeQueue', vhost: '/', name: 'readable', connection: conn1, user: 'bob' }));
    expectError(applyMetadata(s, { kind: 'purgeQueue', vhost: '/', name: 'secret', connection: conn1, user: 'bob' }), 403);
    expectError(checkQueueAccess(s, 'bob', '/', 'secret', conn1), 403);
    expectError(checkQueueAccess(s, 'bob', '/', 'missing', conn1), 403);
    expectError(checkQueueAccess(s, 'guest', '/', 'missing', conn1), 404, "NOT_FOUND - no queue 'missing' in vhost '/'");
    expect(checkQueueAccess(s, 'bob', '/', 'readable', conn1)).toMatchObject({ name: 'readable' });
  });

  it("an empty pattern permits nothing and the default exchange is checked as 'amq.default'", () => {
    const s = withUser('.*', '', '.*');
    expectOk(declareQueue(s, 'q'));
    expectError(bindQueue(s, 'q', 'amq.direct', 'k', {}, { user: 'bob' }), 403);
    expectError(checkPublish(s, 'bob', '/', ''), 403,
      "ACCESS_REFUSED - write access to exchange 'amq.default' in vhost '/' refused for user 'bob'");
    const s2 = withUser('.*', '^amq\\.default$', '.*');
    expect(checkPublish(s2, 'bob', '/', '')).toMatchObject({ name: '' });
    expectError(checkPublish(s2, 'bob', '/', 'amq.direct'), 403);
  });

  it('commands without a user are trusted', () => {
    const s = withUser('', '', '');
    expectOk(declareQueue(s, 'q'));
  });
});

describe('users', () => {
  it('adds, replaces and deletes users; deleting drops their permissions', () => {
    const s = freshState();
    expect(findUser(s, 'guest')?.passwordHash).toBe('hash-of-guest');
    expect(expectOk(applyMetadata(s, { kind: 'addUser', name: 'ann', passwordHash: 'h1', tags: ['monitoring'] })).created).toBe(true);
    expect(expectOk(applyMetadata(s, { kind: 'addUser', name: 'ann', passwordHash: 'h2', tags: [] })).created).toBe(false);
    expect(findUser(s, 'ann')).toEqual({ name: 'ann', passwordHash: 'h2', tags: [] });
    expectOk(applyMetadata(s, { kind: 'setPermissions', user: 'ann', vhost: '/', configure: '.*', write: '.*', read: '.*' }));
    expect(checkVhostAccess(s, 'ann', '/')).toBeNull();
    expectOk(applyMetadata(s, { kind: 'deleteUser', name: 'ann' }));
    expect(findUser(s, 'ann')).toBeUndefined();
    expectOk(applyMetadata(s, { kind: 'addUser', name: 'ann', passwordHash: 'h3', tags: [] }));
    expectError(checkVhostAccess(s, 'ann', '/'), 530);
    expectError(applyMetadata(s, { kind: 'deleteUser', name: 'zed' }), 404, "NOT_FOUND - no user 'zed'");
  });

  it('refuses permissions for unknown users or vhosts and invalid regexes', () => {
    const s = freshState();
    expectError(applyMetadata(s, { kind: 'setPermissions', user: 'zed', vhost: '/', configure: '', write: '', read: '' }), 404);
    expectError(applyMetadata(s, { kind: 'setPermissions', user: 'guest', vhost: 'v', configure: '', write: '', read: '' }), 404);
    expectError(applyMetadata(s, { kind: 'setPermissions', user: 'guest', vhost: '/', configure: '(', write: '', read: '' }), 406);
    expectOk(applyMetadata(s, { kind: 'clearPermissions', user: 'guest', vhost: '/' }));
    expectError(checkVhostAccess(s, 'guest', '/'), 530);
  });
});

describe('vhosts', () => {
  it('a new vhost has its own pre-declared exchanges and separate names', () => {
    const s = freshState();
    expect(expectOk(applyMetadata(s, { kind: 'addVhost', name: 'dev' })).created).toBe(true);
    expect(expectOk(applyMetadata(s, { kind: 'addVhost', name: 'dev' })).created).toBe(false);
    expect(listVhosts(s)).toEqual(['/', 'dev']);
    expectOk(declareQueue(s, 'q', { vhost: 'dev' }));
    expectOk(applyMetadata(s, { kind: 'bindQueue', vhost: 'dev', queue: 'q', exchange: 'amq.fanout',
      routingKey: '', arguments: {}, connection: null }));
    expect(route(s, 'dev', 'amq.fanout', '')).toEqual(['q']);
    expect(route(s, '/', 'amq.fanout', '')).toEqual([]);
    expect(lookupQueue(s, '/', 'q')).toBeUndefined();
  });

  it('deleting a vhost reports its queues so the broker drops them', () => {
    const s = freshState();
    expectOk(applyMetadata(s, { kind: 'addVhost', name: 'dev' }));
    expectOk(declareQueue(s, 'q1', { vhost: 'dev' }));
    expectOk(declareQueue(s, 'q2', { vhost: 'dev' }));
    const r = expectOk(applyMetadata(s, { kind: 'deleteVhost', name: 'dev' }));
    expect(r.deletedQueues.map((q) => q.name)).toEqual(['q1', 'q2']);
    expectError(applyMetadata(s, { kind: 'deleteVhost', name: 'dev' }), 404, "NOT_FOUND - no vhost 'dev'");
  });
});

describe('topic permissions', () => {
  function withTopic(write: string, read: string): MetadataState {
    const s = withUser('.*', '.*', '.*');
    expectOk(applyMetadata(s, { kind: 'setTopicPermissions', user: 'bob', vhost: '/', exchange: 'amq.topic', write, read }));
    return s;
  }
  const topic = (s: MetadataState) => lookupExchange(s, '/', 'amq.topic') as ExchangeRecord;

  it('restrict publishing routing keys on that topic exchange only', () => {
    const s = withTopic('^orders\\.', '.*');
    expect(checkTopicAccess(s, 'bob', '/', topic(s), 'orders.created', 'write')).toBeNull();
    expectError(checkTopicAccess(s, 'bob', '/', topic(s), 'users.created', 'write'), 403,
      "ACCESS_REFUSED - write access to topic 'users.created' in exchange 'amq.topic' in vhost '/' refused for user 'bob'");
    expectOk(declareExchange(s, 'other', 'topic'));
    expect(checkTopicAccess(s, 'bob', '/', lookupExchange(s, '/', 'other') as ExchangeRecord, 'users.created', 'write')).toBeNull();
    expect(checkTopicAccess(s, 'guest', '/', topic(s), 'users.created', 'write')).toBeNull();
  });

  it('restrict binding keys with the read pattern, expanding {username}', () => {
    const s = withTopic('.*', '^{username}\\.');
    expectOk(declareQueue(s, 'q'));
    expectOk(bindQueue(s, 'q', 'amq.topic', 'bob.#', {}, { user: 'bob' }));
    expectError(bindQueue(s, 'q', 'amq.topic', 'alice.#', {}, { user: 'bob' }), 403,
      "ACCESS_REFUSED - read access to topic 'alice.#' in exchange 'amq.topic' in vhost '/' refused for user 'bob'");
  });

  it("an empty pattern permits only the empty key; clearing lifts the restriction", () => {
    const s = withTopic('', '');
    expect(checkTopicAccess(s, 'bob', '/', topic(s), '', 'write')).toBeNull();
    expectError(checkTopicAccess(s, 'bob', '/', topic(s), 'a', 'write'), 403);
    expectOk(applyMetadata(s, { kind: 'clearTopicPermissions', user: 'bob', vhost: '/' }));
    expect(checkTopicAccess(s, 'bob', '/', topic(s), 'a', 'write')).toBeNull();
  });

  it('survive a snapshot round trip and go with their user', () => {
    const s = withTopic('^x$', '^y$');
    const restored = restoreMetadata(JSON.parse(JSON.stringify(snapshotMetadata(s))));
    expectError(checkTopicAccess(restored, 'bob', '/', topic(restored), 'z', 'write'), 403);
    expectOk(applyMetadata(restored, { kind: 'deleteUser', name: 'bob' }));
    expectOk(applyMetadata(restored, { kind: 'addUser', name: 'bob', passwordHash: 'h', tags: [] }));
    expect(checkTopicAccess(restored, 'bob', '/', topic(restored), 'z', 'write')).toBeNull();
  });
});

describe('vhost limits', () => {
  it('max-queues refuses new queues with 406 but allows redeclares; -1 lifts it', () => {
    const s = freshState();
    expectOk(applyMetadata(s, { kind: 'setVhostLimits', vhost: '/', maxQueues: 2, maxConnections: null }));
    expectOk(declareQueue(s, 'a'));
    expectOk(declareQueue(s, 'b'));
    expectError(declareQueue(s, 'c'), 406,
      "PRECONDITION_FAILED - cannot declare queue 'c': queue limit in vhost '/' (2) is reached");
    expectOk(declareQueue(s, 'a'));
    expectOk(applyMetadata(s, { kind: 'setVhostLimits', vhost: '/', maxQueues: -1, maxConnections: null }));
    expectOk(declareQueue(s, 'c'));
  });

  it('max-connections refuses the connection over the limit with 530', () => {
    const s = freshState();
    expect(checkVhostConnectionLimit(s, 'guest', '/', 1000)).toBeNull();
    expectOk(applyMetadata(s, { kind: 'setVhostLimits', vhost: '/', maxQueues: null, maxConnections: 1 }));
    expect(checkVhostConnectionLimit(s, 'guest', '/', 0)).toBeNull();
    const e = expectError(checkVhostConnectionLimit(s, 'guest', '/', 1), 530,
      "NOT_ALLOWED - access to vhost '/' refused for user 'guest': connection limit (1) is reached");
    expect(e.scope).toBe('connection');
    const restored = restoreMetadata(JSON.parse(JSON.stringify(snapshotMetadata(s))));
    expectError(checkVhostConnectionLimit(restored, 'guest', '/', 1), 530);
  });
});
