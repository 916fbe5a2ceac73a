// A durable-task worker process for the process tests: works type 'build' on one node with three
// steps, writing a line per step it actually runs to a log file; with HANG=<step> that step never
// ends (the test kills the process there with kill -9). CONCURRENCY: its prefetch (4). Prints
// 'working' once it consumes.

import { appendFileSync } from 'node:fs';
import { connectTasks } from '../../src/tasks/index.js';

const [url, logFile, hang = ''] = process.argv.slice(2);
const name = process.env['WORKER_NAME'] ?? 'w';
const line = (s: string): void => appendFileSync(logFile!, `${name} ${s}\n`);

const tasks = await connectTasks(url!, { name });
await tasks.work('build', async (task, ctx) => {
  const input = task.input as { n: number };
  const a = await ctx.step('fetch', () => {
    line(`fetch ${task.id} attempt=${ctx.attempt}`);
    return { n: input.n };
  });
  const b = await ctx.step('compile', () => {
    line(`compile ${task.id} attempt=${ctx.attempt}`);
    return a.n * 2;
  });
  const c = await ctx.step('package', async () => {
    line(`package ${task.id} attempt=${ctx.attempt}`);
    if (hang === 'package') await new Promise((r) => setTimeout(r, 600_000));
    return b + 1;
  });
  return { artifact: c };
}, { concurrency: Number(process.env['CONCURRENCY'] ?? '4') });
process.stdout.write('working\n');
process.once('SIGTERM', () => void tasks.close().then(() => process.exit(0)));
