// A replicated queue told new settings (a policy changed) commits one config entry through its log:
// the entry's wire form, the queue's behaviour after it, nothing for unchanged settings, and the
// settings (dead-letter target included) after a restart that replays the log or a snapshot.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { wireFieldValues } from '../../src/broker/field-values.js';
import type { DeadLetteredMessage, StoredMessage } from '../../src/broker/queue-backend.js';
import { GroupHost } from '../../src/cluster/group-host.js';
import { ReplicatedQueue } from '../../src/cluster/replicated-queue.js';
import { decodeEntry, decodeLogEntry, encodeEntry, QueueOp, type ConfigCommand } from '../../src/cluster/replicated-queue-codec.js';
import { groupId, nodeId } from '../../src/lib/ids.js';
import { defaultQueueConfig, type QueueConfig } from '../../src/queue/index.js';

const roots: string[] = [];
const hosts: GroupHost[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

async function startHost(dataDir: string): Promise<GroupHost> {
  const h = await GroupHost.start({ nodeId: nodeId('n1'), dataDir, listen: { host: '127.0.0.1', port: 0 }, secret: 's' });
  hosts.push(h);
  return h;
}

async function stopHost(h: GroupHost): Promise<void> {
  hosts.splice(hosts.indexOf(h), 1);
  await h.close();
}

const group = groupId('q.%2F.pq');
let incarnations = 0;

function openQueue(host: GroupHost, deadLettered: DeadLetteredMessage[], snapshotEveryEntries?: number): ReplicatedQueue {
  return new ReplicatedQueue({
    name: 'pq', groupId: group, host, node: 'n1', incarnation: `i${++incarnations}`,
    config: defaultQueueConfig, clock: { nowMs: () => Date.now() }, deadLetterExchange: null, deadLetterRoutingKey: null,
    onDeadLetter: (d) => deadLettered.push(d), fieldValues: wireFieldValues,
    ...(snapshotEveryEntries !== undefined ? { snapshotEveryEntries } : {}),
  });
}

function message(i: number): StoredMessage {
  return { exchange: '', routingKey: 'pq', properties: { deliveryMode: 2 }, body: Buffer.from(`m${i}`) };
}

const capped: QueueConfig = { ...defaultQueueConfig, maxLength: 3 };

/**
 * Waits until `check` holds, bounded by time rather than by turns: each commit waits on a real
 * fdatasync, which on a loaded machine can outlast thousands of idle event-loop turns.
 */
async function settle(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
  if (!check()) throw new Error(`not reached: ${what}`);
}

describe('config entries of a replicated queue', () => {
  it('round-trip through the codec as op 16, and are never taken for a forwarded command', () => {
    const c: ConfigCommand = {
      type: 'config',
      config: { ...defaultQueueConfig, messageTtlMs: 1500, maxLength: 7, overflow: 'reject-publish-dlx', deadLetter: true, deliveryLimit: 4, maxPriority: 2 },
      deadLetterExchange: 'dlx', deadLetterRoutingKey: null, asOf: 42,
    };
    const data = encodeEntry(c, { timeMs: 5, proposer: 9, seq: 3 });
    expect(data[0]).toBe(QueueOp.config);
    expect(QueueOp.config).toBe(16);
    expect(decodeLogEntry(data)).toEqual({ header: { timeMs: 5, proposer: 9, seq: 3 }, command: c });
    expect(() => decodeEntry(data)).toThrow(/not forwarded/);
  });

  it('a new max-length drops the oldest messages at the entry; unchanged settings add nothing to the log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-pq-'));
    roots.push(dir);
    const host = await startHost(dir);
    const q = openQueue(host, []);
    await Promise.all(Array.from({ length: 6 }, (_, i) => q.enqueue(message(i))));
    q.reconfigure(capped, null, null, 10);
    await settle(() => q.stats().messagesReady === 3, 'capped at 3');
    const last = host.status(group)!.lastIndex;
    q.reconfigure(capped, null, null, 11); // the same again: nothing to commit
    // Computed by a node whose metadata lags behind the log's settings: no revert.
    q.reconfigure(defaultQueueConfig, null, null, 9);
    await q.enqueue(message(6));
    expect(host.status(group)!.lastIndex).toBe(last + 1);
    expect(q.settings.config.maxLength).toBe(3);
    const got = await q.get({ node: 'n1', connection: 'c', channel: 'c/1' }, true);
    expect(got?.message.body.toString()).toBe('m4');
  });

  it('keeps its settings and dead-letter target after a restart, replayed from the log or restored from a snapshot', async () => {
    for (const snapshotEveryEntries of [undefined, 4]) {
      const dir = mkdtempSync(join(tmpdir(), 'espresso-pq-'));
      roots.push(dir);
      let host = await startHost(dir);
      const before: DeadLetteredMessage[] = [];
      let q = openQueue(host, before, snapshotEveryEntries);
      await q.enqueue(message(0));
      q.reconfigure({ ...capped, overflow: 'drop-head' }, 'dead-x', 'dead-key', 7);
      await settle(() => q.settings.deadLetterExchange === 'dead-x', 'config applied');
      for (let i = 1; i <= 8; i++) await q.enqueue(message(i));
      expect(before.map((d) => [d.exchange, d.routingKeys, d.message.body.toString()])).toEqual(
        [0, 1, 2, 3, 4, 5].map((i) => ['dead-x', ['dead-key'], `m${i}`]));
      await stopHost(host);

      // Reopened with the declared settings (as the registry does): the log or snapshot decides.
      host = await startHost(dir);
      const after: DeadLetteredMessage[] = [];
      q = openQueue(host, after, snapshotEveryEntries);
      await q.enqueue(message(9)); // waits for the group to lead again, after its replay
      expect([q.settings.config.maxLength, q.settings.deadLetterExchange, q.settings.deadLetterRoutingKey]).toEqual([3, 'dead-x', 'dead-key']);
      // What it was as of is kept too: settings computed before index 7 do not revert it.
      q.reconfigure(defaultQueueConfig, null, null, 6);
      const last = host.status(group)!.lastIndex;
      await q.enqueue(message(10));
      expect(host.status(group)!.lastIndex).toBe(last + 1);
      expect(after.map((d) => [d.exchange, d.routingKeys, d.message.body.toString()])).toEqual([['dead-x', ['dead-key'], 'm6'], ['dead-x', ['dead-key'], 'm7']]);
      await q.delete();
      await stopHost(host);
    }
  });
});
