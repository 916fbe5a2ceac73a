// Request/reply across three real `espresso server` processes with amqplib clients: direct
// reply-to with the caller and its workers on different nodes, the classic exclusive reply queue
// and Celery's rpc:// transient auto-delete queue used from other nodes than their home, consumers
// told (basic.cancel) when their queue is deleted from anywhere, and the caller's node killed.

import type amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { callNode } from '../../src/cluster/control-client.js';
import { clusterAddress, clusterForFile, eventually } from '../cli/cluster-nodes.js';

const secret = 'rpc-process-secret';
const cluster = clusterForFile('espresso-rpc-proc-', secret);
const nodes = cluster.nodes;
/** Connection errors nobody asked for, as `label@node: error`. */
const trouble: string[] = [];

function connect(name: string, label = name): Promise<amqp.ChannelModel> {
  return cluster.connect(name, (e) => trouble.push(`${label}@${name}: ${e.message}`));
}

async function quietChannel(c: amqp.ChannelModel): Promise<amqp.Channel> {
  const ch = await c.createChannel();
  ch.on('error', () => undefined);
  return ch;
}

/** A node's direct reply-to counters, through its cluster port. */
async function replyCounters(name: string): Promise<{ delivered: number; forwarded: number; dropped: number; returned: number }> {
  const n = nodes.get(name)!;
  const bytes = await callNode({ address: clusterAddress(n), secret, timeoutMs: 5_000 }, 'ctl.direct-reply-to', new Uint8Array(0));
  return JSON.parse(new TextDecoder().decode(bytes)) as { delivered: number; forwarded: number; dropped: number; returned: number };
}

/** A worker on `name`: answers each request on `queue` to its reply-to, naming itself. */
async function worker(name: string, queue: string): Promise<amqp.Channel> {
  const ch = await (await connect(name, `worker ${name}`)).createChannel();
  await ch.prefetch(20);
  await ch.consume(queue, (m) => {
    if (m === null) return;
    ch.sendToQueue(m.properties.replyTo as string, Buffer.from(`${m.content.toString()} by ${name}`), { correlationId: m.properties.correlationId as string });
    ch.ack(m);
  });
  return ch;
}

/** Sends `n` requests to `queue` with `replyTo`; resolves with the replies by correlation id and the time they took. */
async function roundTrips(ch: amqp.Channel, queue: string, replyTo: string, replies: Map<string, string>, n: number): Promise<number> {
  const started = Date.now();
  for (let i = 0; i < n; i++) ch.sendToQueue(queue, Buffer.from(`req-${i}`), { replyTo, correlationId: `c-${i}` });
  await eventually(`${n} replies`, () => Promise.resolve(replies.size >= n), 30_000);
  return Date.now() - started;
}

function collectReplies(replies: Map<string, string>): (m: amqp.ConsumeMessage | null) => void {
  return (m) => {
    if (m !== null) replies.set(m.properties.correlationId as string, m.content.toString());
  };
}

