// Durable tasks end to end on 3 nodes, against Celery 5 with the rpc:// result backend on a
// 3-node RabbitMQ (quorum queue, publisher confirms, acks_late), same machine, same run.
//
//   npx tsx bench/tasks.ts [--tasks 2000] [--submitters 8] [--workers 3] [--concurrency 16] [--skip-rabbit]
//
// Workload: --submitters loops in one process submit --tasks tasks, each loop one after another
// (each waits for its confirm: espresso confirms once the task is recorded on a majority;
// Celery's delay() with confirm_publish once RabbitMQ has the message), while --workers worker
// processes (one per node) run them, each task one step. Reported: submitted/s, completed/s (first submit to last
// completion), submit latency p50/p99, broker CPU microseconds per task summed over all nodes,
// and for espresso the memory and disk the retained finished records cost (RSS and data-dir
// growth over the run, scaled to 100,000 tasks). Bounded: every phase has a timeout.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connectTasks } from '../src/tasks/index.js';
import { run, sampleProcess, stopAll, type BrokerHandle } from './broker-process.js';
import { ensureEspressoBuilt, startEspresso } from './espresso.js';
import { ensureRabbitInstalled, startRabbit } from './rabbitmq.js';
import { newHistogram, summarize } from './stats.js';

const repo = new URL('..', import.meta.url).pathname;
const tsx = pathToFileURL(join(repo, 'node_modules/tsx/dist/loader.mjs')).href;
const log = (s: string): void => void process.stdout.write(`${s}\n`);

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const taskCount = flag('--tasks', 2000);
const submitters = flag('--submitters', 8);
const workerCount = flag('--workers', 3);
const concurrency = flag('--concurrency', 16);
const phaseTimeoutMs = 600_000;

interface Result {
  broker: string;
  submittedPerSec: number;
  completedPerSec: number;
  submitP50Ms: number;
  submitP99Ms: number;
  cpuUsPerTask: number;
  extra: string;
}

function cpuOf(h: BrokerHandle): number {
  return h.processes.reduce((a, p) => a + (sampleProcess(p.pid)?.cpuSeconds ?? 0), 0);
}

function rssOf(h: BrokerHandle): number {
  return h.processes.reduce((a, p) => a + (sampleProcess(p.pid)?.rssBytes ?? 0), 0);
}

async function duBytes(dir: string): Promise<number> {
  const r = await run('du', ['-sb', dir], { timeoutMs: 60_000 });
  return Number(r.stdout.split(/\s+/)[0] ?? 0);
}

function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const t = setInterval(() => {
      if (check()) {
        clearInterval(t);
        resolve();
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(t);
        reject(new Error(`${what}: not within ${timeoutMs} ms`));
      }
    }, 20);
  });
}

async function espresso(workDir: string): Promise<Result> {
  const built = await ensureEspressoBuilt(false, log);
  if (built !== undefined) throw new Error(built);
  const h = await startEspresso('cluster', workDir, log);
  const workers: ChildProcess[] = [];
  try {
    const submitter = await connectTasks(h.urls[0]!, { name: 'bench-submitter' });
    await submitter.define('bench', { maxAttempts: 3, retentionMs: 3_600_000, leaseMs: 30_000 });
    const done: number[] = [];
    for (let i = 0; i < workerCount; i++) {
      const c = spawn(process.execPath, ['--import', tsx, join(repo, 'bench/tasks-worker.ts'), h.urls[i % h.urls.length]!, String(concurrency)], { stdio: ['ignore', 'pipe', 'inherit'] });
      workers.push(c);
      done.push(0);
      let ready = false;
      c.stdout!.on('data', (b: Buffer) => {
        for (const line of b.toString().split('\n')) {
          if (line === 'working') ready = true;
          const m = /^done (\d+)$/.exec(line);
          if (m !== null) done[i] = Number(m[1]);
        }
      });
      await waitFor(`worker ${i} ready`, () => ready, 60_000);
    }
    const dataDir = join(workDir, 'espresso-cluster');
    const diskBefore = await duBytes(dataDir);
    const rssBefore = rssOf(h);
    const cpuBefore = cpuOf(h);
    const lat = newHistogram();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: submitters }, async () => {
      for (let i = next++; i < taskCount; i = next++) {
        const s = performance.now();
        await submitter.submit('bench', { n: i });
        lat.recordValue(Math.max(1, Math.round((performance.now() - s) * 1000)));
      }
    }));
    const submitMs = performance.now() - t0;
    await waitFor('every task completed', () => done.reduce((a, b) => a + b, 0) >= taskCount, phaseTimeoutMs);
    const totalMs = performance.now() - t0;
    const cpu = cpuOf(h) - cpuBefore;
    const rssGrowth = rssOf(h) - rssBefore;
    const diskGrowth = (await duBytes(dataDir)) - diskBefore;
    await submitter.close();
    const l = summarize(lat);
    const per100k = (b: number): string => `${((b / taskCount) * 100_000 / 2 ** 20).toFixed(0)} MiB`;
    return {
      broker: 'espresso (3 nodes)', submittedPerSec: taskCount / (submitMs / 1000), completedPerSec: taskCount / (totalMs / 1000),
      submitP50Ms: l.p50Us / 1000, submitP99Ms: l.p99Us / 1000, cpuUsPerTask: (cpu * 1e6) / taskCount,
      extra: `retained finished tasks: RSS +${per100k(rssGrowth)} and data dirs +${per100k(diskGrowth)} per 100,000 (summed over 3 nodes, scaled from ${taskCount}; the log before snapshots and compaction)`,
    };
  } finally {
    for (const w of workers) w.kill('SIGKILL');
    await h.stop();
  }
}

