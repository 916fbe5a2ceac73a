// Metadata on 3 nodes: declare latency (p50/p99) on the meta leader's node and on followers (whose
// declares are forwarded), the bytes a forwarded declare adds, and the time until the other nodes
// see a kill -9'd node dead. `npx tsx bench/metadata-declare.ts [--declares N]`; starts its own
// 3-node cluster of server processes on free loopback ports and stops it on exit.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { encodeJson } from '../src/cluster/metadata-entries.js';
import { encodeEnvelope } from '../src/cluster/rpc.js';
import { nodeId } from '../src/lib/ids.js';
import { applyMetadata, createMetadataState, serializableCommand, type MetadataCommand } from '../src/model/index.js';
import { amqpUrl, eventually, freePorts, killAll, startNode, statusOf, type NodeProc } from '../test/cli/cluster-nodes.js';

const declares = Number(process.argv[process.argv.indexOf('--declares') + 1] ?? 0) || 500;
const secret = 'bench-secret';

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

/** Sequential durable exchange declares on one node: each one a committed metadata entry. */
async function declareLatencies(n: NodeProc, prefix: string): Promise<number[]> {
  const conn = await amqp.connect(amqpUrl(n));
  const ch = await conn.createChannel();
  const ms: number[] = [];
  for (let i = 0; i < declares; i++) {
    const t = process.hrtime.bigint();
    await ch.assertExchange(`${prefix}-${i}`, 'direct', { durable: true });
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  await conn.close();
  return ms.sort((a, b) => a - b);
}

/** The request and answer envelopes of one forwarded exchange.declare, as meta.apply sends them. */
function forwardedBytes(): { request: number; answer: number } {
  const c: MetadataCommand = {
    kind: 'declareExchange', vhost: '/', name: 'bench-x-123', type: 'direct', passive: false, durable: true,
    autoDelete: false, internal: false, arguments: {}, user: 'guest',
  };
  const state = createMetadataState({ users: [{ name: 'guest', passwordHash: '', tags: [] }] });
  applyMetadata(state, { kind: 'setPermissions', user: 'guest', vhost: '/', configure: '.*', write: '.*', read: '.*' });
  const r = applyMetadata(state, c);
  const request = encodeEnvelope({ kind: 1, id: 123_456, method: 'meta.apply', payload: encodeJson({ c: serializableCommand(c) }), errorCode: '', errorMessage: '', errorDetails: '' });
  const answer = encodeEnvelope({ kind: 2, id: 123_456, method: '', payload: encodeJson({ i: 12_345, r }), errorCode: '', errorMessage: '', errorDetails: '' });
  return { request: request.length, answer: answer.length };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'espresso-meta-bench-'));
  try {
    const ports = await freePorts(6);
    const names = ['n1', 'n2', 'n3'];
    const seeds = names.map((n, i) => `${n}@127.0.0.1:${ports[3 + i]!}`).join(',');
    const nodes = names.map((name, i) => startNode({ name, amqpPort: ports[i]!, clusterPort: ports[3 + i]!, dataDir: join(tmp, name), secret, seeds }));
    await Promise.all(nodes.map((n) => n.ready));
    await eventually('a leader', async () => (await statusOf(nodes[0]!)).metaLeader !== null);
    const leader = (await statusOf(nodes[0]!)).metaLeader!;
    const onLeader = nodes.find((n) => n.spec.name === leader)!;
    const follower = nodes.find((n) => n.spec.name !== leader)!;
    for (const [label, n] of [['leader', onLeader], ['follower (forwarded)', follower]] as const) {
      const ms = await declareLatencies(n, `${n.spec.name}-x`);
      process.stdout.write(`exchange.declare on the ${label} ${n.spec.name}: n=${ms.length} p50=${percentile(ms, 50).toFixed(2)} ms p99=${percentile(ms, 99).toFixed(2)} ms max=${ms[ms.length - 1]!.toFixed(2)} ms\n`);
    }
    const b = forwardedBytes();
    process.stdout.write(`forwarded exchange.declare: request ${b.request} B + answer ${b.answer} B rpc envelopes (+ a few bytes of transport item header each)\n`);
    const m = (await statusOf(follower)).metadata!;
    process.stdout.write(`measured on ${follower.spec.name}: ${m.forwarded} calls forwarded (declares and syncs), ${(m.forwardedBytes / Math.max(1, m.forwarded)).toFixed(0)} B payload per call (request + answer, before envelopes)\n`);
    const victim = nodes.find((n) => n.spec.name !== leader && n !== follower)!;
    victim.child.kill('SIGKILL');
    const started = Date.now();
    await victim.exited;
    const detectMs = await eventually('dead seen', async () => (await statusOf(follower)).nodes.find((x) => x.id === nodeId(victim.spec.name))?.status === 'dead', 30_000);
    process.stdout.write(`kill -9 of ${victim.spec.name}: ${follower.spec.name} reports it dead after ${Date.now() - started} ms (poll every ~100 ms; ${detectMs} ms after exit)\n`);
  } finally {
    killAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e: unknown) => {
  process.stderr.write(`${String((e as Error).stack ?? e)}\n`);
  killAll();
  process.exit(1);
});