describe('request/reply across three server processes', () => {
  it('direct reply-to: a caller on n1 gets all 200 replies from workers on n2 and n3', async () => {
    const caller = await (await connect('n1', 'caller')).createChannel();
    await caller.assertQueue('rpc.requests', { durable: true });
    await worker('n2', 'rpc.requests');
    await worker('n3', 'rpc.requests');
    const replies = new Map<string, string>();
    await caller.consume('amq.rabbitmq.reply-to', collectReplies(replies), { noAck: true });
    const ms = await roundTrips(caller, 'rpc.requests', 'amq.rabbitmq.reply-to', replies, 200);
    expect(replies.size).toBe(200);
    for (let i = 0; i < 200; i++) expect(replies.get(`c-${i}`)).toMatch(new RegExp(`^req-${i} by n[23]$`));
    const by = new Set([...replies.values()].map((r) => r.slice(-2)));
    expect(by).toEqual(new Set(['n2', 'n3']));
    expect((await replyCounters('n1')).delivered).toBe(200);
    expect(trouble).toEqual([]);
    console.log(`rpc-processes: 200 direct reply-to round trips, caller on n1, workers on n2 and n3: ${ms} ms`);
  }, 60_000);

  it('a reply to a channel that has gone is dropped and counted, a mandatory one comes back as basic.return, and the replier stays connected', async () => {
    const callerConn = await connect('n1', 'caller');
    const caller = await callerConn.createChannel();
    await caller.assertQueue('rpc.late', { durable: true });
    await caller.consume('amq.rabbitmq.reply-to', () => undefined, { noAck: true });
    caller.sendToQueue('rpc.late', Buffer.from('late'), { replyTo: 'amq.rabbitmq.reply-to' });
    const replier = await (await connect('n2', 'replier')).createConfirmChannel();
    let request: amqp.GetMessage | false = false;
    await eventually('the request on n2', async () => (request = await replier.get('rpc.late', { noAck: true })) !== false);
    const name = (request as unknown as amqp.GetMessage).properties.replyTo as string;
    expect(name.startsWith('amq.rabbitmq.reply-to.')).toBe(true);
    // While the caller listens, the name declares (from another node) as a queue with one consumer.
    const probe = await quietChannel(await connect('n3', 'probe'));
    expect(await probe.checkQueue(name)).toMatchObject({ queue: name, messageCount: 0, consumerCount: 1 });

    await caller.close();
    const before = await replyCounters('n1');
    replier.sendToQueue(name, Buffer.from('too late'));
    await replier.waitForConfirms();
    await eventually('the drop counted on the caller\'s node', async () => (await replyCounters('n1')).dropped === before.dropped + 1, 10_000);

    const returned: Array<{ code: number; key: string }> = [];
    replier.on('return', (m: amqp.Message) => returned.push({ code: (m.fields as unknown as { replyCode: number }).replyCode, key: m.fields.routingKey }));
    const garbage = 'amq.rabbitmq.reply-to.not-a-name';
    replier.publish('', name, Buffer.from('mandatory'), { mandatory: true });
    replier.publish('', garbage, Buffer.from('mandatory garbage'), { mandatory: true });
    replier.publish('', garbage, Buffer.from('garbage'));
    await replier.waitForConfirms();
    expect(returned).toEqual([{ code: 312, key: name }, { code: 312, key: garbage }]);
    expect((await replyCounters('n2')).returned).toBeGreaterThanOrEqual(2);
    await expect(probe.checkQueue(name)).rejects.toThrow(/404/);
    // The replier's connection and channel carry on.
    replier.sendToQueue('rpc.late', Buffer.from('still here'));
    await replier.waitForConfirms();
    expect(trouble).toEqual([]);
  }, 60_000);

  it('an exclusive server-named reply queue on n1 gets all 200 replies from a worker on n2', async () => {
    const caller = await (await connect('n1', 'classic caller')).createChannel();
    await caller.assertQueue('rpc.classic', { durable: true });
    const replyQueue = (await caller.assertQueue('', { exclusive: true })).queue;
    await worker('n2', 'rpc.classic');
    const replies = new Map<string, string>();
    await caller.consume(replyQueue, collectReplies(replies), { noAck: true });
    const ms = await roundTrips(caller, 'rpc.classic', replyQueue, replies, 200);
    for (let i = 0; i < 200; i++) expect(replies.get(`c-${i}`)).toBe(`req-${i} by n2`);
    expect(trouble).toEqual([]);
    console.log(`rpc-processes: 200 round trips with an exclusive reply queue on n1, worker on n2: ${ms} ms`);
  }, 60_000);

  it('a non-durable auto-delete queue declared on n1 is published to from n3, counted, got and consumed from n2, and auto-deleted', async () => {
    const owner = await (await connect('n1', 'results owner')).createChannel();
    await owner.assertQueue('celery.results', { durable: false, autoDelete: true, arguments: { 'x-expires': 86_400_000 } });
    const pub = await (await connect('n3', 'results publisher')).createConfirmChannel();
    const bodies = Array.from({ length: 50 }, (_, i) => `result-${i}`);
    for (const b of bodies) pub.sendToQueue('celery.results', Buffer.from(b), { deliveryMode: 1 });
    await pub.waitForConfirms();
    const sub = await (await connect('n2', 'results consumer')).createChannel();
    expect(await sub.checkQueue('celery.results')).toMatchObject({ messageCount: 50, consumerCount: 0 });
    // basic.get from another node, rejected back, then taken again.
    const first = await sub.get('celery.results');
    expect(first && first.content.toString()).toBe('result-0');
    sub.nack(first as amqp.GetMessage, false, true);
    const got: Array<{ body: string; redelivered: boolean }> = [];
    const { consumerTag } = await sub.consume('celery.results', (m) => {
      if (m === null) return;
      got.push({ body: m.content.toString(), redelivered: m.fields.redelivered });
      sub.ack(m);
    });
    await eventually('50 results on n2', () => Promise.resolve(got.length >= 50));
    expect(got.map((g) => g.body)).toEqual(bodies);
    expect(got[0]!.redelivered).toBe(true);
    expect(await pub.checkQueue('celery.results')).toMatchObject({ messageCount: 0, consumerCount: 1 });
    // The home node sees the remote consumer go and deletes the queue (auto-delete), for every node.
    // purge from another node than the home, counted there.
    await owner.assertQueue('n1.purgeable', { durable: false });
    for (let i = 0; i < 5; i++) pub.sendToQueue('n1.purgeable', Buffer.from(`p-${i}`));
    await pub.waitForConfirms();
    expect(await sub.purgeQueue('n1.purgeable')).toEqual({ messageCount: 5 });
    expect(await pub.checkQueue('n1.purgeable')).toMatchObject({ messageCount: 0 });
    await sub.cancel(consumerTag);
    const probe = await quietChannel(await connect('n3', 'results probe'));
    await eventually('the auto-deleted queue gone on n3', async () => {
      try {
        await probe.checkQueue('celery.results');
        return false;
      } catch (e) {
        expect(String(e)).toMatch(/404/);
        return true;
      }
    }, 10_000);
    expect(trouble).toEqual([]);
  }, 60_000);

  it('deleting a queue cancels its consumers on every node, replicated or not; their cancel then gets cancel-ok and the connection stays', async () => {
    // Declared on n1 (the home of the non-replicated ones), consumed on each node, deleted from n1 or another node.
    const cases = [['n1', 'n1'], ['n2', 'n1'], ['n3', 'n2'], ['n2', 'n3']] as const;
    for (const durable of [true, false]) {
      for (const [consumerNode, deleter] of cases) {
        const q = `doomed.${durable ? 'replicated' : 'local'}.${consumerNode}.by-${deleter}`;
        const declarer = await (await connect('n1', `declarer ${q}`)).createChannel();
        await declarer.assertQueue(q, { durable });
        const admin = await (await connect(deleter, `admin ${q}`)).createChannel();
        const conn = await connect(consumerNode, `consumer ${q}`);
        const ch = await conn.createChannel();
        let cancelled = false;
        const { consumerTag } = await ch.consume(q, (m) => {
          if (m === null) cancelled = true;
        });
        await admin.deleteQueue(q);
        await eventually(`basic.cancel to the consumer of ${q} on ${consumerNode}`, () => Promise.resolve(cancelled), 10_000);
        await ch.cancel(consumerTag); // cancel-ok: the channel forgot the consumer; no 541
        await ch.assertQueue(`${q}.after`, { durable: false, exclusive: true });
        await conn.close();
      }
    }
    // A channel deleting the queue it consumes itself, then closing: no warning in the node's log.
    const self = await (await connect('n2', 'self-deleter')).createChannel();
    await self.assertQueue('doomed.self', { durable: true });
    let cancelled = false;
    const { consumerTag } = await self.consume('doomed.self', (m) => { if (m === null) cancelled = true; });
    await self.deleteQueue('doomed.self');
    await eventually('basic.cancel on the deleting channel', () => Promise.resolve(cancelled));
    await self.cancel(consumerTag);
    await self.close();
    await new Promise((r) => setTimeout(r, 300));
    for (const n of nodes.values()) expect(n.output()).not.toMatch(/queue operation failed/);
    expect(trouble).toEqual([]);
  }, 90_000);

  it('kill -9 of the caller\'s node: workers\' replies are dropped without error, its transient queues are gone and their consumers elsewhere cancelled', async () => {
    const caller = await (await connect('n1', 'doomed caller')).createChannel();
    await caller.assertQueue('rpc.orphans', { durable: true });
    await caller.assertQueue('n1.transient', { durable: false });
    await caller.assertQueue('n1.exclusive', { exclusive: true });
    await caller.consume('amq.rabbitmq.reply-to', () => undefined, { noAck: true });
    for (let i = 0; i < 10; i++) caller.sendToQueue('rpc.orphans', Buffer.from(`orphan-${i}`), { replyTo: 'amq.rabbitmq.reply-to' });
    const replier = await (await connect('n2', 'orphan replier')).createConfirmChannel();
    const held: amqp.ConsumeMessage[] = [];
    await replier.consume('rpc.orphans', (m) => { if (m !== null) held.push(m); });
    const watcher = await (await connect('n3', 'transient watcher')).createChannel();
    let cancelled = false;
    await watcher.consume('n1.transient', (m) => { if (m === null) cancelled = true; });
    await eventually('10 requests held on n2', () => Promise.resolve(held.length === 10));

    const n1 = nodes.get('n1')!;
    n1.child.kill('SIGKILL');
    await n1.exited;
    const killedAt = Date.now();
    const dropped = (await replyCounters('n2')).dropped;
    for (const m of held) {
      replier.sendToQueue(m.properties.replyTo as string, Buffer.from('nobody listens'));
      replier.ack(m);
    }
    await replier.waitForConfirms();
    expect((await replyCounters('n2')).dropped).toBe(dropped + 10);

    const cancelMs = await eventually('basic.cancel to the consumer of n1\'s transient queue', () => Promise.resolve(cancelled), 20_000);
    const probes = await connect('n3', 'orphan probe');
    for (const q of ['n1.transient', 'n1.exclusive']) await expect((await quietChannel(probes)).checkQueue(q)).rejects.toThrow(/404/);
    replier.sendToQueue('rpc.orphans', Buffer.from('still here'));
    await replier.waitForConfirms();
    // Connections to n1 went with it: not the trouble this test looks for.
    expect(trouble.filter((t) => !t.includes('@n1:'))).toEqual([]);
    console.log(`rpc-processes: n1's transient queue gone and its consumer on n3 cancelled ${Date.now() - killedAt} ms after kill -9 (waited ${cancelMs} ms)`);
  }, 60_000);
});