const celeryApp = `
import os, sys, time, json
from concurrent.futures import ThreadPoolExecutor
from celery import Celery
from kombu import Queue
import kombu.transport.pyamqp
# Quorum queues refuse global QoS, which kombu 5.2 asks of RabbitMQ 3.3+; Celery 5.5 detects
# quorum queues and asks per-consumer QoS itself (worker_detect_quorum_queues): the same here.
kombu.transport.pyamqp.Transport.qos_semantics_matches_spec = lambda self, connection: True
app = Celery('tb', broker=os.environ['BROKER_URL'], backend='rpc://')
app.conf.update(
    task_queues=[Queue('tasksbench', queue_arguments={'x-queue-type': 'quorum'})],
    task_default_queue='tasksbench', task_acks_late=True, worker_prefetch_multiplier=4,
    broker_transport_options={'confirm_publish': True}, worker_hijack_root_logger=False,
)

@app.task
def double(n):
    return n * 2

if __name__ == '__main__':
    # rpc:// answers each caller thread on its own reply queue: a thread waits for the results of
    # the tasks it submitted, after submitting its share.
    n, k = int(sys.argv[1]), int(sys.argv[2])
    lat, ends, done = [], [], []
    def loop(j):
        mine = []
        for i in range(j, n, k):
            s = time.time()
            mine.append(double.delay(i))
            lat.append(time.time() - s)
        ends.append(time.time())
        for r in mine:
            r.get(timeout=600)
        done.append(time.time())
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=k) as pool:
        list(pool.map(loop, range(k)))
    t1, t2 = max(ends), max(done)
    lat.sort()
    print(json.dumps({'submit_s': t1 - t0, 'total_s': t2 - t0, 'p50': lat[len(lat) // 2], 'p99': lat[int(len(lat) * 0.99)]}))
`;

async function celery(workDir: string): Promise<Result> {
  await ensureRabbitInstalled(log);
  const h = await startRabbit('cluster', workDir, log);
  const dir = join(workDir, 'celery');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tb.py'), celeryApp);
  const workers: ChildProcess[] = [];
  try {
    for (let i = 0; i < workerCount; i++) {
      const env = { ...process.env, BROKER_URL: h.urls[i % h.urls.length]! };
      workers.push(spawn('/usr/bin/python3', ['-m', 'celery', '-A', 'tb', 'worker', '-P', 'threads', '-c', String(concurrency), '-Q', 'tasksbench',
        '--without-gossip', '--without-mingle', '--without-heartbeat', '-n', `w${i}@bench`, '--loglevel', 'WARNING'], { cwd: dir, env, stdio: 'ignore' }));
    }
    await new Promise((r) => setTimeout(r, 8000)); // workers connect and consume
    const cpuBefore = cpuOf(h);
    const r = await run('/usr/bin/python3', ['tb.py', String(taskCount), String(submitters)], { cwd: dir, env: { ...process.env, BROKER_URL: h.urls[0]! }, timeoutMs: phaseTimeoutMs });
    if (r.code !== 0) throw new Error(`celery caller failed: ${r.stderr.slice(-800)}`);
    const cpu = cpuOf(h) - cpuBefore;
    const o = JSON.parse(r.stdout.trim().split('\n').pop()!) as { submit_s: number; total_s: number; p50: number; p99: number };
    return {
      broker: 'Celery 5 rpc:// on RabbitMQ (3 nodes, quorum queue)', submittedPerSec: taskCount / o.submit_s, completedPerSec: taskCount / o.total_s,
      submitP50Ms: o.p50 * 1000, submitP99Ms: o.p99 * 1000, cpuUsPerTask: (cpu * 1e6) / taskCount,
      extra: 'results are transient messages: nothing to retain, no step records',
    };
  } finally {
    for (const w of workers) w.kill('SIGKILL');
    await h.stop();
  }
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'espresso-tasks-bench-'));
  const results: Result[] = [];
  try {
    results.push(await espresso(workDir));
    if (!process.argv.includes('--skip-rabbit')) results.push(await celery(workDir));
  } finally {
    await stopAll();
    rmSync(workDir, { recursive: true, force: true });
  }
  log(`\n${taskCount} tasks, ${submitters} submit loops each waiting for its confirm, ${workerCount} worker processes x ${concurrency}`);
  log('| | submitted/s | completed/s | submit p50 ms | submit p99 ms | broker CPU µs/task |');
  log('|---|---|---|---|---|---|');
  for (const r of results) log(`| ${r.broker} | ${r.submittedPerSec.toFixed(0)} | ${r.completedPerSec.toFixed(0)} | ${r.submitP50Ms.toFixed(1)} | ${r.submitP99Ms.toFixed(1)} | ${r.cpuUsPerTask.toFixed(0)} |`);
  const [e, c] = results;
  if (e !== undefined && c !== undefined) log(`ratio espresso/celery: submitted ${(e.submittedPerSec / c.submittedPerSec).toFixed(2)}x, completed ${(e.completedPerSec / c.completedPerSec).toFixed(2)}x, CPU per task ${(e.cpuUsPerTask / c.cpuUsPerTask).toFixed(2)}x`);
  for (const r of results) log(`${r.broker}: ${r.extra}`);
}

main().catch(async (e: unknown) => {
  process.stderr.write(`bench/tasks: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  await stopAll();
  process.exit(1);
});
