// The management API on one in-process node (group host, replicated metadata, broker, the HTTP
// listener) driven over HTTP and AMQP at once: RabbitMQ's statuses, error bodies and fields;
// users, vhosts and permissions; queue declare, get, purge and delete; publish through an
// exchange; a connection closed through the API sees 320; RabbitMQ definitions imported (their
// password hashes log in), exported, and a second plan of the export is empty.

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeId } from '../../src/lib/ids.js';
import { planDefinitions, type Definitions } from '../../src/model/index.js';
import type { ReplicatedNode } from '../broker/replicated-node.js';
import { startManagedNode, type ManagedNode } from './management-node.js';

let managed: ManagedNode;
let node: ReplicatedNode;
let base: string;
let api: ManagedNode['api'];

beforeAll(async () => {
  managed = await startManagedNode();
  ({ node, base, api } = managed);
}, 30_000);
afterAll(() => managed.stop());

describe('management API', () => {
  it('authenticates with the broker users and answers RabbitMQ errors', async () => {
    const none = await fetch(`${base}/api/overview`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Basic');
    expect((await api('GET', '/api/overview', undefined, ['guest', 'wrong'])).status).toBe(401);
    const o = await api('GET', '/api/overview');
    expect(o.status).toBe(200);
    expect(o.json).toMatchObject({ product_name: 'espresso', node: 'n1', object_totals: { exchanges: 7 }, rates_mode: 'basic' });
    expect(await api('GET', '/api/nowhere')).toMatchObject({ status: 404, json: { error: 'not_found', reason: 'Not Found' } });
    expect(await api('PUT', '/api/vhosts/v1', '{not json')).toMatchObject({ status: 400, json: { error: 'bad_request' } });
  });

  it('manages users, vhosts and permissions; a user without permission is refused', async () => {
    expect((await api('PUT', '/api/vhosts/shop')).status).toBe(201);
    expect((await api('PUT', '/api/vhosts/shop')).status).toBe(204);
    expect((await api('PUT', '/api/users/alice', { password: 'pw', tags: 'management' })).status).toBe(201);
    expect(await api('PUT', '/api/users/bob', { password: 'pw' })).toMatchObject({ status: 400, json: { error: 'bad_request', reason: '[{key_missing,tags}]' } });
    expect(await api('PUT', '/api/users/bob', '[1]')).toMatchObject({ status: 400, json: { reason: 'not_json' } });
    expect(await api('PUT', '/api/permissions/shop/nobody', { configure: '.*', write: '.*', read: '.*' })).toMatchObject({ status: 400, json: { reason: 'vhost_or_user_not_found' } });
    expect(await api('PUT', '/api/permissions/shop/alice', { configure: '.*', write: 42, read: '.*' })).toMatchObject({ status: 400, json: { error: 'bad_request' } });
    expect((await api('PUT', '/api/permissions/shop/alice', { configure: '^alice', write: '.*', read: '.*' })).status).toBe(201);

    // alice: management tag, permissions in shop only.
    const alice: [string, string] = ['alice', 'pw'];
    expect(await api('GET', '/api/users', undefined, alice)).toMatchObject({ status: 401, json: { error: 'not_authorised', reason: 'Not administrator user' } });
    expect(await api('GET', '/api/nodes', undefined, alice)).toMatchObject({ status: 401, json: { reason: 'Not monitor user' } });
    expect(await api('GET', '/api/queues/%2F', undefined, alice)).toMatchObject({ status: 404, json: { error: 'not_found' } });
    expect((await api('GET', '/api/vhosts', undefined, alice)).json).toMatchObject([{ name: 'shop' }]);
    // PUT queue runs queue.declare as alice: configure only on ^alice.
    expect(await api('PUT', '/api/queues/shop/orders', { durable: true }, alice)).toMatchObject({ status: 401, json: { error: 'not_authorised', reason: 'Access refused.' } });
    expect((await api('PUT', '/api/queues/shop/alice-q', { durable: true }, alice)).status).toBe(201);
    expect((await api('GET', '/api/whoami', undefined, alice)).json).toEqual({ name: 'alice', tags: ['management'], is_internal_user: true });

    const users = await api('GET', '/api/users');
    const a = (users.json as Array<{ name: string; hashing_algorithm: string; password_hash: string }>).find((u) => u.name === 'alice')!;
    expect(a.hashing_algorithm).toBe('rabbit_password_hashing_sha256');
    expect(Buffer.from(a.password_hash, 'base64').length).toBe(36);
    expect((await api('GET', '/api/permissions/shop/alice')).json).toEqual({ user: 'alice', vhost: 'shop', configure: '^alice', write: '.*', read: '.*' });
    // Topic permissions: a routing key alice may not publish on a topic exchange is refused (403 over AMQP).
    // guest has no permissions in shop (a new vhost grants none): its declare there is refused as AMQP's would be.
    expect(await api('PUT', '/api/exchanges/shop/alice.events', { type: 'topic' })).toMatchObject({ status: 401, json: { reason: 'Access refused.' } });
    expect((await api('PUT', '/api/exchanges/shop/alice.events', { type: 'topic' }, alice)).status).toBe(201);
    expect((await api('PUT', '/api/topic-permissions/shop/alice', { exchange: 'alice.events', write: '^eu\\.', read: '.*' })).status).toBe(201);
    expect((await api('GET', '/api/topic-permissions/shop/alice')).json).toEqual([{ user: 'alice', vhost: 'shop', exchange: 'alice.events', write: '^eu\\.', read: '.*' }]);
    expect(await api('PUT', '/api/topic-permissions/shop/alice', { exchange: 'alice.events', write: '.*' })).toMatchObject({ status: 400, json: { reason: '[{key_missing,read}]' } });
    expect((await api('POST', '/api/exchanges/shop/alice.events/publish', { routing_key: 'eu.orders', payload: 'x', payload_encoding: 'string', properties: {} }, alice)).status).toBe(200);
    expect(await api('POST', '/api/exchanges/shop/alice.events/publish', { routing_key: 'us.orders', payload: 'x', payload_encoding: 'string', properties: {} }, alice)).toMatchObject({ status: 401, json: { reason: 'Access refused.' } });
    expect((await api('DELETE', '/api/topic-permissions/shop/alice')).status).toBe(204);
    expect((await api('GET', '/api/users/alice/topic-permissions')).json).toEqual([]);
    expect((await api('DELETE', '/api/permissions/shop/alice')).status).toBe(204);
    expect((await api('DELETE', '/api/users/alice')).status).toBe(204);
    expect((await api('DELETE', '/api/users/alice')).status).toBe(404);
    expect((await api('DELETE', '/api/vhosts/shop')).status).toBe(204);
    expect((await api('GET', '/api/vhosts/shop')).status).toBe(404);
  });

  it('declares, reads, peeks, purges and deletes queues, and publishes through an exchange', async () => {
    expect((await api('PUT', '/api/queues/%2F/jobs', { durable: true, arguments: { 'x-max-length': 100 } })).status).toBe(201);
    expect((await api('PUT', '/api/exchanges/%2F/work', { type: 'direct', durable: true })).status).toBe(201);
    const bound = await api('POST', '/api/bindings/%2F/e/work/q/jobs', { routing_key: 'k' });
    expect(bound.status).toBe(201);
    expect(bound.headers.get('location')).toBe('/api/bindings/%2F/e/work/q/jobs/k');
    const conn = await amqp.connect(node.url);
    try {
      const ch = await conn.createConfirmChannel();
      ch.publish('work', 'k', Buffer.from('over amqp'), { persistent: true });
      await ch.waitForConfirms();
      const pub = await api('POST', '/api/exchanges/%2F/work/publish', { routing_key: 'k', payload: 'over http', payload_encoding: 'string', properties: { headers: { a: 1 } } });
      expect(pub).toMatchObject({ status: 200, json: { routed: true } });
      expect((await api('POST', '/api/exchanges/%2F/work/publish', { routing_key: 'nope', payload: 'x', payload_encoding: 'string', properties: {} })).json).toEqual({ routed: false });

      const q = await api('GET', '/api/queues/%2F/jobs');
      expect(q.json).toMatchObject({
        name: 'jobs', vhost: '/', durable: true, messages: 2, messages_ready: 2, leader: 'n1', members: ['n1'], replicas: ['n1'],
        arguments: { 'x-max-length': 100 }, bindings: [{ source: 'work', routing_key: 'k', destination: 'jobs' }],
      });
      expect((q.json as { commit_index: number }).commit_index).toBeGreaterThan(0);
      const peek = await api('POST', '/api/queues/%2F/jobs/get', { count: 5, ackmode: 'ack_requeue_true', encoding: 'auto' });
      expect(peek.json).toMatchObject([
        { payload: 'over amqp', payload_encoding: 'string', routing_key: 'k', exchange: 'work', properties: { delivery_mode: 2 } },
        { payload: 'over http', properties: { headers: { a: 1 } } },
      ]);
      // Requeued: still there, and a consumer gets them redelivered.
      expect((await ch.checkQueue('jobs')).messageCount).toBe(2);
      expect(await api('POST', '/api/queues/%2F/jobs/get', { count: 1, ackmode: 'bogus', encoding: 'auto' })).toMatchObject({ status: 400 });

      const listed = await api('GET', '/api/queues?page=1&page_size=1&name=JOB');
      expect(listed.json).toMatchObject({ filtered_count: 1, item_count: 1, page: 1, page_count: 1, page_size: 1, items: [{ name: 'jobs' }] });
      expect(await api('GET', '/api/queues?page=1&page_size=501')).toMatchObject({ status: 400, json: { error: 'invalid_pagination_parameters' } });
      expect((await api('GET', '/api/queues?columns=name,messages')).json).toContainEqual({ name: 'jobs', messages: 2 });

      expect((await api('DELETE', '/api/queues/%2F/jobs/contents')).status).toBe(204);
      expect((await ch.checkQueue('jobs')).messageCount).toBe(0);
      expect((await api('DELETE', '/api/bindings/%2F/e/work/q/jobs/k')).status).toBe(204);
      expect((await api('GET', '/api/bindings/%2F/e/work/q/jobs')).json).toEqual([]);
      expect((await api('DELETE', '/api/queues/%2F/jobs')).status).toBe(204);
      expect((await api('GET', '/api/queues/%2F/jobs')).status).toBe(404);
      expect((await api('DELETE', '/api/exchanges/%2F/work')).status).toBe(204);
    } finally {
      await conn.close().catch(() => undefined);
    }
  });

  it('lists connections, channels and consumers and closes a connection with 320', async () => {
    const conn = await amqp.connect(node.url, { clientProperties: { connection_name: 'worker-1' } });
    const ch = await conn.createChannel();
    await ch.assertQueue('tasks', { durable: true });
    await ch.prefetch(7);
    await ch.consume('tasks', () => undefined, { consumerTag: 'c-1' });
    const closed = new Promise<string>((resolve) => conn.on('close', (e?: Error) => resolve(e?.message ?? 'no error')));
    const conns = (await api('GET', '/api/connections')).json as Array<Record<string, unknown>>;
    expect(conns).toHaveLength(1);
    expect(conns[0]).toMatchObject({ user: 'guest', vhost: '/', node: 'n1', channels: 1, protocol: 'AMQP 0-9-1', user_provided_name: 'worker-1', peer_host: '127.0.0.1' });
    const name = conns[0]!['name'] as string;
    expect(name).toMatch(/^127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$/);
    expect((await api('GET', '/api/channels')).json).toMatchObject([{ name: `${name} (1)`, number: 1, consumer_count: 1, prefetch_count: 7 }]);
    expect((await api('GET', '/api/consumers')).json).toMatchObject([{ consumer_tag: 'c-1', queue: { name: 'tasks', vhost: '/' }, ack_required: true, channel_details: { connection_name: name } }]);
    // The queue's replicas count the consumer once its registration is applied.
    for (let i = 0; i < 50 && ((await api('GET', '/api/queues/%2F/tasks')).json as { consumers: number }).consumers !== 1; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await api('GET', '/api/queues/%2F/tasks')).json).toMatchObject({ consumers: 1 });
    expect((await api('DELETE', `/api/connections/${encodeURIComponent(name)}`, undefined, undefined, { 'x-reason': 'maintenance' })).status).toBe(204);
    expect(await closed).toContain('320 (CONNECTION-FORCED) with message "CONNECTION_FORCED - maintenance"');
    expect((await api('DELETE', `/api/connections/${encodeURIComponent(name)}`)).status).toBe(404);
  });

  it('answers health checks, nodes and the aliveness test', async () => {
    expect(await api('GET', '/api/health/checks/alarms')).toEqual(expect.objectContaining({ status: 200, json: { status: 'ok' } }));
    expect((await api('GET', '/api/health/checks/node-is-quorum-critical')).json).toEqual({ status: 'ok', reason: 'single node cluster' });
    expect((await api('GET', '/api/aliveness-test/%2F')).json).toEqual({ status: 'ok' });
    expect((await api('GET', '/api/aliveness-test/nowhere')).status).toBe(404);
    expect((await api('GET', '/api/nodes')).json).toMatchObject([{ name: 'n1', running: true, type: 'disc', mem_alarm: false }]);
  });

  it('imports RabbitMQ definitions (hashes log in), exports them, and a second plan is empty', async () => {
    const defs: Definitions = {
      rabbit_version: '3.10.8', rabbitmq_version: '3.10.8', product_name: 'RabbitMQ', product_version: '3.10.8',
      // RabbitMQ's own test vector: the salted SHA-256 hash of 'test12'.
      users: [
        { name: 'guest', password_hash: '9/1i+jKFRpbTRV1PtRnzFFYibT3cEpP92JeZ8YKGtflf4e/u', hashing_algorithm: 'rabbit_password_hashing_sha256', tags: ['administrator'], limits: {} },
        { name: 'carol', password_hash: 'kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR', hashing_algorithm: 'rabbit_password_hashing_sha256', tags: 'monitoring', limits: {} },
      ],
      vhosts: [{ name: '/', limits: [], metadata: { description: 'Default virtual host', tags: [] } }, { name: 'billing', limits: [], metadata: { description: '', tags: [] } }],
      permissions: [
        { user: 'guest', vhost: '/', configure: '.*', write: '.*', read: '.*' },
        { user: 'carol', vhost: 'billing', configure: '.*', write: '.*', read: '.*' },
      ],
      topic_permissions: [], parameters: [],
      global_parameters: [{ name: 'cluster_name', value: 'rabbit@host' }],
      policies: [{ vhost: 'billing', name: 'cap', pattern: '^inv', 'apply-to': 'queues', definition: { 'max-length': 10 }, priority: 1 }],
      queues: [{ name: 'invoices', vhost: 'billing', durable: true, auto_delete: false, arguments: { 'x-queue-type': 'quorum' }, type: 'quorum' }],
      exchanges: [{ name: 'billing.events', vhost: 'billing', type: 'topic', durable: true, auto_delete: false, internal: false, arguments: {} }],
      bindings: [{ source: 'billing.events', vhost: 'billing', destination: 'invoices', destination_type: 'queue', routing_key: 'invoice.#', arguments: {} }],
    };
    const bad = await api('POST', '/api/definitions', { ...defs, queues: [{ name: 'x', vhost: 'nowhere', durable: 'yes' }] });
    expect(bad.status).toBe(400);
    expect((bad.json as { reason: string }).reason).toContain("queue 'x' in vhost 'nowhere': 'durable' must be true or false");
    expect((await api('GET', '/api/vhosts/billing')).status).toBe(404); // nothing applied
    expect(await api('POST', '/api/definitions', '{oops')).toMatchObject({ status: 400, json: { error: 'bad_request' } });

    expect((await api('POST', '/api/definitions', defs)).status).toBe(204);
    const carol = await amqp.connect(`amqp://carol:test12@127.0.0.1:${node.broker.port}/billing`);
    const ch = await carol.createConfirmChannel();
    ch.publish('billing.events', 'invoice.new', Buffer.from('i1'), { persistent: true });
    await ch.waitForConfirms();
    expect((await ch.checkQueue('invoices')).messageCount).toBe(1);
    await carol.close();

    const exported = (await api('GET', '/api/definitions')).json as Definitions;
    expect(exported['queues']).toContainEqual({ name: 'invoices', vhost: 'billing', durable: true, auto_delete: false, arguments: { 'x-queue-type': 'quorum' }, type: 'quorum' });
    expect(exported['exchanges']).toEqual([{ name: 'billing.events', vhost: 'billing', type: 'topic', durable: true, auto_delete: false, internal: false, arguments: {} }]);
    expect(exported['policies']).toEqual([{ vhost: 'billing', name: 'cap', pattern: '^inv', 'apply-to': 'queues', definition: { 'max-length': 10 }, priority: 1 }]);
    expect((exported['users'] as Array<{ name: string; password_hash: string }>).find((u) => u.name === 'carol')!.password_hash).toBe('kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR');
    const connection = { connectionId: 't', nodeId: nodeId('n1') };
    const state = node.broker.context.metadata.state;
    expect(planDefinitions(state, defs, { mode: 'merge', connection }).steps).toEqual([]);
    const again = planDefinitions(state, exported, { mode: 'exact', connection });
    expect([again.steps, again.errors]).toEqual([[], []]);
  });
});
