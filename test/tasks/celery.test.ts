// Celery 5 (Debian's python3-celery, unmodified) against a 3-node espresso cluster of real
// processes: delay().get() and groups over the rpc:// result backend, chords over the file-system
// result backend (the rpc:// backend cannot run chords: Celery refuses them), retry with countdown,
// and an acks_late task whose worker is killed with SIGKILL mid-task, completed by the other worker.
// Once with the caller and both workers on one node, once with the caller on n1 and the workers
// on n2 and n3. The Debian packages are installed with apt-get when missing; when that cannot be
// done the tests are skipped and say why.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callerPy, tasksPy } from './celery-app.js';
import { ensureCelery, systemPython } from './celery-env.js';
import { startThreeNodes, type ThreeNodes } from './three-nodes.js';

const celery = await ensureCelery((line) => console.log(line));
if (typeof celery === 'string') console.warn(`celery tests SKIPPED: ${celery}`);

const dir = mkdtempSync(join(tmpdir(), 'espresso-celery-'));
let cluster: ThreeNodes;
const children = new Set<ChildProcess>();

interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function python(args: readonly string[], env: Record<string, string>): Proc {
  const child = spawn(systemPython, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env } });
  children.add(child);
  let log = '';
  const append = (c: Buffer): void => {
    log += c.toString('utf8');
    if (log.length > 1_000_000) log = log.slice(-200_000);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    children.delete(child);
    resolve(code);
  }));
  return { child, output: () => log, exited };
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number, proc?: Proc): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${proc === undefined ? '' : `\n--- output ---\n${proc.output().slice(-3000)}`}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Layout {
  name: string;
  /** Node index of the caller and of each of the two workers. */
  caller: number;
  workers: [number, number];
}

const layouts: Layout[] = [
  { name: 'one-node', caller: 0, workers: [0, 0] },
  { name: 'cross-node', caller: 0, workers: [1, 2] },
];

function brokerUrl(node: number): string {
  return `${cluster.urls[node]!}//`;
}

function appEnv(layout: Layout, node: number, backend: 'rpc' | 'file', worker?: string): Record<string, string> {
  const results = join(dir, `results-${layout.name}`);
  mkdirSync(results, { recursive: true });
  return {
    BROKER_URL: brokerUrl(node), RESULT_BACKEND: backend === 'rpc' ? 'rpc://' : `file://${results}`,
    TASK_QUEUE: `celery-${layout.name}-${backend}`, MARK_DIR: join(dir, `marks-${layout.name}`), ...(worker === undefined ? {} : { WORKER_NAME: worker }),
  };
}

async function startWorker(layout: Layout, node: number, backend: 'rpc' | 'file', name: string): Promise<Proc> {
  const p = python(['-m', 'celery', '-A', 'tasks', 'worker', '--pool=solo', '--loglevel=INFO', '-n', `${name}@espresso-test`], appEnv(layout, node, backend, name));
  allWorkers.push(p);
  await waitFor(`celery worker ${name} ready`, () => p.output().includes(' ready.'), 60_000, p);
  return p;
}

/** Every worker process started, for telling "the task never ran" from "its result never came back". */
const allWorkers: Proc[] = [];

/** Runs caller.py for one scenario; its JSON outcome. */
async function callScenario(layout: Layout, backend: 'rpc' | 'file', scenario: string, ...args: string[]): Promise<{ value: unknown; seconds: number }> {
  const p = python(['caller.py', scenario, ...args], appEnv(layout, layout.caller, backend));
  const code = await p.exited;
  const line = p.output().split('\n').find((l) => l.startsWith('RESULT '));
  if (code !== 0 || line === undefined) {
    const last = p.output().trim().split('\n').slice(-1)[0] ?? '';
    const succeeded = allWorkers.reduce((n, w) => n + (w.output().match(/ succeeded in /g)?.length ?? 0), 0);
    throw new Error(`caller ${scenario} (on n${layout.caller + 1}) exited ${String(code)}: ${last} (tasks the workers ran so far: ${succeeded})\n${p.output().slice(-2000)}`);
  }
  return JSON.parse(line.slice('RESULT '.length)) as { value: unknown; seconds: number };
}

beforeAll(async () => {
  if (typeof celery === 'string') return;
  writeFileSync(join(dir, 'tasks.py'), tasksPy);
  writeFileSync(join(dir, 'caller.py'), callerPy);
  cluster = await startThreeNodes('celery');
}, 90_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

for (const layout of layouts) {
  describe.skipIf(typeof celery === 'string')(`Celery ${typeof celery === 'string' ? '' : celery.celery} on espresso, ${layout.name === 'one-node' ? 'caller and workers on one node' : 'caller on n1, workers on n2 and n3'}`, () => {
    const workers: Proc[] = [];
    let chordWorker: Proc;

    beforeAll(async () => {
      mkdirSync(join(dir, `marks-${layout.name}`), { recursive: true });
      const started = await Promise.all([
        startWorker(layout, layout.workers[0], 'rpc', `${layout.name}-a`),
        startWorker(layout, layout.workers[1], 'rpc', `${layout.name}-b`),
        startWorker(layout, layout.workers[1], 'file', `${layout.name}-chords`),
      ]);
      workers.push(started[0], started[1]);
      chordWorker = started[2];
    }, 90_000);

    afterAll(async () => {
      for (const w of [...workers, chordWorker]) w?.child.kill('SIGTERM');
      await Promise.all([...workers, chordWorker].map((w) => w?.exited));
    });

    it('delay().get() returns the result over the rpc:// backend', async () => {
      expect((await callScenario(layout, 'rpc', 'delay')).value).toBe(5);
    }, 90_000);

    it('runs a group and gathers its results in order', async () => {
      expect((await callScenario(layout, 'rpc', 'group')).value).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    }, 90_000);

    it('runs a chord (file-system result backend; rpc:// refuses chords)', async () => {
      expect((await callScenario(layout, 'file', 'chord')).value).toBe(20);
    }, 90_000);

    it('retries a task with countdown until it succeeds', async () => {
      const key = `retry-${layout.name}`;
      const r = await callScenario(layout, 'rpc', 'retry', key);
      expect((r.value as { retries: number }).retries).toBe(2);
      expect(r.seconds).toBeGreaterThanOrEqual(2); // two countdowns of one second
    }, 90_000);

    it('completes an acks_late task on the other worker when its worker is killed with SIGKILL mid-task', async () => {
      const key = `late-${layout.name}`;
      const marks = join(dir, `marks-${layout.name}`);
      const caller = callScenario(layout, 'rpc', 'acks_late', key);
      const startedBy = (): string[] => readdirSync(marks).filter((f) => f.startsWith(`started-${key}-`)).map((f) => f.slice(`started-${key}-`.length));
      await waitFor('a worker to start the slow task', () => startedBy().length > 0, 60_000);
      const victimName = startedBy()[0]!;
      const victim = workers.find((w) => w.output().includes(`${victimName}@espresso-test`))!;
      expect(victim).toBeDefined();
      victim.child.kill('SIGKILL');
      await victim.exited;
      const r = await caller;
      const value = r.value as { worker: string; redelivered: boolean };
      expect(value.worker).not.toBe(victimName);
      expect(value.redelivered).toBe(true);
      expect(startedBy().sort()).toEqual([victimName, value.worker].sort());
      expect(existsSync(join(marks, `started-${key}-${value.worker}`))).toBe(true);
    }, 150_000);
  });
}
