// Policies change running queues cluster-wide: three nodes in one process (group host, rpc, metadata
// group over three voters, AMQP broker and the ctl handlers each), policies set and cleared through
// a node's cluster port as `espresso ctl` does, queues used with amqplib from other nodes.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/broker/auth.js';
import { defaultBrokerConfig } from '../../src/broker/config.js';
import { LocalQueue } from '../../src/broker/local-queue.js';
import { queueGroupId } from '../../src/broker/queue-registry.js';
import { startBroker, type BrokerServer } from '../../src/broker/server.js';
import { withRemoteNode } from '../../src/cluster/control-client.js';
import { CtlMethod, serveControl, type PolicyChangeAnswer, type SetPolicyRequest } from '../../src/cluster/control-service.js';
import { GroupHost } from '../../src/cluster/group-host.js';
import { decodeJson, encodeJson } from '../../src/cluster/metadata-entries.js';
import { ReplicatedMetadataClient } from '../../src/cluster/metadata-group.js';
import { ClusterRpc } from '../../src/cluster/rpc.js';
import { isOperatingError, OperatingErrorCode } from '../../src/lib/errors.js';
import { nodeId, type NodeId } from '../../src/lib/ids.js';
import { silentLogger } from '../../src/lib/log.js';
import { SeededRandom } from '../../src/lib/random.js';
import type { PolicyRecord } from '../../src/model/index.js';
import { until } from '../broker/helpers.js';

interface Node {
  readonly id: NodeId;
  readonly host: GroupHost;
  readonly rpc: ClusterRpc;
  readonly metadata: ReplicatedMetadataClient;
  readonly broker: BrokerServer;
}

const secret = 'policy-test';
const ids = ['n1', 'n2', 'n3'].map(nodeId);
let root = '';
let nodes: Node[] = [];
const conns: amqp.ChannelModel[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'espresso-policies-'));
  const hosts = await Promise.all(ids.map((id, i) => GroupHost.start({
    nodeId: id, dataDir: join(root, id), listen: { host: '127.0.0.1', port: 0 }, secret, random: new SeededRandom(i + 11),
  })));
  for (const a of hosts) for (const b of hosts) if (a !== b) a.addPeer(b.nodeId, `127.0.0.1:${b.port}`);
  const rpcs = hosts.map((h) => new ClusterRpc(h.transport, silentLogger));
  const selves = hosts.map((h) => ({ id: h.nodeId, clusterAddress: `127.0.0.1:${h.port}`, amqpAddress: '', version: 'test' }));
  const metas = await Promise.all(hosts.map((h, i) => ReplicatedMetadataClient.start({
    groupHost: h, members: ids, rpc: rpcs[i]!, self: selves[i]!,
    defaultUser: { name: 'guest', passwordHash: hashPassword('guest'), tags: ['administrator'] },
  })));
  for (let i = 0; i < hosts.length; i++) {
    const host = hosts[i]!;
    serveControl(rpcs[i]!, { metadata: metas[i]!, groupHost: host, gossip: undefined, self: selves[i]! });
    const broker = await startBroker({ ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0 }, {
      logger: silentLogger, clock: { nowMs: () => Date.now() }, cluster: { groupHost: host, metadata: metas[i]!, rpc: rpcs[i]! },
    });
    nodes.push({ id: host.nodeId, host, rpc: rpcs[i]!, metadata: metas[i]!, broker });
  }
}, 30_000);

afterAll(async () => {
  for (const c of conns.splice(0)) await c.close().catch(() => undefined);
  for (const n of nodes) {
    await n.broker.close();
    n.rpc.close();
    await n.metadata.close();
    await n.host.close();
  }
  nodes = [];
  rmSync(root, { recursive: true, force: true });
}, 30_000);

async function connect(n: Node): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(`amqp://guest:guest@127.0.0.1:${n.broker.port}`);
  conns.push(c);
  return c;
}

