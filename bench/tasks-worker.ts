// A durable-task worker process for bench/tasks.ts: works type 'bench' (one step, then done) on
// one node with the given concurrency and prints `done N` after each completion it committed, so
// the bench counts completions without asking the store.

import { connectTasks } from '../src/tasks/index.js';

const [url, concurrency = '16'] = process.argv.slice(2);
let done = 0;
const tasks = await connectTasks(url!, {
  name: 'bench-worker',
  // After the completion is committed (the store answered the complete report).
  onEvent: (e) => {
    if (e.type === 'task-finished') process.stdout.write(`done ${++done}\n`);
  },
});
await tasks.work('bench', async (task, ctx) => {
  const n = (task.input as { n: number }).n;
  return await ctx.step('double', () => n * 2);
}, { concurrency: Number(concurrency) });
process.stdout.write('working\n');
process.once('SIGTERM', () => void tasks.close().then(() => process.exit(0)));
