// `npx tsx cluster/across-hosts.ts [--seconds 15] [--kills 3] [--rounds 3]` (root; after `npm run build`): what
// running across hosts costs, on the network-namespace test bed against the same on loopback.
// 1. Throughput: bench's 1kib-1p1c workload (persistent 1 KiB, confirms window 256, manual acks
//    prefetch 256; publisher on n1, consumer on n2) on a 3-node cluster on loopback, across hosts,
//    and across hosts with 1% packet loss on every link (iptables statistic, made by the kernel).
// 2. Failover: a publisher (confirms, 200 msg/s) on one node and a consumer on another, the queue's
//    leader on the third; kill -9 of the leader. Failover time = kill to a new leader named by
//    `ctl list-queues` (asked every 100 ms); confirm gap = the longest time without a confirm
//    around the kill. On loopback, across hosts, across hosts with 1% loss, and with tc netem delay
//    10 ms + 1% loss where the kernel has netem.
// --networks picks among: loopback, hosts, "hosts + 1% loss", "hosts + netem 10 ms + 1% loss" (where
// the kernel has netem), "loopback + proxies 10 ms each way" (the fault suite's TCP proxies delaying
// every link: a stream delay for kernels without netem). Prints Markdown tables for cluster/RESULTS.md.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { runScenario } from '../bench/run.js';
import { findScenario } from '../bench/scenarios.js';
import type { BenchArgs } from '../bench/args.js';
import { callNode } from '../src/cluster/control-client.js';
import { CtlMethod } from '../src/cluster/control-service.js';
import type { QueueListing } from '../src/cluster/queue-listing.js';
import { SeededRandom } from '../src/lib/random.js';
import { ClusterHarness } from './harness.js';
import { bedSupport } from './netns.js';

type Network = 'loopback' | 'hosts' | 'hosts + 1% loss' | 'hosts + netem 10 ms + 1% loss' | 'loopback + proxies 10 ms each way';
const allNetworks: readonly Network[] = ['loopback', 'hosts', 'hosts + 1% loss', 'hosts + netem 10 ms + 1% loss', 'loopback + proxies 10 ms each way'];

const root = new URL('../', import.meta.url).pathname;

