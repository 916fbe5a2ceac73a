// The task REST API on a real node in this process (group host, metadata group, broker, task
// groups, HTTP listener on free ports): the contract's statuses and bodies, permissions of a second
// user, paging, cancel, and server-sent events of a task a worker (the SDK over AMQP) runs.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/broker/auth.js';
import type { BrokerServer } from '../../src/broker/server.js';
import { connectTasks, type Tasks } from '../../src/tasks/index.js';
import { startTaskNode, type TaskNode } from '../tasks/task-node.js';
import { root } from '../cli/cluster-nodes.js';

const tsxLoader = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href;

/** `espresso tasks ...` as a process against this node's HTTP port. */
function cli(args: readonly string[], url = base, onStdout?: (all: string) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, join(root, 'src/cli/main.ts'), 'tasks', ...args, '--url', url], { cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      onStdout?.(stdout);
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // Bounds a hang: each CLI process starts through tsx, which takes seconds on a loaded machine.
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let dir: string;
let node: TaskNode;
let broker: BrokerServer;
let base: string;
const clients: Tasks[] = [];

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const guest = basic('guest', 'guest');

async function call(method: string, path: string, body?: unknown, auth = guest, raw?: string): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(`${base}${path}`, {
    method, headers: { ...(auth !== '' ? { authorization: auth } : {}), 'content-type': 'application/json' },
    ...(raw !== undefined ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, json: text === '' ? null : JSON.parse(text), headers: r.headers };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'espresso-task-rest-'));
  node = await startTaskNode(dir);
  broker = node.broker;
  base = node.base;
  // A second user as the management API would add one: may submit and read 'allowed' only.
  await node.metadata.apply({ kind: 'addUser', name: 'alice', passwordHash: hashPassword('pw'), tags: [] });
  await node.metadata.apply({ kind: 'setPermissions', user: 'alice', vhost: '/', configure: '', write: '^espresso\\.tasks\\.allowed$', read: '^espresso\\.tasks\\.allowed$' });
  const schema = { type: 'object', required: ['repo'], additionalProperties: false, properties: { repo: { type: 'string', minLength: 1 }, depth: { type: 'integer' } } };
  expect((await call('PUT', '/api/tasks/types/%2F/build', { schema, maxAttempts: 2, leaseMs: 5000 })).status).toBe(200);
  expect((await call('PUT', '/api/tasks/types/%2F/allowed', {})).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('task REST API', () => {
  it('submits, reads, pages and cancels', async () => {
    const a = await call('POST', '/api/tasks', { type: 'build', input: { repo: 'x' } });
    expect(a.status).toBe(201);
    expect(a.json).toEqual({ id: expect.any(String), status: 'queued' });
    const b = await call('POST', '/api/tasks', { type: 'build', input: { repo: 'y' }, vhost: '/', id: 'build-y' });
    expect(b.json).toEqual({ id: 'build-y', status: 'queued' });
    // The same id again finds the same task (a retried submit), 200 instead of 201.
    expect((await call('POST', '/api/tasks', { type: 'build', input: { repo: 'y' }, id: 'build-y' })).status).toBe(200);
    const got = await call('GET', `/api/tasks/${a.json.id}`);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ id: a.json.id, type: 'build', vhost: '/', input: { repo: 'x' }, status: 'queued', attempts: [], steps: [], error: null, submittedBy: 'guest' });
    expect(got.json.createdAt).toBeGreaterThan(0);
    const p1 = await call('GET', '/api/tasks?type=build&status=queued&limit=1');
    expect(p1.status).toBe(200);
    expect(p1.json.items).toHaveLength(1);
    expect(p1.json.next).toEqual(expect.any(String));
    const p2 = await call('GET', `/api/tasks?type=build&status=queued&limit=1&after=${encodeURIComponent(p1.json.next)}`);
    expect(p2.json.items).toHaveLength(1);
    expect(p2.json.items[0].id).not.toBe(p1.json.items[0].id);
    const c = await call('DELETE', '/api/tasks/build-y');
    expect(c.status).toBe(200);
    expect(c.json.status).toBe('cancelled');
    const again = await call('DELETE', '/api/tasks/build-y');
    expect(again.status).toBe(409);
    expect(again.json.reason).toBe("task 'build-y' is already cancelled");
  });

  it('answers bad requests with the status and a message naming the problem', async () => {
    const json = await call('POST', '/api/tasks', undefined, guest, '{"type": "build", ');
    expect(json.status).toBe(400);
    expect(json.json.reason).toMatch(/^the body is not valid JSON/);
    const missing = await call('POST', '/api/tasks', { input: {} });
    expect([missing.status, missing.json.problems]).toEqual([400, [{ path: 'type', message: 'is required (a string)' }]]);
    const schema = await call('POST', '/api/tasks', { type: 'build', input: { repo: '', depth: 'deep', x: 1 } });
    expect(schema.status).toBe(400);
    expect(schema.json.problems).toEqual([
      { path: 'input.repo', message: 'must have at least 1 characters' },
      { path: 'input.depth', message: 'must be integer (got string)' },
      { path: 'input.x', message: 'is not allowed' },
    ]);
    expect(schema.json.reason).toMatch(/input does not match the schema of 'build': input.repo must have at least 1 characters; /);
    const unknown = await call('POST', '/api/tasks', { type: 'nosuch', input: {} });
    expect([unknown.status, unknown.json]).toEqual([404, { error: 'not_found', reason: "no task type 'nosuch' in vhost '/'" }]);
    const big = await call('POST', '/api/tasks', { type: 'build', input: { repo: 'x'.repeat(1_050_000) } });
    expect(big.status).toBe(413);
    expect(big.json.reason).toMatch(/^input is \d+ bytes; the limit is 1048576 bytes$/);
    const huge = await call('POST', '/api/tasks', undefined, guest, JSON.stringify({ type: 'build', input: { repo: 'x'.repeat(1_300_000) } }));
    expect(huge.status).toBe(413);
    expect(huge.json.reason).toMatch(/request body above \d+ bytes/);
    expect((await call('GET', '/api/tasks/nosuch')).status).toBe(404);
    const status = await call('GET', '/api/tasks?status=done');
    expect([status.status, status.json.problems]).toEqual([400, [{ path: 'status', message: 'must be one of queued, running, succeeded, failed, cancelled' }]]);
    const badType = await call('PUT', '/api/tasks/types/%2F/t2', { maxAttempts: 0, schema: { type: 'object', oneOf: [] } });
    expect(badType.status).toBe(400);
    expect(badType.json.problems).toEqual([{ path: 'schema.oneOf', message: "keyword 'oneOf' is not supported" }, { path: 'maxAttempts', message: 'must be an integer from 1 to 100' }]);
  });

  it('authenticates with the broker\'s users and authorizes by their vhost permissions', async () => {
    const none = await call('GET', '/api/tasks', undefined, '');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Basic realm="espresso"');
    expect((await call('GET', '/api/tasks', undefined, basic('guest', 'wrong'))).status).toBe(401);
    const alice = basic('alice', 'pw');
    const refused = await call('POST', '/api/tasks', { type: 'build', input: { repo: 'x' } }, alice);
    expect(refused.status).toBe(403);
    expect(refused.json.reason).toBe("user 'alice' has no write permission on task type 'build' (queue 'espresso.tasks.build') in vhost '/'");
    const theirs = await call('POST', '/api/tasks', { type: 'allowed', input: 1 }, alice);
    expect(theirs.status).toBe(201);
    const guests = (await call('GET', '/api/tasks?type=build')).json.items[0].id as string;
    expect((await call('GET', `/api/tasks/${guests}`, undefined, alice)).status).toBe(403);
    expect((await call('DELETE', `/api/tasks/${guests}`, undefined, alice)).status).toBe(403);
    const listed = await call('GET', '/api/tasks', undefined, alice);
    expect(listed.json.items.map((t: { type: string }) => t.type)).toEqual(['allowed']);
    expect((await call('PUT', '/api/tasks/types/%2F/allowed', {}, alice)).status).toBe(403);
  });

  it('streams a task\'s changes as server-sent events until it ends', async () => {
    const { json } = await call('POST', '/api/tasks', { type: 'build', input: { repo: 'sse' } });
    const r = await fetch(`${base}/api/tasks/${json.id}/events`, { headers: { authorization: guest } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const worker = await connectTasks(`amqp://guest:guest@127.0.0.1:${broker.port}`);
    clients.push(worker);
    await worker.work('build', async (task, ctx) => {
      const a = await ctx.step('one', () => 1);
      const b = await ctx.step('two', () => a + 1);
      return { repo: (task.input as { repo: string }).repo, b };
    }, { concurrency: 4 });
    let text = '';
    const decoder = new TextDecoder();
    for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
    const events = text.split('\n\n').filter((e) => e.startsWith('event: task')).map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)) as { status: string; steps: Array<{ name: string; status: string }>; result?: unknown });
    expect(events[0]!.status).toBe('queued');
    expect(events.some((e) => e.status === 'running')).toBe(true);
    const last = events[events.length - 1]!;
    expect(last.status).toBe('succeeded');
    expect(last.result).toEqual({ repo: 'sse', b: 2 });
    expect(last.steps.map((s) => [s.name, s.status])).toEqual([['one', 'succeeded'], ['two', 'succeeded']]);
  }, 30_000);
});

