// `npm run bench -- SCENARIO...`: starts each broker in turn on loopback, runs the scenarios on it,
// stops it, prints one table per scenario with the espresso/RabbitMQ ratios, and appends the run to
// bench/RESULTS.md with a chart per scenario. Every broker it started is stopped on any exit path.

import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { benchHelp, parseBenchArgs, type BenchArgs, type BrokerName } from './args.js';
import { isInterrupted, stopAll, type BrokerHandle } from './broker-process.js';
import { clusterUnsupported, ensureEspressoBuilt, startEspresso } from './espresso.js';
import { ensureRabbitInstalled, startRabbit } from './rabbitmq.js';
import { chartFileName, formatMarkdown, formatSvg, formatTable, type BrokerResult, type ScenarioReport } from './report.js';
import { runScenario } from './run.js';
import { findScenario, scenarioNames, scenarios, type Scenario } from './scenarios.js';

const benchDir = new URL('.', import.meta.url).pathname;
/** Set once per run, before the first espresso start: why there is no usable build. */
let espressoBuildProblem: string | undefined;
const log = (line: string): void => {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
};

function machine(): string {
  const model = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} CPUs (${model}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}`;
}

function gitCommit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: benchDir, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', '.'], { cwd: benchDir, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha} (bench/ modified)` : sha;
  } catch {
    return 'unknown';
  }
}

function skipped(broker: BrokerName, why: string): BrokerResult {
  const zero = { count: 0, p50Us: 0, p95Us: 0, p99Us: 0, maxUs: 0 };
  return {
    broker, skipped: why, published: 0, confirmed: 0, delivered: 0, publishPerSec: 0, deliverPerSec: 0, full: zero, low: undefined,
    lowRatePerSec: 0, lost: 0, duplicates: 0, nacked: 0, stillQueued: 0, brokerCpuSecondsPer100k: 0, processes: [],
    generatorCpuSeconds: 0, generatorCpuSecondsPer100k: 0,
  };
}

