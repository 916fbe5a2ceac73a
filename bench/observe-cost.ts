// What observability costs, measured (npx tsx bench/observe-cost.ts overhead|scrape):
//
//   overhead  CPU per message, summed over the 3 nodes of a cluster, for the same fixed-rate workload
//             (1 KiB persistent messages, confirms, manual acks, one queue of 3 replicas) on: this
//             build with 1-in-100 tracing and /metrics scraped every 5 s on every node ("on"), this
//             build with tracing off and nobody scraping ("off"), and the commit before the metrics
//             existed ("baseline", built from git into a temp dir); rounds alternate the order, so
//             the shared machine's drift spreads over all. RabbitMQ 3.10 (3 nodes, quorum queue)
//             runs the same workload in the same run for scale. Then one more "on" run takes a CPU
//             profile of every node and counts the share of busy samples with observability code
//             on the stack (src/observe, src/http, prom-client, the trace and histogram helpers):
//             a figure the machine's noise does not swamp.
//   scrape    time and size of GET /metrics and /metrics/per-object with 10,000 queues declared.
//
// Appends its tables to bench/RESULTS.md (command, machine, date, load average before and after).

import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import * as amqp from 'amqplib';
import { run, sampleProcess, sleep, stopAll, type BrokerHandle } from './broker-process.js';
import { ensureEspressoBuilt, startEspresso } from './espresso.js';
import { ensureRabbitInstalled, startRabbit } from './rabbitmq.js';
import { gunzipSync } from 'node:zlib';
import { callNode } from '../src/cluster/control-client.js';
import { decodeJson, encodeJson } from '../src/cluster/metadata-entries.js';
import { nodeId } from '../src/lib/ids.js';
import { ObserveMethod, type ProfileTicket } from '../src/observe/observe-service.js';