function flag(argv: readonly string[], name: string, fallback: number): number {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function cluster(network: Network, seed: number): Promise<ClusterHarness> {
  const rng = new SeededRandom(seed);
  const h = await ClusterHarness.start({ nodes: 3, random: () => rng.next(), useDist: true, netns: network.startsWith('hosts') });
  // No netem here: a delay made by the fault suite's TCP proxies, on every link (stream delay, not packet delay).
  if (network === 'loopback + proxies 10 ms each way') {
    for (const a of h.nodes) for (const b of h.nodes) if (a !== b) h.setLinkFault(a.id, b.id, { stall: false, delayMs: 10, resetProbability: 0 });
  }
  const bed = h.bed;
  if (bed !== undefined && network === 'hosts + 1% loss') for (const host of bed.hosts) bed.loss(host.name, 1);
  if (bed !== undefined && network === 'hosts + netem 10 ms + 1% loss') for (const host of bed.hosts) bed.netem(host.name, { delayMs: 10, lossPercent: 1 });
  return h;
}

async function queues(h: ClusterHarness, via: string): Promise<QueueListing[]> {
  return JSON.parse(new TextDecoder().decode(await callNode({ address: h.clusterAddress(via), secret: h.secret, timeoutMs: 2_000 }, CtlMethod.listQueues, new Uint8Array(0)))) as QueueListing[];
}

interface Rate { publish: number; deliver: number; p50Ms: number; p99Ms: number; cpu: number; lost: number; dup: number }

async function throughput(network: Network, seconds: number, log: (l: string) => void): Promise<Rate> {
  const h = await cluster(network, 1);
  try {
    const args: BenchArgs = {
      scenarios: ['1kib-1p1c'], brokers: ['espresso'], cluster: true, seconds, lowRateSeconds: 3, profileSeconds: 0, profileRate: 0, messages: 0, bodyBytes: undefined,
      window: 256, prefetch: 256, results: false, build: false, list: false, help: false,
    };
    const handle = {
      broker: 'espresso' as const, topology: 'cluster' as const, urls: h.nodes.map((n) => h.amqpUrl(n.id)),
      processes: h.nodes.map((n) => ({ name: n.id, pid: n.child!.pid! })), stop: async () => {},
    };
    const r = await runScenario(findScenario('1kib-1p1c')!, handle, { args, log: () => undefined });
    log(`${network}: delivered ${r.deliverPerSec.toFixed(0)}/s, published ${r.publishPerSec.toFixed(0)}/s, p50 ${(r.full.p50Us / 1000).toFixed(1)} ms, CPU ${r.brokerCpuSecondsPer100k.toFixed(2)} s/100k`);
    return { publish: r.publishPerSec, deliver: r.deliverPerSec, p50Ms: r.full.p50Us / 1000, p99Ms: r.full.p99Us / 1000, cpu: r.brokerCpuSecondsPer100k, lost: r.lost, dup: r.duplicates };
  } finally {
    await h.close();
  }
}

interface Kill { failoverMs: number; gapMs: number }

/** One kill -9 of the leader of queue `q` under a steady confirmed publisher and a consumer on the other nodes. */
async function killOnce(h: ClusterHarness, q: string): Promise<Kill> {
  let leader: string | null | undefined;
  for (let i = 0; i < 300 && (leader === null || leader === undefined); i++) {
    leader = (await queues(h, 'n1').catch(() => [])).find((x) => x.name === q)?.leader;
    if (leader === null || leader === undefined) await sleep(100);
  }
  if (leader === null || leader === undefined) throw new Error(`${q} has no leader after 30 s`);
  const [pubNode, conNode] = h.nodes.map((n) => n.id).filter((id) => id !== leader) as [string, string];
  const pub = await amqp.connect(h.amqpUrl(pubNode));
  const con = await amqp.connect(h.amqpUrl(conNode));
  pub.on('error', () => undefined);
  con.on('error', () => undefined);
  const cch = await con.createChannel();
  await cch.prefetch(256);
  await cch.consume(q, (m) => m !== null && cch.ack(m));
  const ch = await pub.createConfirmChannel();
  const confirms: number[] = [];
  let running = true;
  const publisher = (async () => {
    for (let i = 0; running && i < 100_000; i++) {
      ch.sendToQueue(q, Buffer.alloc(1024), { persistent: true }, (err) => { if (err === null || err === undefined) confirms.push(Date.now()); });
      await sleep(5);
    }
  })();
  await sleep(3_000);
  const killedAt = Date.now();
  await h.kill(leader);
  let failoverMs = -1;
  for (let i = 0; i < 600 && failoverMs < 0; i++) {
    try {
      const now = (await queues(h, pubNode)).find((x) => x.name === q)?.leader;
      if (now !== null && now !== undefined && now !== leader) failoverMs = Date.now() - killedAt;
    } catch {
      // asked again
    }
    if (failoverMs < 0) await sleep(100);
  }
  await sleep(5_000);
  running = false;
  await publisher;
  const around = confirms.filter((t) => t >= killedAt - 2_000);
  let gapMs = 0;
  for (let i = 1; i < around.length; i++) gapMs = Math.max(gapMs, around[i]! - around[i - 1]!);
  if (around.length === 0 || around[0]! > killedAt) gapMs = Math.max(gapMs, (around[0] ?? Date.now()) - killedAt);
  await Promise.allSettled([pub.close(), con.close()]);
  await h.startNode(leader);
  await sleep(2_000);
  return { failoverMs, gapMs };
}

async function failover(network: Network, kills: number, log: (l: string) => void): Promise<string> {
  const h = await cluster(network, 2);
  try {
    const setup = await amqp.connect(h.amqpUrl('n1'));
    const ch = await setup.createChannel();
    await ch.assertQueue('failover-q', { durable: true });
    await setup.close();
    const runs: Kill[] = [];
    for (let k = 0; k < kills; k++) {
      const r = await killOnce(h, 'failover-q');
      log(`${network}: kill ${k + 1}: failover ${r.failoverMs} ms, confirm gap ${r.gapMs} ms`);
      runs.push(r);
    }
    const list = (f: (r: Kill) => number): string => runs.map(f).join(', ');
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? -1;
    return `| ${network} | ${list((r) => r.failoverMs)} (median ${median(runs.map((r) => r.failoverMs))}) | ${list((r) => r.gapMs)} (median ${median(runs.map((r) => r.gapMs))}) |`;
  } finally {
    await h.close();
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const seconds = flag(argv, '--seconds', 15);
  const kills = flag(argv, '--kills', 3);
  const rounds = flag(argv, '--rounds', 3);
  const support = bedSupport();
  if (!support.ok) {
    process.stderr.write(`across-hosts: the network-namespace test bed cannot run here: ${support.reason}\n`);
    return 69;
  }
  if (!existsSync(join(root, 'dist/src/cli/main.js'))) {
    process.stderr.write('across-hosts: run `npm run build` first (the nodes run dist/)\n');
    return 64;
  }
  const log = (l: string): void => { process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${l}\n`); };
  const asked = (argv.includes('--networks') ? argv[argv.indexOf('--networks') + 1] ?? '' : 'loopback,hosts,hosts + 1% loss,hosts + netem 10 ms + 1% loss')
    .split(',').map((x) => x.trim());
  const networks = allNetworks.filter((n) => asked.includes(n) && (support.netem || !n.includes('netem')));
  const failNets = networks;
  if (!support.netem) log('this kernel has no tc netem: no netem row (tc: "Specified qdisc kind is unknown")');
  // Rounds interleave the networks, so a machine busy with other work weighs on each alike.
  const tputNets = networks;
  const rates = new Map<Network, Rate[]>(tputNets.map((n) => [n, []]));
  for (let round = 0; round < rounds; round++) for (const n of tputNets) rates.get(n)!.push(await throughput(n, seconds, log));
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const base = med((rates.get('loopback') ?? []).map((r) => r.deliver));
  const tput = tputNets.map((n) => {
    const rs = rates.get(n)!;
    const each = rs.map((r) => Math.round(r.deliver)).join(', ');
    return `| ${n} | ${Math.round(med(rs.map((r) => r.publish)))} | ${Math.round(med(rs.map((r) => r.deliver)))} (${each}) | ${(med(rs.map((r) => r.deliver)) / base).toFixed(2)}x | ${med(rs.map((r) => r.p50Ms)).toFixed(0)} / ${med(rs.map((r) => r.p99Ms)).toFixed(0)} | ${med(rs.map((r) => r.cpu)).toFixed(2)} | ${rs.reduce((a, r) => a + r.lost, 0)} / ${rs.reduce((a, r) => a + r.dup, 0)} |`;
  });
  const fail: string[] = [];
  for (const n of failNets) fail.push(await failover(n, kills, log));
  const uptime = execFileSync('uptime', { encoding: 'utf8' }).trim();
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  process.stdout.write([
    '', `npx tsx cluster/across-hosts.ts --seconds ${seconds} --kills ${kills} --rounds ${rounds}; ${new Date().toISOString().slice(0, 10)}, commit ${commit}; uptime at the end: ${uptime}`, '',
    '| network | published msg/s (median) | delivered msg/s (median; each round) | delivered vs loopback | p50 / p99 ms | broker CPU s / 100k msg, 3 nodes (median) | lost / dup (all rounds) |',
    '|---|---:|---:|---:|---|---:|---|', ...tput, '',
    '| network | failover ms (kill -9 of the leader to a new leader in list-queues) | longest confirm gap ms |', '|---|---|---|', ...fail, '',
  ].join('\n'));
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`across-hosts: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 2;
});
