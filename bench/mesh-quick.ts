// Quick mesh-routing throughput on three local `espresso server` processes: 1 KiB persistent
// messages with publisher confirms (window of in-flight publishes) on n1, consumed with manual
// acks on n2, for a queue led by n1 (publisher's node) and by n3 (every call forwarded). Prints
// msg/s and CPU microseconds per message summed over the three processes (/proc/<pid>/stat).
//
//   npx tsx bench/mesh-quick.ts [--seconds 10] [--window 256] [--prefetch 256] [--profile]
//   (--profile: each node writes a .cpuprofile to $TMPDIR/espresso-mesh-profiles when it stops)

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freePort } from '../cluster/ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import amqp from 'amqplib';

const root = new URL('../', import.meta.url).pathname;
const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const seconds = arg('--seconds', 10);
const windowSize = arg('--window', 256);
const prefetch = arg('--prefetch', 256);
const body = Buffer.alloc(1024, 120);
const ticksPerSecond = 100;

interface Proc { name: string; child: ChildProcess; amqpPort: number }

function startNode(name: string, amqpPort: number, clusterPort: number, seeds: string, dataDir: string): Promise<Proc> {
  const profile = process.argv.includes('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${join(tmpdir(), 'espresso-mesh-profiles')}`] : [];
  const child = spawn(process.execPath, [
    ...profile, '--import', tsxLoader, join(root, 'src/cli/main.ts'), 'server', '--node-id', name, '--port', String(amqpPort),
    '--cluster-port', String(clusterPort), '--http-port', '0', '--data-dir', dataDir, '--seeds', seeds, '--log-level', 'warn',
  ], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ESPRESSO_CLUSTER_SECRET: 'bench' } });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready`)), 60_000);
    const probe = setInterval(() => {
      void amqp.connect(`amqp://guest:guest@127.0.0.1:${amqpPort}`).then((c) => {
        clearInterval(probe);
        clearTimeout(timer);
        void c.close();
        resolve({ name, child, amqpPort });
      }, () => undefined);
    }, 200);
    child.once('exit', (code) => { clearInterval(probe); clearTimeout(timer); reject(new Error(`${name} exited ${String(code)}`)); });
  });
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15 of stat)
}

async function run(procs: Proc[], queue: string, seconds: number): Promise<{ rate: number; cpuUsPerMsg: number; sent: number }> {
  const pubConn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${procs[0]!.amqpPort}`);
  const subConn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${procs[1]!.amqpPort}`);
  const pub = await pubConn.createConfirmChannel();
  const sub = await subConn.createChannel();
  await sub.prefetch(prefetch);
  let received = 0;
  await sub.consume(queue, (m) => {
    if (m === null) return;
    received++;
    sub.ack(m);
  });
  const cpu0 = procs.map((p) => cpuTicks(p.child.pid!));
  const start = Date.now();
  let sent = 0;
  let inFlight = 0;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (inFlight < windowSize && Date.now() - start < seconds * 1000) {
        inFlight++;
        sent++;
        pub.sendToQueue(queue, body, { persistent: true }, () => {
          inFlight--;
          pump();
        });
      }
      if (inFlight === 0) resolve();
    };
    pump();
  });
  while (received < sent) await new Promise((r) => setTimeout(r, 20));
  const elapsed = (Date.now() - start) / 1000;
  const cpu = procs.reduce((sum, p, i) => sum + cpuTicks(p.child.pid!) - cpu0[i]!, 0) / ticksPerSecond;
  await pubConn.close();
  await subConn.close();
  return { rate: received / elapsed, cpuUsPerMsg: (cpu * 1e6) / received, sent };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'espresso-mesh-bench-'));
  const names = ['n1', 'n2', 'n3'];
  const amqpPorts = [await freePort(), await freePort(), await freePort()];
  const clusterPorts = [await freePort(), await freePort(), await freePort()];
  const seeds = names.map((n, i) => `${n}@127.0.0.1:${clusterPorts[i]!}`).join(',');
  const procs = await Promise.all(names.map((n, i) => startNode(n, amqpPorts[i]!, clusterPorts[i]!, seeds, join(dir, n))));
  try {
    const c = await amqp.connect(`amqp://guest:guest@127.0.0.1:${amqpPorts[0]!}`);
    const ch = await c.createChannel();
    // Placement spreads preferred leaders n1, n2, n3 in declare order on a fresh cluster.
    for (const q of ['led-by-n1', 'spare-n2', 'led-by-n3']) await ch.assertQueue(q, { durable: true });
    await c.close();
    await new Promise((r) => setTimeout(r, 1500));
    // A short warm-up (JIT, first WAL segments) on a third queue, so the first measured run is not penalised.
    await run(procs, 'spare-n2', 3);
    for (const q of ['led-by-n1', 'led-by-n3']) {
      const r = await run(procs, q, seconds);
      console.log(`${q}: publish on n1, consume on n2, 1 KiB persistent, confirms (window ${windowSize}), manual acks (prefetch ${prefetch}): ` +
        `${Math.round(r.rate)} msg/s, ${Math.round(r.cpuUsPerMsg)} us CPU/msg over 3 nodes (${r.sent} messages)`);
    }
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => new Promise((r) => (p.child.exitCode !== null ? r(null) : p.child.once('exit', r)))));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