const repoDir = new URL('..', import.meta.url).pathname;
const log = (line: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
/** AMQP ports of its own (HTTP + 10000, cluster + 20000), away from the side-by-side bench's. */
const ports = [5895, 5896, 5897];
const httpPorts = ports.map((p) => p + 10_000);

interface Flags {
  what: 'overhead' | 'scrape';
  rate: number;
  seconds: number;
  rounds: number;
  queues: number;
  baseline: string;
  rabbit: boolean;
  results: boolean;
}

function parseFlags(argv: readonly string[]): Flags {
  const f: Flags = { what: 'overhead', rate: 2000, seconds: 30, rounds: 2, queues: 10_000, baseline: 'dbec6b8', rabbit: true, results: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${a} needs a positive integer`);
      return n;
    };
    if (a === 'overhead' || a === 'scrape') f.what = a;
    else if (a === '--rate') f.rate = num();
    else if (a === '--seconds') f.seconds = num();
    else if (a === '--rounds') f.rounds = num();
    else if (a === '--queues') f.queues = num();
    else if (a === '--baseline') f.baseline = argv[++i] ?? '';
    else if (a === '--no-rabbitmq') f.rabbit = false;
    else if (a === '--no-results') f.results = false;
    else throw new Error(`unknown argument '${a}': overhead|scrape [--rate N] [--seconds N] [--rounds N] [--queues N] [--baseline COMMIT] [--no-rabbitmq] [--no-results]`);
  }
  return f;
}

/** The commit before observability, built with this checkout's node_modules; its main.js. */
async function buildBaseline(commit: string, workDir: string): Promise<string> {
  const dir = join(workDir, `baseline-${commit}`);
  execFileSync('mkdir', ['-p', dir]);
  execFileSync('sh', ['-c', `git -C '${repoDir}' archive '${commit}' | tar -x -C '${dir}'`]);
  symlinkSync(join(repoDir, 'node_modules'), join(dir, 'node_modules'));
  log(`baseline ${commit}: building in ${dir}`);
  const r = await run(join(repoDir, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: dir, timeoutMs: 600_000 });
  const main = join(dir, 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(main)) throw new Error(`baseline build failed: ${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`);
  return main;
}

interface Window {
  delivered: number;
  cpuSeconds: number;
  seconds: number;
}

/**
 * One queue, one publisher on node 1 (confirms, at most 256 unconfirmed) at `rate` msg/s, one
 * consumer on node 2 (prefetch 256, manual acks); after a warm-up, the broker processes' CPU and
 * the deliveries over `seconds`.
 */
async function fixedRate(handle: BrokerHandle, rate: number, seconds: number, duringWindow: () => void = () => undefined): Promise<Window> {
  const pub = await amqp.connect(handle.urls[0]!);
  const sub = await amqp.connect(handle.urls[1 % handle.urls.length]!);
  const q = 'observe-cost';
  try {
    const pch = await pub.createConfirmChannel();
    await pch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': 3 } });
    const sch = await sub.createChannel();
    await sch.prefetch(256);
    let delivered = 0;
    await sch.consume(q, (m) => {
      if (m === null) return;
      delivered++;
      sch.ack(m);
    });
    const body = Buffer.alloc(1024, 0x61);
    let outstanding = 0;
    let stop = false;
    const started = Date.now();
    const publishing = (async () => {
      for (let sent = 0; !stop; sent++) {
        const due = started + (sent * 1000) / rate;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        while (outstanding >= 256 && !stop) await sleep(1);
        outstanding++;
        pch.publish('', q, body, { persistent: true }, () => { outstanding--; });
      }
    })();
    await sleep(5_000); // warm-up: leaders elected, JIT warm
    const cpu = (): number => handle.processes.reduce((a, p) => a + (sampleProcess(p.pid)?.cpuSeconds ?? 0), 0);
    const cpu0 = cpu();
    const d0 = delivered;
    const t0 = Date.now();
    duringWindow();
    await sleep(seconds * 1000);
    const w = { delivered: delivered - d0, cpuSeconds: cpu() - cpu0, seconds: (Date.now() - t0) / 1000 };
    stop = true;
    await publishing;
    await pch.waitForConfirms().catch(() => undefined);
    return w;
  } finally {
    await pub.close().catch(() => undefined);
    await sub.close().catch(() => undefined);
  }
}

/** Scrapes every node's /metrics every `everyMs` (per-object every 6th time) until stopped; the time each took. */
function scraper(httpPorts: readonly number[], everyMs: number): { stop(): number[] } {
  const took: number[] = [];
  let n = 0;
  const timer = setInterval(() => {
    n++;
    for (const port of httpPorts) {
      const t0 = performance.now();
      const path = n % 6 === 0 ? '/metrics/per-object' : '/metrics';
      void fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.text()).then(() => took.push(performance.now() - t0), () => undefined);
    }
  }, everyMs);
  return { stop: () => { clearInterval(timer); return took; } };
}

const usPerMsg = (w: Window): number => (w.cpuSeconds * 1e6) / Math.max(1, w.delivered);

async function overhead(f: Flags, workDir: string): Promise<string> {
  const baselineMain = await buildBaseline(f.baseline, workDir);
  type Variant = { name: string; start: () => Promise<BrokerHandle>; scrape: boolean };
  const variants: Variant[] = [
    { name: 'on', start: () => startEspresso('cluster', workDir, log, { ports, extraArgs: ['--trace-sample', '100'] }), scrape: true },
    { name: 'off', start: () => startEspresso('cluster', workDir, log, { ports, extraArgs: ['--trace-sample', '0'] }), scrape: false },
    { name: 'baseline', start: () => startEspresso('cluster', workDir, log, { ports, mainJs: baselineMain }), scrape: false },
  ];
  const results = new Map<string, Window[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < f.rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const handle = await v.start();
      try {
        let s: { stop(): number[] } | undefined;
        const w = await fixedRate(handle, f.rate, f.seconds, () => { if (v.scrape) s = scraper(httpPorts, 5_000); });
        const scrapes = s?.stop() ?? [];
        results.get(v.name)!.push(w);
        log(`round ${round + 1} ${v.name}: ${w.delivered} delivered in ${w.seconds.toFixed(1)} s, ${w.cpuSeconds.toFixed(2)} CPU s, ${usPerMsg(w).toFixed(1)} us/msg${scrapes.length > 0 ? `, ${scrapes.length} scrapes` : ''}`);
      } finally {
        await handle.stop();
      }
    }
  }
  const share = await observabilityShareRun(f, workDir);
  let rabbit: Window | undefined;
  if (f.rabbit) {
    await ensureRabbitInstalled(log);
    const handle = await startRabbit('cluster', workDir, log);
    try {
      rabbit = await fixedRate(handle, f.rate, f.seconds);
      log(`rabbitmq: ${usPerMsg(rabbit).toFixed(1)} us/msg`);
    } finally {
      await handle.stop();
    }
  }
  const total = (name: string): Window => results.get(name)!.reduce((a, w) => ({ delivered: a.delivered + w.delivered, cpuSeconds: a.cpuSeconds + w.cpuSeconds, seconds: a.seconds + w.seconds }), { delivered: 0, cpuSeconds: 0, seconds: 0 });
  const median = (name: string): number => {
    const xs = results.get(name)!.map(usPerMsg).sort((a, b) => a - b);
    return xs.length % 2 === 1 ? xs[(xs.length - 1) / 2]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2;
  };
  const on = usPerMsg(total('on'));
  const onMedian = median('on');
  const pct = (a: number, b: number): string => `${((100 * (a - b)) / b).toFixed(1)}%`;
  const rows = variants.map((v) => {
    const t = total(v.name);
    const each = results.get(v.name)!.map((w) => usPerMsg(w).toFixed(0)).join(', ');
    return `| ${v.name} | ${(t.delivered / t.seconds).toFixed(0)} | ${usPerMsg(t).toFixed(1)} | ${median(v.name).toFixed(1)} | ${each} | ${pct(on, usPerMsg(t))} / ${pct(onMedian, median(v.name))} |`;
  });
  if (rabbit !== undefined) rows.push(`| RabbitMQ 3.10 (quorum queue, 3 nodes) | ${(rabbit.delivered / rabbit.seconds).toFixed(0)} | ${usPerMsg(rabbit).toFixed(1)} | - | ${usPerMsg(rabbit).toFixed(0)} | espresso on / RabbitMQ: ${(on / usPerMsg(rabbit)).toFixed(2)}x |`);
  const shareText = share.map((s) => `${s.node} ${s.percent.toFixed(2)}% of ${(s.busyMs / 1000).toFixed(1)} s busy`).join(', ');
  return [
    `### Observability overhead: CPU per message, 3 nodes, ${f.rate} msg/s of 1 KiB persistent messages, ${f.rounds} rounds of ${f.seconds} s`,
    '',
    '"on": this build, 1 publish in 100 traced, /metrics of every node scraped every 5 s (per-object every 30 s); "off": tracing off, no scrapes (the counters are always kept); "baseline": the commit before the metrics existed. CPU is every broker process\'s, from /proc, over the measured window.',
    '',
    '| variant | delivered msg/s | CPU us/msg (all nodes, all rounds) | median of rounds | per round | "on" costs more by (all / median) |',
    '|---|---:|---:|---:|---|---:|',
    ...rows,
    '',
    `CPU profiles of an extra "on" run (same workload and scrapes, ${f.seconds} s): busy samples with observability code on the stack (src/observe, src/http, prom-client, trace and histogram helpers; the counters' increments are inlined where they happen and not separable): ${shareText}.`,
  ].join('\n');
}

/** Files of the observability code: a sample with any of them on its stack counts toward its cost. */
const observabilityFiles = [/\/src\/observe\//, /\/src\/http\//, /\/prom-client\//, /\/src\/lib\/trace\./, /\/src\/lib\/histogram\./, /\/src\/cluster\/trace-clock\./, /\/src\/broker\/counters\./];

interface ProfileJson {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}

/** Busy time of a CPU profile and the part of it with observability code anywhere on the stack (inclusive). */
function observabilityShare(p: ProfileJson): { busyMs: number; observeMs: number } {
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const hit = new Map<number, boolean>();
  const involves = (id: number): boolean => {
    const known = hit.get(id);
    if (known !== undefined) return known;
    const n = byId.get(id);
    const mine = n !== undefined && observabilityFiles.some((re) => re.test(n.callFrame.url));
    const up = parent.get(id);
    const result = mine || (up !== undefined && involves(up));
    hit.set(id, result);
    return result;
  };
  let busyUs = 0;
  let observeUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    const us = Math.max(0, p.timeDeltas[i + 1] ?? 0);
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    busyUs += us;
    if (involves(id)) observeUs += us;
  }
  return { busyMs: busyUs / 1000, observeMs: observeUs / 1000 };
}

/** One "on" run while every node records a CPU profile for the window; the observability share per node. */
async function observabilityShareRun(f: Flags, workDir: string): Promise<Array<{ node: string; busyMs: number; percent: number }>> {
  const handle = await startEspresso('cluster', workDir, log, { ports, extraArgs: ['--trace-sample', '100'] });
  try {
    let profiles: Array<Promise<ProfileJson>> = [];
    let s: { stop(): number[] } | undefined;
    await fixedRate(handle, f.rate, f.seconds, () => {
      s = scraper(httpPorts, 5_000);
      profiles = ports.map((p, i) => takeProfile(p, `bench${i + 1}`, f.seconds - 1));
    });
    s?.stop();
    const out = [];
    for (const [i, p] of profiles.entries()) {
      const { busyMs, observeMs } = observabilityShare(await p);
      out.push({ node: `bench${i + 1}`, busyMs, percent: (100 * observeMs) / Math.max(1, busyMs) });
      log(`profile of bench${i + 1}: observability ${observeMs.toFixed(0)} ms of ${busyMs.toFixed(0)} ms busy`);
    }
    return out;
  } finally {
    await handle.stop();
  }
}

async function takeProfile(port: number, node: string, seconds: number): Promise<ProfileJson> {
  const o = { address: `127.0.0.1:${port + 20_000}`, nodeId: nodeId(node), secret: 'espresso-bench', timeoutMs: seconds * 1000 + 60_000 };
  const ticket = decodeJson<ProfileTicket>(await callNode(o, ObserveMethod.profile, encodeJson({ kind: 'cpu', seconds })));
  const parts: Uint8Array[] = [];
  for (let offset = 0; offset < ticket.bytes;) {
    const chunk = await callNode(o, ObserveMethod.profileFetch, encodeJson({ node: ticket.node, id: ticket.id, offset }));
    parts.push(chunk);
    offset += chunk.length;
  }
  return JSON.parse(gunzipSync(Buffer.concat(parts)).toString('utf8')) as ProfileJson;
}

async function scrape(f: Flags, workDir: string): Promise<string> {
  const handle = await startEspresso('cluster', workDir, log, { ports });
  try {
    const conn = await amqp.connect(handle.urls[0]!);
    const ch = await conn.createChannel();
    const t0 = Date.now();
    for (let i = 0; i < f.queues; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, f.queues - i) }, (_, k) => ch.assertQueue(`scrape-q-${i + k}`, { durable: true })));
      if ((i / 200) % 10 === 0) log(`declared ${i + 200} queues`);
    }
    log(`declared ${f.queues} queues in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    await conn.close();
    await sleep(10_000); // leaders elected, snapshots of the declares settled
    const rows: string[] = [];
    for (const path of ['/metrics', '/metrics/per-object']) {
      for (const port of httpPorts) {
        const times: number[] = [];
        let bytes = 0;
        let lines = 0;
        for (let k = 0; k < 5; k++) {
          const s = performance.now();
          const text = await (await fetch(`http://127.0.0.1:${port}${path}`)).text();
          times.push(performance.now() - s);
          bytes = text.length;
          lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
        }
        times.sort((a, b) => a - b);
        // What the node itself spent building the last answer (the rest is waiting for its event loop).
        const own = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const m = new RegExp(`^espresso_metrics_render_seconds\\{path="${path}"\\} (\\S+)$`, 'm').exec(own);
        const renderMs = m === null ? Number.NaN : Number(m[1]) * 1000;
        rows.push(`| ${path} | ${port} | ${lines.toLocaleString('en-US')} | ${(bytes / 1e6).toFixed(2)} | ${times[2]!.toFixed(0)} | ${times[4]!.toFixed(0)} | ${renderMs.toFixed(0)} |`);
        log(`${path} on ${port}: median ${times[2]!.toFixed(0)} ms, ${lines} samples, ${(bytes / 1e6).toFixed(2)} MB`);
      }
    }
    const rss = handle.processes.map((p) => `${((sampleProcess(p.pid)?.rssBytes ?? 0) / 1048576).toFixed(0)}`).join(', ');
    return [
      `### Scrape time with ${f.queues.toLocaleString('en-US')} queues (3 nodes, every queue 3 replicas: ${f.queues.toLocaleString('en-US')} Raft groups per node)`,
      '',
      `Each path fetched 5 times per node, one after the other, uncompressed; the last column is the node's own time for the last answer (espresso_metrics_render_seconds), the rest of a fetch is waiting for its event loop; node RSS after: ${rss} MiB.`,
      '',
      '| path | node HTTP port | samples | MB | median ms | slowest ms | node built it in ms |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...rows,
    ].join('\n');
  } finally {
    await handle.stop();
  }
}

