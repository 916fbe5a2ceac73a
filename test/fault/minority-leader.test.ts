// A queue's leader cut off from both followers (every cluster link of its node stalled by the fault
// suite's proxies) with its publisher still connected to it: nothing it is sent after the cut is
// confirmed while the cut lasts, even once the majority has elected a leader of its own and
// confirms there; after the heal every confirmed message, from either side, is in the queue.
// A leader that confirmed after its own fsync, or counted a stale ack, would confirm here.

import type amqp from 'amqplib';
import amqplib from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { ClusterHarness } from '../../cluster/harness.js';
import { callNode } from '../../src/cluster/control-client.js';
import { CtlMethod } from '../../src/cluster/control-service.js';
import type { QueueListing } from '../../src/cluster/queue-listing.js';
import { SeededRandom } from '../../src/lib/random.js';
import { eventually } from '../cli/cluster-nodes.js';

const queue = 'cut-off';
let h: ClusterHarness | undefined;
const conns: amqp.ChannelModel[] = [];
afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await h?.close();
});

async function leaderOf(via: string): Promise<string | null> {
  const bytes = await callNode({ address: h!.clusterAddress(via), secret: h!.secret, timeoutMs: 3_000 }, CtlMethod.listQueues, new Uint8Array(0));
  const rows = JSON.parse(new TextDecoder().decode(bytes)) as QueueListing[];
  return rows.find((q) => q.name === queue)?.leader ?? null;
}

async function confirmChannel(node: string): Promise<amqp.ConfirmChannel> {
  const c = await amqplib.connect(h!.amqpUrl(node));
  c.on('error', () => undefined);
  conns.push(c);
  const ch = await c.createConfirmChannel();
  ch.on('error', () => undefined);
  return ch;
}

type Outcome = { body: string; outcome: 'pending' | 'ack' | 'nack'; atMs: number };

/** Publishes each body with its own confirm callback; the outcomes fill in as they come. */
function publishTracked(ch: amqp.ConfirmChannel, bodies: readonly string[]): Outcome[] {
  return bodies.map((body) => {
    const o: Outcome = { body, outcome: 'pending', atMs: 0 };
    ch.sendToQueue(queue, Buffer.from(body), { persistent: true }, (err) => {
      o.outcome = err === null || err === undefined ? 'ack' : 'nack';
      o.atMs = Date.now();
    });
    return o;
  });
}

describe('durability: a leader cut off with a minority', () => {
  it('never confirms what it is sent while cut off, though the majority confirms meanwhile; after the heal every confirm is in the queue', async () => {
    const rng = new SeededRandom(19);
    h = await ClusterHarness.start({ nodes: 3, random: () => rng.next() });
    const setup = await confirmChannel('n1');
    await setup.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    let leader: string | null = null;
    await eventually('a leader of the queue', async () => (leader = await leaderOf('n1')) !== null);
    const cutOff = leader!;
    const others = h.nodes.map((n) => n.id).filter((id) => id !== cutOff);

    // The publisher on the leader's own node confirms before the cut.
    const pub = await confirmChannel(cutOff);
    const before = Array.from({ length: 20 }, (_, i) => `before-${i}`);
    for (const b of before) pub.sendToQueue(queue, Buffer.from(b), { persistent: true });
    await pub.waitForConfirms();

    h.partition([cutOff], others);
    const cutAtMs = Date.now();
    const during = publishTracked(pub, Array.from({ length: 50 }, (_, i) => `during-${i}`));

    // The majority elects a leader of its own and confirms a publisher of its own.
    await eventually('a new leader on the majority side', async () => {
      const l = await leaderOf(others[0]!);
      return l !== null && l !== cutOff;
    }, 30_000);
    const majorityPub = await confirmChannel(others[0]!);
    const majority = Array.from({ length: 10 }, (_, i) => `majority-${i}`);
    for (const b of majority) majorityPub.sendToQueue(queue, Buffer.from(b), { persistent: true });
    await majorityPub.waitForConfirms();
    // Held a while longer, and at least 8 s in all: past the old leader's check-quorum and its
    // node's forwarding attempts, so a late confirm would have come.
    const holdUntil = Math.max(Date.now() + 2_000, cutAtMs + 8_000);
    await new Promise((r) => setTimeout(r, holdUntil - Date.now()));
    const healAtMs = Date.now();
    expect(during.filter((o) => o.outcome === 'ack' && o.atMs < healAtMs).map((o) => o.body)).toEqual([]);

    h.heal();
    // Each of the cut-off publisher's messages is confirmed or refused in the end (a retry through
    // the new leader may confirm it now, which is fine: it is then on a majority).
    await eventually('every publish of the cut-off side answered', () => Promise.resolve(during.every((o) => o.outcome !== 'pending')), 60_000);
    const confirmed = [...before, ...majority, ...during.filter((o) => o.outcome === 'ack').map((o) => o.body)];

    const subConn = await amqplib.connect(h.amqpUrl(others[1]!));
    conns.push(subConn);
    const sub = await subConn.createChannel();
    const got = new Set<string>();
    await sub.consume(queue, (m) => {
      if (m === null) return;
      got.add(m.content.toString());
      sub.ack(m);
    });
    await eventually('every confirmed message consumed', () => Promise.resolve(confirmed.every((b) => got.has(b))), 30_000);
    // Nothing arrives that was never published.
    const published = new Set([...before, ...majority, ...during.map((o) => o.body)]);
    expect([...got].filter((b) => !published.has(b))).toEqual([]);
  }, 180_000);
});