describe('workers through the SDK', () => {
  it('a handler that throws is retried until max attempts, then the task failed with every attempt\'s error', async () => {
    expect((await call('PUT', '/api/tasks/types/%2F/flaky', { maxAttempts: 3, leaseMs: 5000 })).status).toBe(200);
    const worker = await connectTasks(`amqp://guest:guest@127.0.0.1:${broker.port}`);
    clients.push(worker);
    const ran: number[] = [];
    await worker.work('flaky', async (_task, ctx) => {
      await ctx.step('ok', () => 'kept');
      ran.push(ctx.attempt);
      throw new Error(`broken on attempt ${ctx.attempt}`);
    });
    const { json } = await call('POST', '/api/tasks', { type: 'flaky', input: null });
    let t: any;
    for (let i = 0; i < 200 && t?.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      t = (await call('GET', `/api/tasks/${json.id}`)).json;
    }
    expect(t.status).toBe('failed');
    expect(ran).toEqual([1, 2, 3]);
    expect(t.attempts.map((a: { error: { message: string } }) => a.error.message)).toEqual(['broken on attempt 1', 'broken on attempt 2', 'broken on attempt 3']);
    expect(t.error.message).toBe('all 3 attempts failed; the last: broken on attempt 3');
    expect(t.steps).toEqual([expect.objectContaining({ name: 'ok', status: 'succeeded', attempt: 1, result: 'kept' })]);
  }, 30_000);

  it('DELETE of a running task tells its worker: ctx.signal fires and the next step is refused', async () => {
    expect((await call('PUT', '/api/tasks/types/%2F/long', { leaseMs: 3000 })).status).toBe(200);
    const worker = await connectTasks(`amqp://guest:guest@127.0.0.1:${broker.port}`);
    clients.push(worker);
    let aborted: unknown;
    let secondRan = false;
    let started: () => void = () => {};
    const running = new Promise<void>((r) => (started = r));
    let finished: () => void = () => {};
    const ended = new Promise<void>((r) => (finished = r));
    await worker.work('long', async (_task, ctx) => {
      try {
        await ctx.step('wait', async () => {
          started();
          // Until told: the SDK's heartbeat (a third of the lease) hears of the cancel.
          await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r()));
          aborted = ctx.signal.reason;
        });
        await ctx.step('second', () => (secondRan = true));
      } finally {
        finished();
      }
    });
    const { json } = await call('POST', '/api/tasks', { type: 'long', input: {} });
    await running;
    const c = await call('DELETE', `/api/tasks/${json.id}`);
    expect([c.status, c.json.status]).toEqual([200, 'cancelled']);
    await ended;
    expect(String(aborted)).toMatch(/TaskLostError: task .* is no longer this worker's: task '.*' was cancelled/);
    expect(secondRan).toBe(false);
    const t = (await call('GET', `/api/tasks/${json.id}`)).json;
    expect(t.status).toBe('cancelled');
    expect(t.attempts[0].error.message).toBe('cancelled while running');
  }, 30_000);
});

