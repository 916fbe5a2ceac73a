// A non-replicated queue on its home node, driven as the mesh drives it for channels of other
// nodes: their deliveries and cancels go to their node, a retried call does not register or store
// twice, and the holders of a node that restarted or went away are downed (messages return).

import { describe, expect, it } from 'vitest';
import { HomeQueue } from '../../src/broker/home-queue.js';
import { LocalQueue } from '../../src/broker/local-queue.js';
import type { Delivery, StoredMessage } from '../../src/broker/queue-backend.js';
import type { HostedCaller } from '../../src/cluster/queue-service.js';
import { nodeId } from '../../src/lib/ids.js';
import { plainFieldValues } from '../../src/queue/dead-letter.js';
import { defaultQueueConfig } from '../../src/queue/index.js';

function setup() {
  const queue = new LocalQueue({
    name: 'replies', config: defaultQueueConfig, clock: { nowMs: () => 1_000 }, deadLetterExchange: null, deadLetterRoutingKey: null,
    onDeadLetter: () => undefined, fieldValues: plainFieldValues,
  });
  let lost = 0;
  const home = new HomeQueue(queue, () => lost++);
  const got = new Map<string, Delivery[]>();
  const cancelled: string[] = [];
  const caller = (node: string, incarnation: string): HostedCaller => ({
    node: nodeId(node), incarnation,
    consumer: (channel, tag) => ({
      sink: (d) => { got.set(`${channel} ${tag}`, [...(got.get(`${channel} ${tag}`) ?? []), d]); },
      cancelled: (reason) => cancelled.push(`${channel} ${tag} ${reason}`),
    }),
  });
  return { queue, home, got, cancelled, caller, lost: () => lost };
}

const message = (body: string): StoredMessage => ({ exchange: '', routingKey: 'replies', properties: {}, body: Buffer.from(body) });
const register = (channel: string, tag: string) => ({
  type: 'register' as const, owner: { node: channel.slice(0, 2), connection: 'c1', channel }, tag, creditMode: 'auto' as const, prefetch: 0, priority: 0, noAck: false,
});

describe('a queue served from its home node', () => {
  it('delivers to a consumer of another node and stores a retried enqueue once', async () => {
    const { home, got, caller } = setup();
    const n2 = caller('n2', 'life-1');
    await home.run(register('n2/c1/1', 'far'), n2);
    await home.run(register('n2/c1/1', 'far'), n2); // a retry whose first answer was lost
    const dedup = { origin: 'n3-publisher', seq: 1, floor: 1 };
    for (let i = 0; i < 2; i++) expect(await home.run({ type: 'enqueue', priority: 0, ttlMs: null, message: message('r1'), dedup }, caller('n3', 'x'))).toEqual({ kind: 'enqueue', outcome: 'ok' });
    expect(got.get('n2/c1/1 far')?.map((d) => d.message.body.toString())).toEqual(['r1']);
    expect(home.stats()).toMatchObject({ messagesUnacked: 1, consumers: 1 });
    expect([...home.holderNodes()]).toEqual(['n2']);
  });

  it('downs the holders of a node that restarted: its unacked messages go to the next consumer', async () => {
    const { queue, home, got, caller, lost } = setup();
    await home.run(register('n2/c1/1', 'old'), caller('n2', 'life-1'));
    await home.run({ type: 'get', owner: { node: 'n3', connection: 'c9', channel: 'n3/c9/1' }, noAck: false }, caller('n3', 'x'));
    await queue.enqueue(message('a'));
    await queue.enqueue(message('b'));
    const here: string[] = [];
    await queue.consume({ owner: { node: 'n1', connection: 'c5', channel: 'n1/c5/1' }, consumerTag: 'near', noAck: false, creditMode: 'auto', prefetch: 0, priority: 0 }, (d) => here.push(d.message.body.toString()));
    expect(got.get('n2/c1/1 old')?.length).toBe(2);
    // n2 came back as life-2: only life-1's holders go.
    expect(await home.downStale('n2', 'life-2')).toEqual([{ holderNode: 'n2#life-1', channel: 'n2/c1/1', tag: 'old' }]);
    expect(here).toEqual(['a', 'b']);
    expect(lost()).toBe(1);
    expect([...home.holderNodes()]).toEqual(['n3']);
    expect(await home.downStale('n3', 'x')).toEqual([]);
  });

  it('tells consumers of other nodes when the queue is deleted, and forgets a channel that went down', async () => {
    const { queue, home, cancelled, caller } = setup();
    const n2 = caller('n2', 'life-1');
    await home.run(register('n2/c1/1', 'a'), n2);
    await home.run(register('n2/c1/2', 'b'), n2);
    await home.run({ type: 'down', scope: 'channel', id: 'n2/c1/2' }, n2);
    expect(home.stats().consumers).toBe(1);
    await queue.delete();
    expect(cancelled).toEqual(['n2/c1/1 a deleted']);
  });
});