/** One ctl call through the node's cluster port, as `espresso ctl --cluster-address` makes it. */
async function ctl<T>(n: Node, method: string, payload: unknown): Promise<T> {
  const answer = await withRemoteNode({ address: `127.0.0.1:${n.host.port}`, secret, nodeId: n.id, timeoutMs: 10_000 },
    (call) => call(method, encodeJson(payload)));
  return decodeJson<T>(answer);
}

function setPolicy(n: Node, name: string, pattern: string, definition: Record<string, unknown>, priority = 0): Promise<PolicyChangeAnswer> {
  const r: SetPolicyRequest = { vhost: '/', name, pattern, definition, priority, applyTo: 'queues' };
  return ctl<PolicyChangeAnswer>(n, CtlMethod.setPolicy, r);
}

function clearPolicy(n: Node, name: string): Promise<PolicyChangeAnswer> {
  return ctl<PolicyChangeAnswer>(n, CtlMethod.clearPolicy, { vhost: '/', name });
}

/** Each node's replica of the queue, as its applied log has it (max-length, message-ttl). */
function replicaSettings(queue: string): Array<[number | null, number | null] | undefined> {
  return nodes.map((n) => {
    const s = n.broker.context.queues.replica('/', queue)?.settings;
    return s === undefined ? undefined : [s.config.maxLength, s.config.messageTtlMs];
  });
}

async function messageCount(ch: amqp.Channel, queue: string): Promise<number> {
  return (await ch.checkQueue(queue)).messageCount;
}

/** Polls the queue's message count as a client on that channel's node sees it (bounded). */
async function countIs(ch: amqp.Channel, queue: string, n: number): Promise<void> {
  let last = -1;
  for (let i = 0; i < 200 && last !== n; i++) {
    last = await messageCount(ch, queue);
    if (last !== n) await new Promise((r) => setTimeout(r, 50));
  }
  expect(last).toBe(n);
}

async function publish(ch: amqp.ConfirmChannel, queue: string, bodies: readonly string[]): Promise<void> {
  for (const b of bodies) ch.sendToQueue(queue, Buffer.from(b), { persistent: true });
  await ch.waitForConfirms();
}

const range = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);

