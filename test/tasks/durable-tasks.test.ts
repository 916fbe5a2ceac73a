// Durable tasks on a 3-node cluster of real processes: a task submitted on n1 (over AMQP and over
// REST) is worked by a worker process on n3 and read (and watched) on n2; a worker killed with kill -9 in the middle of a task is
// replaced by another on n1 that resumes after the last finished step (no finished step runs
// twice, both owners recorded); bad submissions get the status that names the problem.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTasks, TaskRefusedError, type Tasks, type TaskView } from '../../src/tasks/index.js';
import { eventually, root } from '../cli/cluster-nodes.js';
import { startThreeNodes, type ThreeNodes } from './three-nodes.js';

const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const workerScript = join(root, 'test/tasks/task-worker-proc.ts');

const schema = { type: 'object', required: ['n'], additionalProperties: false, properties: { n: { type: 'integer', minimum: 0 } } };
let cluster: ThreeNodes;
let dir: string;
const clients: Tasks[] = [];
const workers: ChildProcess[] = [];

beforeAll(async () => {
  cluster = await startThreeNodes('tasks');
  dir = mkdtempSync(join(tmpdir(), 'espresso-tasks-log-'));
  const t = await client(0);
  await t.define('build', { schema, maxAttempts: 3, leaseMs: 4000 });
}, 90_000);

