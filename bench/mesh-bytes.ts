// Bytes mesh routing adds per message: three in-process nodes (group host, rpc, metadata over three
// voters, broker); 1 KiB persistent messages published on n1 to a queue led by n3 and consumed with
// acks on n2, so every publish, delivery and ack crosses nodes. Prints rpc payload bytes per message
// (requests, answers, deliveries, envelopes included) beside the Raft traffic of the same run.
//
//   npx tsx bench/mesh-bytes.ts [--messages 5000]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { hashPassword } from '../src/broker/auth.js';
import { defaultBrokerConfig } from '../src/broker/config.js';
import { startBroker, type BrokerServer } from '../src/broker/server.js';
import { GroupHost } from '../src/cluster/group-host.js';
import { ReplicatedMetadataClient } from '../src/cluster/metadata-group.js';
import { ClusterRpc } from '../src/cluster/rpc.js';
import { nodeId } from '../src/lib/ids.js';
import { silentLogger } from '../src/lib/log.js';

const i = process.argv.indexOf('--messages');
const messages = i >= 0 ? Number(process.argv[i + 1]) : 5000;
const root = mkdtempSync(join(tmpdir(), 'espresso-mesh-bytes-'));
const ids = ['n1', 'n2', 'n3'].map(nodeId);
const hosts = await Promise.all(ids.map((id) => GroupHost.start({ nodeId: id, dataDir: join(root, id), listen: { host: '127.0.0.1', port: 0 }, secret: 'b' })));
for (const a of hosts) for (const b of hosts) if (a !== b) a.addPeer(b.nodeId, `127.0.0.1:${b.port}`);
const rpcs = hosts.map((h) => new ClusterRpc(h.transport, silentLogger));
const metas = await Promise.all(hosts.map((h, k) => ReplicatedMetadataClient.start({
  groupHost: h, members: ids, rpc: rpcs[k]!, defaultUser: { name: 'guest', passwordHash: hashPassword('guest'), tags: ['administrator'] },
  self: { id: h.nodeId, clusterAddress: `127.0.0.1:${h.port}`, amqpAddress: '', version: 'bench' },
})));
const brokers: BrokerServer[] = [];
for (let k = 0; k < 3; k++) {
  brokers.push(await startBroker({ ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0 }, {
    logger: silentLogger, clock: { nowMs: () => Date.now() }, cluster: { groupHost: hosts[k]!, metadata: metas[k]!, rpc: rpcs[k]! },
  }));
}
const pubConn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${brokers[0]!.port}`);
const subConn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${brokers[1]!.port}`);
const pub = await pubConn.createConfirmChannel();
// Preferred leaders go n1, n2, n3 in declare order: the third queue is led by n3.
for (const q of ['x1', 'x2', 'target']) await pub.assertQueue(q, { durable: true });
await new Promise((r) => setTimeout(r, 1000));
const sub = await subConn.createChannel();
await sub.prefetch(256);
let got = 0;
await sub.consume('target', (m) => {
  if (m === null) return;
  got++;
  sub.ack(m);
});
const rpcBefore = rpcs.map((r) => r.counters.bytesSent);
const raftBefore = hosts.map((h) => [...h.transport.stats().values()].reduce((s, p) => s + p.bytesSent, 0));
const body = Buffer.alloc(1024, 97);
for (let k = 0; k < messages; k += 256) {
  for (let j = k; j < Math.min(messages, k + 256); j++) pub.sendToQueue('target', body, { persistent: true });
  await pub.waitForConfirms();
}
while (got < messages) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 500));
const rpcBytes = rpcs.reduce((s, r, k) => s + r.counters.bytesSent - rpcBefore[k]!, 0);
const allBytes = hosts.reduce((s, h, k) => s + [...h.transport.stats().values()].reduce((t, p) => t + p.bytesSent, 0) - raftBefore[k]!, 0);
console.log(`${messages} x 1 KiB, publish on n1, leader n3, consume on n2: rpc ${(rpcBytes / messages).toFixed(0)} B/msg ` +
  `(${((rpcBytes / messages) - 2 * 1024).toFixed(0)} B/msg beyond the body carried twice: forward + delivery), ` +
  `all transport frames ${(allBytes / messages).toFixed(0)} B/msg (Raft to two followers included)`);
await pubConn.close();
await subConn.close();
for (const b of brokers) await b.close();
for (const r of rpcs) r.close();
for (const m of metas) await m.close();
for (const h of hosts) await h.close();
rmSync(root, { recursive: true, force: true });
