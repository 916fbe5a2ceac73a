// What 100,000 retained finished tasks cost one replica of the task groups: heap held by the
// records (after a full GC) and the bytes of their snapshot (what a replica's disk keeps once
// the log before the snapshot is compacted away). Each task: small JSON input, two steps with
// small results, one attempt, succeeded. Every voter holds one replica.
//
//   node --expose-gc --import tsx bench/tasks-retained.ts [--tasks 100000]

import { applyTask, createTaskState, snapshotTasks, type TaskEntry } from '../src/tasks/task-machine.js';

const i = process.argv.indexOf('--tasks');
const count = i >= 0 ? Number(process.argv[i + 1]) : 100_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

type Dist<T> = T extends unknown ? Omit<T, 'at'> : never;
gc();
const before = process.memoryUsage().heapUsed;
const s = createTaskState();
let at = 1_700_000_000_000;
const apply = (e: Dist<TaskEntry>): void => void applyTask(s, { ...e, at: at++ } as TaskEntry);
for (let n = 0; n < count; n++) {
  const id = `${n.toString(16).padStart(8, '0')}-7c1e-4a8e-9d2b-5f0e6a1c3b7d`;
  apply({ k: 'submit', id, type: 'build', vhost: '/', input: { repo: `repo-${n % 100}`, ref: 'main', depth: 1 }, user: 'ci', maxAttempts: 3, retentionMs: 7 * 86_400_000, leaseMs: 60_000 });
  apply({ k: 'dispatch', id, redispatchMs: 10_000 });
  apply({ k: 'dispatched', id, dispatch: 1 });
  apply({ k: 'claim', id, dispatch: 1, worker: 'host-1234-abcdef', node: 'n2' });
  for (const step of ['fetch', 'compile']) {
    apply({ k: 'stepStart', id, attempt: 1, name: step });
    apply({ k: 'stepDone', id, attempt: 1, name: step, result: { ok: true, bytes: n } });
  }
  apply({ k: 'complete', id, attempt: 1, result: { artifact: `s3://bucket/${id}.tar.gz` } });
}
gc();
const heap = process.memoryUsage().heapUsed - before;
const snapshotBytes = Buffer.byteLength(JSON.stringify(snapshotTasks(s)));
const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
process.stdout.write(`${count} finished tasks, one replica: heap ${mib(heap)} (${Math.round(heap / count)} B/task), snapshot ${mib(snapshotBytes)} (${Math.round(snapshotBytes / count)} B/task)\n`);
process.stdout.write(`per 100,000 on a 3-voter cluster: heap ${mib((heap / count) * 100_000 * 3)}, snapshots ${mib((snapshotBytes / count) * 100_000 * 3)}\n`);