describe('espresso tasks (the CLI over the REST API)', () => {
  it('defines, submits, watches to the end, lists, shows and cancels', async () => {
    const schemaFile = join(dir, 'schema.json');
    writeFileSync(schemaFile, JSON.stringify({ type: 'object', required: ['n'], properties: { n: { type: 'integer' } } }));
    const def = await cli(['define', 'clitask', '--schema', schemaFile, '--max-attempts', '2', '--retention', '1h', '--lease', '10s']);
    expect([def.code, def.stdout]).toEqual([0, "task type 'clitask' defined in vhost '/'\n"]);
    const sub = await cli(['submit', 'clitask', '{"n": 4}']);
    expect(sub.code).toBe(0);
    const id = sub.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    // The worker starts once watch showed the queued task, so watch sees it run.
    let startWorker: () => void = () => {};
    const watchedFirst = new Promise<void>((r) => (startWorker = r));
    const watching = cli(['watch', id], base, (out) => {
      if (out.includes('\n')) startWorker();
    });
    await watchedFirst;
    const worker = await connectTasks(`amqp://guest:guest@127.0.0.1:${broker.port}`);
    clients.push(worker);
    await worker.work('clitask', async (task, ctx) => {
      await ctx.step('first', () => new Promise((r) => setTimeout(r, 300)));
      return ctx.step('second', () => (task.input as { n: number }).n * 10);
    });
    const watched = await watching;
    expect(watched.code).toBe(0);
    expect(watched.stdout.split('\n')[0]).toBe('[--------------------] 0/0 steps  queued     attempt 0');
    const lines = watched.stdout.trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(/^\[#{20}\] 2\/2 steps  succeeded  attempt 1 \(.+ on n1\)  first ✓ second ✓$/);
    expect(lines.some((l) => /^\[#{0,19}-+\] \d\/\d steps  running/.test(l))).toBe(true);
    const status = await cli(['status', id]);
    expect(JSON.parse(status.stdout)).toMatchObject({ id, status: 'succeeded', result: 40 });
    const listed = await cli(['list', '--type', 'clitask']);
    expect(listed.stdout).toMatch(new RegExp(`^${id}  clitask  succeeded  attempts=1  steps=2/2  `));
    const cancel = await cli(['cancel', id]);
    expect([cancel.code, cancel.stderr]).toEqual([1, `espresso tasks: 409 task '${id}' is already succeeded\n`]);
  }, 300_000);

  it('exits 1 naming each bad field, 69 when the node cannot be reached, 64 on a bad command line', async () => {
    const bad = await cli(['submit', 'clitask', '{"n": "four", "m": 1}']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("espresso tasks: 400 input does not match the schema of 'clitask': input.n must be integer (got string)\n  input.n: must be integer (got string)\n");
    const down = await cli(['status', 'x'], 'http://127.0.0.1:1');
    expect(down.code).toBe(69);
    expect(down.stderr).toMatch(/^espresso: cannot reach http:\/\/127.0.0.1:1: /);
    const usage = await cli(['submit', 'clitask']);
    expect([usage.code, usage.stderr]).toEqual([64, "espresso: 'espresso tasks submit' needs TYPE and JSON (or @file)\n"]);
  }, 180_000);
});
