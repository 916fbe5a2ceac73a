// Task records are durable: a node stopped and started again on its data directory (its task
// groups replayed from the write-ahead log) has every record as it was, and a
// worker finishes the unfinished ones from their last committed step.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectTasks, type Tasks, type TaskView } from '../../src/tasks/index.js';
import { startTaskNode, type TaskNode } from './task-node.js';

const dirs: string[] = [];
const nodes: TaskNode[] = [];
const clients: Tasks[] = [];

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  for (const n of nodes) await n.stop().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function waitFor(t: Tasks, id: string, status: string): Promise<TaskView> {
  for (let i = 0; i < 300; i++) {
    const r = await t.get('job', id);
    if (r.status === status) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`task ${id} never ${status}`);
}

describe('task records across a restart of the node', () => {
  it('keeps finished and unfinished records, and the next worker resumes after the last committed step', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-task-restart-'));
    dirs.push(dir);
    let node = await startTaskNode(dir);
    nodes.push(node);
    const a = await connectTasks(node.amqpUrl);
    await a.define('job', { maxAttempts: 5, leaseMs: 2000 });
    const ran: string[] = [];
    let release: () => void = () => {};
    const hold = new Promise<void>((r) => (release = r));
    let reached: () => void = () => {};
    const atSecond = new Promise<void>((r) => (reached = r));
    await a.work('job', async (task, ctx) => {
      const n = (task.input as { n: number }).n;
      await ctx.step('first', () => ran.push(`first ${n}`));
      if (n === 2) {
        reached();
        await hold; // the node stops meanwhile
      }
      await ctx.step('second', () => ran.push(`second ${n}`));
      return n;
    });
    const one = await a.submit('job', { n: 1 });
    const done = await waitFor(a, one.id, 'succeeded');
    const two = await a.submit('job', { n: 2 });
    await atSecond;
    const before = await a.get('job', two.id);
    await node.stop();
    nodes.pop();
    release(); // its next report finds no connection: the attempt is lost, not finished
    await a.close();

    node = await startTaskNode(dir);
    nodes.push(node);
    const b = await connectTasks(node.amqpUrl);
    clients.push(b);
    expect(await b.get('job', one.id)).toEqual(done);
    const after = await b.get('job', two.id);
    expect(after.steps).toEqual(before.steps);
    expect(after.createdAt).toBe(before.createdAt);
    await b.work('job', async (task, ctx) => {
      const n = (task.input as { n: number }).n;
      await ctx.step('first', () => ran.push(`first ${n} again`));
      await ctx.step('second', () => ran.push(`second ${n}`));
      return n * 100;
    });
    const finished = await waitFor(b, two.id, 'succeeded');
    expect(finished.result).toBe(200);
    expect(ran).toEqual(['first 1', 'second 1', 'first 2', 'second 2']);
    expect(finished.attempts).toHaveLength(2);
  }, 60_000);
});