describe('policies change running queues on every node', () => {
  it('max-length set through n3 drops a durable queue declared on n1 to its newest 5, as a consumer on n2 sees; clearing it lifts the cap', async () => {
    const [n1, n2, n3] = nodes;
    const pub = await (await connect(n1!)).createConfirmChannel();
    await pub.assertQueue('capped', { durable: true });
    await publish(pub, 'capped', range(1, 10));
    const watch = await (await connect(n2!)).createChannel();
    expect(await messageCount(watch, 'capped')).toBe(10);

    const answer = await setPolicy(n3!, 'cap', '^capped$', { 'max-length': 5 });
    expect(answer.changedQueues).toEqual(['capped']);
    // One committed config entry: every replica runs with the cap, and the oldest five are gone.
    await until(() => replicaSettings('capped').every((s) => s?.[0] === 5), 10_000, 'max-length on every replica');
    await until(() => nodes.every((n) => n.broker.context.queues.replica('/', 'capped')?.stats().messagesReady === 5), 10_000, 'five left on every replica');
    await countIs(watch, 'capped', 5);
    const got: string[] = [];
    const sub = await (await connect(n2!)).createChannel();
    const { consumerTag } = await sub.consume('capped', (m) => {
      if (m !== null) got.push(m.content.toString());
    }, { noAck: true });
    await until(() => got.length === 5, 10_000, 'five deliveries on n2');
    expect(got).toEqual(range(6, 10));
    await sub.cancel(consumerTag);

    // Publishing beyond the cap keeps the newest.
    await publish(pub, 'capped', range(11, 18));
    await until(() => nodes.every((n) => n.broker.context.queues.replica('/', 'capped')?.stats().messagesReady === 5), 10_000, 'capped at five');

    await clearPolicy(n2!, 'cap');
    await until(() => replicaSettings('capped').every((s) => s?.[0] === null), 10_000, 'cap lifted on every replica');
    await publish(pub, 'capped', range(19, 25));
    // n2 answers from its replica, which may apply the last enqueues a moment after the confirms.
    await countIs(watch, 'capped', 12);
  });

  it('message-ttl from a policy expires messages published after it; a queue whose settings stay the same gets nothing', async () => {
    const [n1, n2] = nodes;
    const ch = await (await connect(n1!)).createConfirmChannel();
    await ch.assertQueue('short-lived', { durable: true });
    await ch.assertQueue('bystander', { durable: true });
    await publish(ch, 'short-lived', ['before']);
    await publish(ch, 'bystander', ['x']);
    // Highest commit index any replica of the queue knows.
    const commitOf = (q: string): number => Math.max(...nodes.map((n) => n.host.status(queueGroupId('/', q))?.commit ?? 0));
    const bystanderCommit = commitOf('bystander');

    const answer = await setPolicy(n2!, 'ttl', '^short', { 'message-ttl': 150 });
    expect(answer.changedQueues).toEqual(['short-lived']);
    await until(() => replicaSettings('short-lived').every((s) => s?.[1] === 150), 10_000, 'message-ttl on every replica');
    await publish(ch, 'short-lived', ['a', 'b', 'c']);
    // The one published before keeps no expiry (as in RabbitMQ), and expired messages go when they
    // reach the head: once it is taken, the three expire on the leader's timer.
    const watch = await (await connect(n2!)).createChannel();
    const m = await watch.get('short-lived', { noAck: true });
    expect(m !== false && m.content.toString()).toBe('before');
    await until(() => nodes.every((n) => n.broker.context.queues.replica('/', 'short-lived')?.stats().messagesReady === 0), 10_000, 'three expired');
    await countIs(watch, 'short-lived', 0);
    // A policy that matches no other queue leaves their logs alone.
    expect(commitOf('bystander')).toBe(bystanderCommit);
    await clearPolicy(n1!, 'ttl');
  });

  it('a local (non-durable) queue takes a policy at once, and the highest priority policy wins', async () => {
    const [n1, , n3] = nodes;
    const ch = await (await connect(n1!)).createConfirmChannel();
    await ch.assertQueue('scratch', { durable: false });
    await publish(ch, 'scratch', range(1, 10));
    await setPolicy(n3!, 'low', '^scratch$', { 'max-length': 8 }, 1);
    await setPolicy(n3!, 'high', '^scr', { 'max-length': 3 }, 5);
    const local = n1!.broker.context.queues.get('/', 'scratch');
    expect(local).toBeInstanceOf(LocalQueue);
    await until(() => (local as LocalQueue).settings.config.maxLength === 3, 10_000, 'the high policy on the local queue');
    expect(await messageCount(ch, 'scratch')).toBe(3);
    const m = await ch.get('scratch', { noAck: true });
    expect(m !== false && m.content.toString()).toBe('m8');
    await clearPolicy(n3!, 'high');
    await until(() => (local as LocalQueue).settings.config.maxLength === 8, 10_000, 'the low policy back');
    await clearPolicy(n3!, 'low');
    await until(() => (local as LocalQueue).settings.config.maxLength === null, 10_000, 'no cap');
  });

  it('lists policies from any node and refuses bad definitions naming the problem', async () => {
    const [n1, n2, n3] = nodes;
    await setPolicy(n1!, 'dl', '^orders', { 'dead-letter-exchange': 'dlx', 'delivery-limit': 3 });
    const listed = await ctl<PolicyRecord[]>(n3!, CtlMethod.listPolicies, {});
    expect(listed.map((p) => [p.name, p.pattern, p.definition])).toEqual([['dl', '^orders', { 'dead-letter-exchange': 'dlx', 'delivery-limit': 3 }]]);
    const refusal = async (p: Promise<unknown>): Promise<string> => {
      try {
        await p;
      } catch (e) {
        expect(isOperatingError(e, OperatingErrorCode.BadConfig)).toBe(true);
        return (e as Error).message;
      }
      throw new Error('not refused');
    };
    expect(await refusal(setPolicy(n2!, 'bad', '.*', { 'max-lenght': 5 }))).toContain("'max-lenght' is not a recognised policy setting");
    expect(await refusal(setPolicy(n2!, 'bad', '.*', { 'max-length': -1 }))).toContain("'max-length'");
    expect(await refusal(setPolicy(n2!, 'bad', '(', { 'max-length': 1 }))).toContain('invalid regular expression');
    expect(await refusal(clearPolicy(n2!, 'nope'))).toContain("no policy 'nope'");
    await clearPolicy(n2!, 'dl');
    expect(await ctl<PolicyRecord[]>(n1!, CtlMethod.listPolicies, { vhost: '/' })).toEqual([]);
  });
  it('a dead-letter target from a policy reaches a running replicated queue, and its new leader after a failover keeps it', async () => {
    const [n1, n2, n3] = nodes;
    const ch = await (await connect(n1!)).createConfirmChannel();
    await ch.assertQueue('orders', { durable: true });
    await ch.assertQueue('dead-orders', { durable: true });
    await ch.bindQueue('dead-orders', 'amq.direct', 'dead');
    await setPolicy(n2!, 'dlx', '^orders$', { 'dead-letter-exchange': 'amq.direct', 'dead-letter-routing-key': 'dead' });
    await until(() => nodes.every((n) => n.broker.context.queues.replica('/', 'orders')?.settings.deadLetterRoutingKey === 'dead'), 10_000, 'dead-letter target on every replica');
    const rejectOne = async (c: amqp.Channel, body: string): Promise<void> => {
      await publish(ch, 'orders', [body]);
      let m: amqp.GetMessage | false = false;
      for (let i = 0; i < 100 && m === false; i++) m = await c.get('orders');
      expect(m !== false && m.content.toString()).toBe(body);
      c.nack(m as amqp.GetMessage, false, false);
    };
    const deadOn = async (c: amqp.Channel, body: string): Promise<void> => {
      let m: amqp.GetMessage | false = false;
      for (let i = 0; i < 200 && m === false; i++) {
        m = await c.get('dead-orders', { noAck: true });
        if (m === false) await new Promise((r) => setTimeout(r, 25));
      }
      // Only amq.direct's 'dead' binding leads here: the policy's routing key was used.
      expect(m !== false && m.content.toString()).toBe(body);
    };
    const c3 = await (await connect(n3!)).createChannel();
    await rejectOne(c3, 'first');
    await deadOn(c3, 'first');

    // The queue's leader goes away: the next one has the target from the log, not from its start.
    const leader = nodes.find((n) => n.host.status(queueGroupId('/', 'orders'))?.role === 'leader')!;
    const others = nodes.filter((n) => n !== leader);
    await leader.broker.close();
    leader.rpc.close();
    await leader.metadata.close();
    await leader.host.close();
    nodes = others;
    for (const c of conns.splice(0)) await c.close().catch(() => undefined);
    await until(() => others.some((n) => n.host.status(queueGroupId('/', 'orders'))?.role === 'leader'), 15_000, 'a new leader');
    const [a, b] = others;
    const pubOn = await (await connect(a!)).createConfirmChannel();
    const getOn = await (await connect(b!)).createChannel();
    await publish(pubOn, 'orders', ['second']);
    let m: amqp.GetMessage | false = false;
    for (let i = 0; i < 200 && m === false; i++) {
      m = await getOn.get('orders');
      if (m === false) await new Promise((r) => setTimeout(r, 25));
    }
    expect(m !== false && m.content.toString()).toBe('second');
    getOn.nack(m as amqp.GetMessage, false, false);
    await deadOn(getOn, 'second');
  }, 40_000);
});
