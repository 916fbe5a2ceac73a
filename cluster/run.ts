// One fault run from start to verdict: start the cluster, start the workload, run the nemesis
// schedule, heal everything, stop producing, drain, check. Shared by `npm run chaos` and the short
// version in npm test.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SeededRandom } from '../src/lib/random.js';
import { check, type History, type Verdict } from './checker.js';
import { ClusterHarness } from './harness.js';
import { runNemesis, type NemesisName, type NemesisResult } from './nemesis.js';
import { renderMarkdown, renderSvg, type RunInfo } from './report.js';
import { Workload, defaultWorkloadOptions, type WorkloadOptions } from './workload.js';

export interface RunOptions {
  nodes: number;
  seed: number;
  /** The operations in order; `next` is asked for more until it returns undefined. */
  schedule: { next(elapsedMs: number, random: () => number): NemesisName | undefined };
  holdMs: number;
  /** Quiet time after each operation (the cluster settles; availability is measured across it). */
  quietMs: number;
  warmupMs: number;
  drainTimeoutMs: number;
  queues: number;
  workload?: Partial<Omit<WorkloadOptions, 'urls' | 'queues' | 'log'>>;
  log: (line: string) => void;
  /** Progress line every this many ms (0 = none). */
  progressEveryMs: number;
  keepDir?: boolean;
  useDist?: boolean;
  /** One network namespace per node, kernel-made faults (see harness.ts). */
  netns?: boolean;
}

export interface RunResult {
  verdict: Verdict;
  ops: NemesisResult[];
  history: History;
  markdown: string;
  svg: string;
  dir: string;
  /** Operations that could not run as meant. */
  skipped: string[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** After the schedule: every link healed, every node resumed and running. */
async function healAll(h: ClusterHarness, log: (line: string) => void): Promise<string[]> {
  const problems: string[] = [];
  h.heal();
  for (const n of h.nodes) {
    if (n.state === 'paused') h.resume(n.id);
    if (n.state === 'stopped') {
      try {
        await h.startNode(n.id);
      } catch (e) {
        problems.push(`${n.id} did not start after healing: ${(e as Error).message.split('\n')[0]}`);
        log(problems[problems.length - 1]!);
      }
    }
  }
  return problems;
}

export async function runFaults(o: RunOptions): Promise<RunResult> {
  const keep = o.keepDir ?? process.env['FAULT_KEEP'] === '1';
  const rng = new SeededRandom(o.seed);
  const random = (): number => rng.next();
  const h = await ClusterHarness.start({ nodes: o.nodes, random, keepDir: keep, useDist: o.useDist ?? false, netns: o.netns ?? false });
  o.log(`cluster of ${o.nodes} up in ${h.dir}${h.bed !== undefined ? ` on hosts ${h.nodes.map((n) => `${n.id}=${h.addressOf(n.id)}`).join(' ')}` : ''}`);
  const queues = Array.from({ length: o.queues }, (_, i) => `fault-q${i + 1}`);
  const workload = new Workload({
    ...defaultWorkloadOptions, ...o.workload,
    urls: h.nodes.map((n) => h.amqpUrl(n.id)), queues, log: (l) => o.log(`  client: ${l}`),
  });
  const ops: NemesisResult[] = [];
  const startMs = Date.now();
  const progress = o.progressEveryMs > 0
    ? setInterval(() => o.log(`  t=${((Date.now() - startMs) / 1000).toFixed(0)}s confirmed=${workload.confirmTimes.length} delivered=${workload.deliveries.length} reconnects=${workload.reconnects}`), o.progressEveryMs)
    : undefined;
  try {
    await workload.start();
    await sleep(o.warmupMs);
    for (let name = o.schedule.next(0, random); name !== undefined; name = o.schedule.next(Date.now() - startMs, random)) {
      o.log(`nemesis ${name} ...`);
      const r = await runNemesis(name, { harness: h, random, holdMs: o.holdMs, log: o.log });
      ops.push(r);
      o.log(`nemesis ${name} on ${r.target}: ${((r.endMs - r.startMs) / 1000).toFixed(1)} s${r.skipped !== undefined ? ` (skipped: ${r.skipped})` : ''}${r.problems.length > 0 ? ` problems: ${r.problems.join('; ')}` : ''}`);
      await sleep(o.quietMs);
    }
    const healProblems = await healAll(h, o.log);
    if (healProblems.length > 0) ops.push({ name: 'heal', target: 'all', startMs: Date.now(), endMs: Date.now(), problems: healProblems });
    await sleep(o.quietMs);
    await workload.stopProducers();
    const loadEndMs = Date.now();
    const missing = await workload.drain(o.drainTimeoutMs);
    o.log(`drained: ${missing} confirmed messages still undelivered`);
    await workload.stop();
    const final = await workload.finalDrain();
    o.log(`final drain: ${final.found} messages left in the queues${final.unreachable.length > 0 ? `; could not drain ${final.unreachable.join(',')}` : ''}`);
    const endMs = Date.now();
    const history: History = {
      publishes: workload.publishes, deliveries: workload.deliveries,
      ops: ops.map((r) => ({ name: r.name, target: r.target, startMs: r.startMs, endMs: r.endMs })), startMs, endMs, loadEndMs,
    };
    const verdict = check(history);
    // A kept run keeps its raw history beside the node logs: enough to re-check or dig in.
    if (keep) writeFileSync(join(h.dir, 'history.json'), JSON.stringify(history));
    const info: RunInfo = {
      seed: o.seed, nodes: o.nodes, queues: o.queues,
      producers: o.workload?.producers ?? defaultWorkloadOptions.producers,
      consumers: o.workload?.consumers ?? defaultWorkloadOptions.consumers,
      durationMs: endMs - startMs, reconnects: workload.reconnects, drainMissing: missing,
      finalDrainFound: final.found, undrainable: final.unreachable,
    };
    return {
      verdict, ops, history, dir: h.dir,
      markdown: renderMarkdown(info, verdict, ops, startMs),
      svg: renderSvg(history, workload.confirmTimes),
      skipped: ops.filter((r) => r.skipped !== undefined).map((r) => `${r.name}: ${r.skipped}`),
    };
  } finally {
    if (progress !== undefined) clearInterval(progress);
    await workload.stop().catch(() => undefined);
    await h.close();
  }
}

/** Each named operation once, in order. */
export function fixedSchedule(names: readonly NemesisName[]): RunOptions['schedule'] {
  let i = 0;
  return { next: () => names[i++] };
}

/** Operations drawn at random until `durationMs` has passed. */
export function randomSchedule(names: readonly NemesisName[], durationMs: number): RunOptions['schedule'] {
  return {
    next: (elapsedMs, random) => (elapsedMs >= durationMs ? undefined : names[Math.floor(random() * names.length)]),
  };
}