function machine(): string {
  return `${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}`;
}

async function main(argv: readonly string[]): Promise<void> {
  const f = parseFlags(argv);
  const problem = await ensureEspressoBuilt(false, log);
  if (problem !== undefined) throw new Error(problem);
  const workDir = mkdtempSync(join(tmpdir(), 'espresso-observe-cost-'));
  const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');
  const startedIso = new Date().toISOString();
  try {
    const table = f.what === 'overhead' ? await overhead(f, workDir) : await scrape(f, workDir);
    const load1 = loadavg().map((x) => x.toFixed(2)).join(' ');
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoDir, encoding: 'utf8' }).trim();
    const section = [
      `## ${startedIso}`, '', `- machine: ${machine()}`, `- commit: \`${commit}\``,
      `- command: \`npx tsx bench/observe-cost.ts ${argv.join(' ')}\``,
      `- load average (1, 5, 15 min) before: ${load0}; after: ${load1} (the machine is shared: figures are noisy)`, '', table, '',
    ].join('\n');
    process.stdout.write(`\n${section}\n`);
    if (f.results) appendFileSync(join(repoDir, 'bench', 'RESULTS.md'), `\n${section}`);
  } finally {
    await stopAll();
    rmSync(workDir, { recursive: true, force: true });
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stopAll(true).finally(() => process.exit(130)));
}

main(process.argv.slice(2)).then(
  () => setTimeout(() => process.exit(0), 200).unref(),
  (e: unknown) => {
    process.stderr.write(`observe-cost: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    void stopAll(true).finally(() => process.exit(1));
  },
);
