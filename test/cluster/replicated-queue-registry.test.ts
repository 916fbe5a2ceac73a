// The broker's queue registry with a group host: durable shared queues become Raft groups that keep
// their messages across a restart of the node; exclusive, auto-delete and transient ones stay local.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalMetadataClient } from '../../src/broker/metadata-client.js';
import { LocalQueue } from '../../src/broker/local-queue.js';
import { queueGroupId, QueueRegistry } from '../../src/broker/queue-registry.js';
import type { QueueBackend } from '../../src/broker/queue-backend.js';
import { GroupHost } from '../../src/cluster/group-host.js';
import { ReplicatedQueue } from '../../src/cluster/replicated-queue.js';
import { nodeId } from '../../src/lib/ids.js';
import { silentLogger } from '../../src/lib/log.js';
import { applyMetadata, type MetadataState, type QueueRecord } from '../../src/model/index.js';
import { freshState } from '../model/helpers.js';

const roots: string[] = [];
const hosts: GroupHost[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

const n1 = nodeId('n1');
const clock = { nowMs: () => Date.now() };

async function startHost(dataDir: string): Promise<GroupHost> {
  const h = await GroupHost.start({ nodeId: n1, dataDir, listen: { host: '127.0.0.1', port: 0 }, secret: 's' });
  hosts.push(h);
  return h;
}

function declare(state: MetadataState, name: string, opts: { durable: boolean; exclusive?: boolean; autoDelete?: boolean }): QueueRecord {
  const r = applyMetadata(state, {
    kind: 'declareQueue', vhost: '/', name, passive: false, durable: opts.durable, exclusive: opts.exclusive ?? false,
    autoDelete: opts.autoDelete ?? false, arguments: {}, connection: { connectionId: 'c1', nodeId: n1 },
  });
  expect(r.ok).toBe(true);
  return state.vhosts.get('/')!.queues.get(name)!.record;
}

function registry(state: MetadataState, host: GroupHost): QueueRegistry {
  return new QueueRegistry(new LocalMetadataClient(state), clock, silentLogger, () => () => undefined, host);
}

const owner = { node: 'n1', connection: 'n1/1', channel: 'n1/1/1' };
const publish = (q: QueueBackend, body: string) => q.enqueue({ exchange: '', routingKey: 'q', properties: {}, body: Buffer.from(body) });

describe('queue registry with a group host', () => {
  it('replicates durable shared queues only, and a restarted node finds their messages', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-rqr-'));
    roots.push(dir);
    const state = freshState();
    const durable = declare(state, 'jobs', { durable: true });
    const transient = declare(state, 'tmp', { durable: false });
    const exclusive = declare(state, 'mine', { durable: true, exclusive: true });
    const autoDelete = declare(state, 'auto', { durable: true, autoDelete: true });
    let host = await startHost(dir);
    let queues = registry(state, host);
    expect(queues.ensure(durable)).toBeInstanceOf(ReplicatedQueue);
    for (const r of [transient, exclusive, autoDelete]) expect(queues.ensure(r)).toBeInstanceOf(LocalQueue);
    const outcomes = await Promise.all(['a', 'b', 'c'].map((b) => publish(queues.ensure(durable), b)));
    expect(outcomes).toEqual(['ok', 'ok', 'ok']);
    await publish(queues.ensure(transient), 'gone');
    // Shutdown stops the replicated queue's edge without deleting it.
    queues.closeAll();
    hosts.splice(0);
    await host.close();

    host = await startHost(dir);
    queues = registry(state, host);
    const q = queues.ensure(durable);
    const got: string[] = [];
    await q.consume({ owner, consumerTag: 't', noAck: true, creditMode: 'auto', prefetch: 0, priority: 0 }, (d) => got.push(d.message.body.toString()));
    expect(got).toEqual(['a', 'b', 'c']);
    expect(queues.ensure(transient).stats().messagesReady).toBe(0);
  });

  it('a queue deleted through metadata loses its group on the node', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-rqr-'));
    roots.push(dir);
    const state = freshState();
    const record = declare(state, 'jobs', { durable: true });
    const host = await startHost(dir);
    const queues = registry(state, host);
    const q = queues.ensure(record);
    await publish(q, 'x');
    expect(host.status(queueGroupId('/', 'jobs'))).not.toBeNull();
    const deleted = new Promise<void>((resolve) => q.onEvent((e) => e.type === 'queueDeleted' && resolve()));
    expect(queues.dropDeleted([record])).toBe(1);
    await deleted;
    // removeGroup runs once the delete command is applied; wait for the promise chain to settle.
    for (let i = 0; i < 10 && host.status(queueGroupId('/', 'jobs')) !== null; i++) await Promise.resolve();
    expect(host.status(queueGroupId('/', 'jobs'))).toBeNull();
  });
});