async function startBroker(broker: BrokerName, args: BenchArgs, workDir: string): Promise<BrokerHandle | string> {
  const topology = args.cluster ? 'cluster' : 'single';
  try {
    if (broker === 'rabbitmq') {
      await ensureRabbitInstalled(log);
      return await startRabbit(topology, workDir, log);
    }
    if (espressoBuildProblem !== undefined) return espressoBuildProblem;
    if (topology === 'cluster') {
      const why = await clusterUnsupported();
      if (why !== undefined) return why;
    }
    return await startEspresso(topology, workDir, log, { extraArgs: (args.espressoPlugins ?? []).flatMap((p) => ['--plugin', p]) });
  } catch (e) {
    await stopAll();
    return `could not start: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/**
 * Runs every selected scenario on one broker, each on a freshly started broker (clean data dir), so
 * memory, queues and CPU of one scenario never carry into the next. A failing scenario is reported
 * and the rest go on.
 */
async function runBroker(broker: BrokerName, list: readonly Scenario[], args: BenchArgs, workDir: string): Promise<Map<string, BrokerResult>> {
  const out = new Map<string, BrokerResult>();
  for (const s of list) {
    if (isInterrupted()) break;
    if (args.cluster && s.singleNodeOnly === true) {
      out.set(s.name, skipped(broker, 'single-node scenario'));
      continue;
    }
    const handle = await startBroker(broker, args, workDir);
    if (typeof handle === 'string') {
      log(`${broker}: skipped: ${handle}`);
      out.set(s.name, skipped(broker, handle));
      continue;
    }
    try {
      log(`${broker}: scenario ${s.name}: ${s.title}`);
      out.set(s.name, await runScenario(s, handle, { args, log }));
    } catch (e) {
      const why = `failed: ${e instanceof Error ? e.message : String(e)}`;
      log(`${broker}: ${s.name} ${why}`);
      out.set(s.name, skipped(broker, why));
    } finally {
      await handle.stop();
    }
  }
  return out;
}

const resultsPreamble = `# Benchmark results

Appended by \`npm run bench -- SCENARIO\` (bench/main.ts); newest last. Ratios are espresso / RabbitMQ
(above 1 is better for msg/s, worse for latency, CPU and memory). How to read the rows:

- publish msg/s: publisher-confirmed messages per second while publishing as fast as the confirm
  window allows; deliver msg/s: consumer deliveries (acked) per second over the same phase and its drain.
  Fanout counts every queue's delivery; RPC counts round trips; the backlog publishes, then drains.
- latency: end-to-end, send to delivery (RPC: round trip), HDR histogram merged across worker threads.
  "full" is under the full-load phase, where the broker queues whatever the consumers cannot take yet,
  so it measures queueing; "low rate" is at a fixed rate both brokers sustain (scenario table in
  bench/scenarios.ts).
- broker CPU s/100k msg: CPU seconds of the broker's processes (beam.smp per RabbitMQ node, node per
  espresso node; from /proc) over the whole scenario, per 100,000 deliveries; peak RSS is the largest
  process's peak, sampled once a second. Each scenario runs on a freshly started broker.
- generator CPU: the load generator's own process (all its worker threads), to show it was not the bottleneck
  on a shared 2-core machine.
- lost: confirmed messages neither delivered nor still queued at the end (must be 0); duplicated:
  deliveries of a (publisher, sequence) id already delivered from that queue.
- espresso only, since the observability change: after the measured phases one more phase
  (\`--profile-seconds\`, \`--profile-rate\`; not in the comparison) runs while every node takes a CPU
  profile and \`ctl profile stages\` gathers the traced messages (1 in 100, the default): the stage
  breakdown and each node's top functions and GC share follow the table.

Settings on both: durable quorum queues (3 replicas in --cluster runs), persistent messages, publisher
confirms with a window of 256 per publisher, manual acks with prefetch 256; fsync as each broker does by
default; espresso runs with RabbitMQ's memory watermark (0.4 of RAM).

`;

function writeResults(reports: readonly ScenarioReport[], argv: readonly string[], commit: string, loadBefore: readonly number[]): void {
  const chartsDir = join(benchDir, 'charts');
  mkdirSync(chartsDir, { recursive: true });
  for (const r of reports) writeFileSync(join(chartsDir, chartFileName(r)), formatSvg(r));
  const file = join(benchDir, 'RESULTS.md');
  if (!existsSync(file) || readFileSync(file, 'utf8').trim() === '') {
    writeFileSync(file, resultsPreamble);
  }
  const info = { dateIso: new Date().toISOString(), machine: machine(), commit, command: `npm run bench -- ${argv.join(' ')}`, load: { before: loadBefore, after: loadavg() } };
  // A blank line before the heading, whatever the previous entry (another script's) ended with.
  const before = readFileSync(file, 'utf8');
  appendFileSync(file, `${before.endsWith('\n\n') ? '' : before.endsWith('\n') ? '\n' : '\n\n'}${formatMarkdown(info, reports)}`);
  log(`appended to ${file}; charts in ${chartsDir}`);
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseBenchArgs(argv, scenarioNames);
  if (!parsed.ok) {
    process.stderr.write(`bench: ${parsed.error}\n`);
    return 2;
  }
  const args = parsed.args;
  if (args.help) {
    process.stdout.write(benchHelp);
    return 0;
  }
  if (args.list) {
    for (const s of scenarios) process.stdout.write(`${s.name.padEnd(18)} ${s.title}\n`);
    return 0;
  }
  const list = args.scenarios.map((n) => findScenario(n)).filter((s): s is Scenario => s !== undefined);
  const commit = gitCommit(); // at the start: the code that ran, whatever is committed meanwhile
  const loadBefore = loadavg();
  const workDir = mkdtempSync(join(tmpdir(), 'espresso-bench-'));
  workDirs.push(workDir);
  log(`machine: ${machine()}; work dir ${workDir}`);
  const byBroker = new Map<BrokerName, Map<string, BrokerResult>>();
  if (args.brokers.includes('espresso')) espressoBuildProblem = await ensureEspressoBuilt(args.build, log);
  try {
    for (const b of args.brokers) byBroker.set(b, await runBroker(b, list, args, workDir));
  } finally {
    await stopAll();
    rmSync(workDir, { recursive: true, force: true });
  }
  const reports: ScenarioReport[] = list.map((s) => ({
    scenario: s.name, title: s.title, topology: args.cluster ? 'cluster' : 'single',
    results: args.brokers.map((b) => byBroker.get(b)?.get(s.name) ?? skipped(b, 'not run')),
  }));
  process.stdout.write('\n');
  for (const r of reports) process.stdout.write(formatTable(r) + '\n');
  if (args.results) writeResults(reports, argv, commit, loadBefore);
  const lost = reports.flatMap((r) => r.results).reduce((a, r) => a + r.lost, 0);
  if (lost > 0) process.stderr.write(`bench: ${lost} confirmed message(s) LOST\n`);
  return lost > 0 ? 1 : 0;
}

/** Removed on every exit path, after the brokers using them stopped. */
const workDirs: string[] = [];

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`bench: ${signal}: stopping the brokers this run started\n`);
    void stopAll(true).finally(() => {
      for (const d of workDirs) rmSync(d, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Worker threads or sockets left by a failed scenario must not keep the process alive.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    void stopAll(true).finally(() => process.exit(1));
  },
);