afterAll(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function client(i: number): Promise<Tasks> {
  const t = await connectTasks(cluster.urls[i]!);
  clients.push(t);
  return t;
}

function startWorker(node: number, name: string, logFile: string, hang = '', concurrency = 4): { child: ChildProcess; ready: Promise<void>; output: () => string } {
  const child = spawn(process.execPath, ['--import', tsxLoader, workerScript, cluster.urls[node]!, logFile, hang], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WORKER_NAME: name, CONCURRENCY: String(concurrency) },
  });
  workers.push(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${name} not ready:\n${out}`)), 30_000);
    child.stdout!.on('data', () => {
      if (out.includes('working\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`worker ${name} exited with ${String(code)}:\n${out}`)));
  });
  ready.catch(() => undefined);
  return { child, ready, output: () => out };
}

async function until(t: Tasks, id: string, what: string, check: (r: TaskView) => boolean, timeoutMs = 30_000): Promise<TaskView> {
  let last: TaskView | undefined;
  await eventually(`task ${id} ${what}`, async () => {
    last = await t.get('build', id);
    return check(last);
  }, timeoutMs);
  return last!;
}

describe('durable tasks on three nodes', () => {
  it('a task submitted on n1 is worked on n3 and read on n2', async () => {
    const n1 = await client(0);
    const log = join(dir, 'first.log');
    writeFileSync(log, '');
    const w = startWorker(2, 'w3', log);
    await w.ready;
    const { id, status } = await n1.submit('build', { n: 20 });
    expect(status).toBe('queued');
    const n2 = await client(1);
    const done = await until(n2, id, 'succeeded', (r) => r.status === 'succeeded');
    expect(done.result).toEqual({ artifact: 41 });
    expect(done.steps.map((s) => [s.name, s.status, s.result])).toEqual([['fetch', 'succeeded', { n: 20 }], ['compile', 'succeeded', 40], ['package', 'succeeded', 41]]);
    expect(done.attempts).toHaveLength(1);
    expect(done.attempts[0]!.node).toBe('n3');
    expect(done.createdAt).toBeLessThanOrEqual(done.updatedAt);
    w.child.kill('SIGTERM');
  });

  it('over REST: submitted on n1, worked on n3, read and watched (server-sent events) on n2', async () => {
    const http = (i: number): string => `http://127.0.0.1:${cluster.nodes[i]!.httpPort()}`;
    const auth = { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` };
    const post = await fetch(`${http(0)}/api/tasks`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'build', input: { n: 3 } }) });
    expect(post.status).toBe(201);
    const { id } = (await post.json()) as { id: string };
    const events = await fetch(`${http(1)}/api/tasks/${id}/events`, { headers: auth });
    expect(events.status).toBe(200);
    const log = join(dir, 'rest.log');
    writeFileSync(log, '');
    const w = startWorker(2, 'wr', log);
    await w.ready;
    let text = '';
    const decoder = new TextDecoder();
    for await (const chunk of events.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
    const seen = text.split('\n\n').filter((e) => e.startsWith('event: task')).map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)) as TaskView);
    expect(seen[0]!.status).toBe('queued');
    expect(seen[seen.length - 1]!.status).toBe('succeeded');
    const got = await fetch(`${http(1)}/api/tasks/${id}`, { headers: auth });
    const record = (await got.json()) as TaskView;
    expect(record).toMatchObject({ id, status: 'succeeded', result: { artifact: 7 } });
    expect(record.attempts.map((a) => a.node)).toEqual(['n3']);
    const wrong = await fetch(`${http(1)}/api/tasks/${id}`, { headers: { authorization: `Basic ${Buffer.from('guest:nope').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    const bad = await fetch(`${http(1)}/api/tasks`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"type":' });
    expect(bad.status).toBe(400);
    w.child.kill('SIGTERM');
  });

  it('kill -9 of a worker mid-task: another resumes after the last finished step, both owners recorded', async () => {
    const log = join(dir, 'takeover.log');
    writeFileSync(log, '');
    const a = startWorker(2, 'wa', log, 'package');
    await a.ready;
    const n1 = await client(0);
    const { id } = await n1.submit('build', { n: 5 });
    await until(n1, id, 'runs its package step', (r) => r.steps.some((s) => s.name === 'package' && s.status === 'running'));
    a.child.kill('SIGKILL');
    const b = startWorker(0, 'wb', log);
    await b.ready;
    const done = await until(n1, id, 'succeeded after the takeover', (r) => r.status === 'succeeded', 45_000);
    expect(done.result).toEqual({ artifact: 11 });
    const lines = readFileSync(log, 'utf8').trim().split('\n').filter((l) => l.includes(id));
    expect(lines.filter((l) => l.includes('fetch'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('compile'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('package')).map((l) => l.split(' ')[0])).toEqual(['wa', 'wb']);
    expect(done.attempts.map((x) => x.node)).toEqual(['n3', 'n1']);
    expect(done.attempts[0]!.error?.message).toMatch(/lost the task|lease expired/);
    expect(done.steps.find((s) => s.name === 'compile')!.attempt).toBe(1);
    expect(done.steps.find((s) => s.name === 'package')!.attempt).toBe(2);
    b.child.kill('SIGTERM');
  }, 90_000);

  it('a hung worker (SIGSTOP) is released by its lease and another finishes the task', async () => {
    const log = join(dir, 'lease.log');
    writeFileSync(log, '');
    // Prefetch 1: a hung worker with room for more would take the new dispatch too, which then
    // waits for the broker to drop its connection (AMQP heartbeat), not for the lease.
    const a = startWorker(1, 'wh', log, 'package', 1);
    await a.ready;
    const n1 = await client(0);
    const { id } = await n1.submit('build', { n: 7 });
    await until(n1, id, 'runs its package step', (r) => r.steps.some((s) => s.name === 'package' && s.status === 'running'));
    a.child.kill('SIGSTOP');
    try {
      const b = startWorker(0, 'wl', log);
      await b.ready;
      const done = await until(n1, id, 'succeeded after the lease ran out', (r) => r.status === 'succeeded', 30_000);
      expect(done.result).toEqual({ artifact: 15 });
      expect(done.attempts.map((x) => x.node)).toEqual(['n2', 'n1']);
      expect(done.attempts[0]!.error?.message).toMatch(/lease expired: no word from worker .* on node 'n2' for 4000 ms/);
      const lines = readFileSync(log, 'utf8').trim().split('\n').filter((l) => l.includes(id));
      expect(lines.filter((l) => l.includes('compile'))).toHaveLength(1);
      b.child.kill('SIGTERM');
    } finally {
      a.child.kill('SIGCONT');
      a.child.kill('SIGKILL');
    }
  }, 90_000);

  it('retention prunes finished tasks and only those', async () => {
    const n3 = await client(2);
    await n3.define('short', { retentionMs: 1500, leaseMs: 2000 });
    const working = await n3.work('short', async () => 'done');
    const { id: finished } = await n3.submit('short', {});
    await eventually('the short task succeeded', async () => (await n3.get('short', finished)).status === 'succeeded');
    await working.stop();
    const { id: waiting } = await n3.submit('short', {});
    await eventually('the finished task is pruned', async () => {
      const e = await n3.get('short', finished).then(() => null, (x: unknown) => x);
      return e instanceof TaskRefusedError && e.status === 404;
    }, 20_000);
    // Well past its own age, the queued task is still there.
    await new Promise((r) => setTimeout(r, 2000));
    expect((await n3.get('short', waiting)).status).toBe('queued');
  }, 60_000);

  it('refuses bad submissions with the status that names the problem', async () => {
    const n2 = await client(1);
    const refusal = async (p: Promise<unknown>): Promise<TaskRefusedError> => {
      const e = await p.then(() => undefined, (x: unknown) => x);
      expect(e).toBeInstanceOf(TaskRefusedError);
      return e as TaskRefusedError;
    };
    const bad = await refusal(n2.submit('build', { n: -1, extra: 1 }));
    expect(bad.status).toBe(400);
    expect(bad.problems).toEqual([{ path: 'input.n', message: 'must be >= 0' }, { path: 'input.extra', message: 'is not allowed' }]);
    const unknown = await refusal(n2.submit('nosuch', {}));
    expect([unknown.status, unknown.reason]).toEqual([404, "no task type 'nosuch' in vhost '/'"]);
    const big = await refusal(n2.submit('build', { n: 1, pad: 'x'.repeat(1_100_000) }));
    expect(big.status).toBe(413);
    expect(big.reason).toMatch(/limit is 1048576 bytes/);
  });

  // Last: it leaves the cluster with two nodes.
  it('kill -9 of the worker\'s node mid-task: a worker on n1 resumes after the last finished step', async () => {
    const log = join(dir, 'node-kill.log');
    writeFileSync(log, '');
    const a = startWorker(2, 'wn', log, 'package', 1);
    await a.ready;
    const n1 = await client(0);
    const { id } = await n1.submit('build', { n: 9 });
    await until(n1, id, 'runs its package step on n3', (r) => r.steps.some((s) => s.name === 'package' && s.status === 'running'));
    await cluster.kill(2);
    const started = Date.now();
    const b = startWorker(0, 'wm', log);
    await b.ready;
    const done = await until(n1, id, 'succeeded after its worker\'s node died', (r) => r.status === 'succeeded', 60_000);
    process.stdout.write(`takeover after kill -9 of the worker's node: ${Date.now() - started} ms\n`);
    expect(done.result).toEqual({ artifact: 19 });
    expect(done.attempts.map((x) => x.node)).toEqual(['n3', 'n1']);
    const lines = readFileSync(log, 'utf8').trim().split('\n').filter((l) => l.includes(id));
    expect(lines.filter((l) => l.includes('fetch'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('compile'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('package')).map((l) => l.split(' ')[0])).toEqual(['wn', 'wm']);
    a.child.kill('SIGKILL');
    b.child.kill('SIGTERM');
  }, 120_000);
});
