// Deep replicated queue on one node (a real GroupHost: WAL with fdatasync, and a ReplicatedQueue with
// the default shared body budget): publish a backlog of N persistent messages with confirms (a
// window in flight), then drain it with one manual-ack consumer. Prints time, peak RSS per phase and
// the WAL's disk use before and after the drain. Target (issue 4): RSS < 1 GiB for 1,000,000 x 1 KiB.
// With --server: the same over AMQP against a real `espresso server` process (amqplib, confirm
// channel, prefetch + ack multiple), reporting the server process's RSS and its data dir's size.
// Measured 2026-11-23 on the shared 2-core box (other work running), 1M x 1 KiB: in process, publish
// 60 s (16.6k msg/s), peak RSS 662 MiB, drain 31 s (32k msg/s), peak 802 MiB, WAL 1054 -> 50 MiB;
// --server, publish 157 s, peak 695 MiB, drain 92 s, peak 856 MiB (VmHWM 857 MiB), data dir 1058 -> 53 MiB.
// Run: npx tsx bench/deep-queue.ts [--server] [--messages 1000000] [--size 1024] [--window 2000] [--prefetch 2000] [--data-dir DIR]

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { freePort } from '../cluster/ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import { GroupHost } from '../src/cluster/group-host.js';
import { ReplicatedQueue } from '../src/cluster/replicated-queue.js';
import { sharedBodyBudget } from '../src/cluster/body-store.js';
import { wireFieldValues } from '../src/broker/field-values.js';
import type { Delivery } from '../src/broker/queue-backend.js';
import { groupId, nodeId } from '../src/lib/ids.js';
import { defaultQueueConfig } from '../src/queue/index.js';

const { values: opts } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    size: { type: 'string', default: '1024' },
    window: { type: 'string', default: '2000' },
    prefetch: { type: 'string', default: '2000' },
    'data-dir': { type: 'string' },
    server: { type: 'boolean', default: false },
  },
});
const total = Number(opts.messages);
const size = Number(opts.size);
const windowMax = Number(opts.window);
const prefetch = Number(opts.prefetch);
const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(0)} MiB`;

/** Peak RSS sampled every 50 ms (and at each phase end). */
class RssPeak {
  peak = 0;
  private readonly timer = setInterval(() => this.sample(), 50);
  sample(): number {
    const rss = process.memoryUsage().rss;
    this.peak = Math.max(this.peak, rss);
    return rss;
  }
  reset(): void {
    this.peak = 0;
    this.sample();
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

function bodyOf(i: number): Buffer {
  // From the pool (Buffer.alloc makes an ArrayBuffer per message: the bench's own cost would dominate).
  const b = Buffer.allocUnsafe(size).fill(0x61 + (i % 26));
  b.writeUInt32BE(i, 0);
  return b;
}

async function publish(q: ReplicatedQueue): Promise<void> {
  let next = 0;
  let inFlight = 0;
  let failed: unknown;
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      if (failed !== undefined) return reject(failed instanceof Error ? failed : new Error(String(failed)));
      while (inFlight < windowMax && next < total) {
        const i = next++;
        inFlight++;
        q.enqueue({ exchange: '', routingKey: 'deep', properties: { deliveryMode: 2 }, body: bodyOf(i) }).then(
          (o) => {
            if (o !== 'ok') failed = new Error(`message ${i} not confirmed: ${o}`);
            inFlight--;
            if (next === total && inFlight === 0) resolve();
            else pump();
          },
          (e: unknown) => { failed = e; inFlight--; pump(); },
        );
      }
    };
    pump();
  });
}

/** One consumer, manual acks in batches; checks every body's sequence number. */
async function drain(q: ReplicatedQueue): Promise<void> {
  const channel = 'bench/c/1';
  let seen = 0;
  let pending: number[] = [];
  let settling = 0;
  let error: Error | undefined;
  await new Promise<void>((resolve, reject) => {
    const flush = (): void => {
      if (pending.length === 0) return;
      const ids = pending;
      pending = [];
      settling++;
      q.settle(channel, ids).then(
        () => { settling--; if (seen === total && settling === 0 && pending.length === 0) resolve(); },
        (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))),
      );
    };
    const sink = (d: Delivery): void => {
      if (d.message.body.readUInt32BE(0) !== seen || d.message.body.length !== size) error ??= new Error(`delivery ${seen} has the body of ${d.message.body.readUInt32BE(0)}`);
      seen++;
      pending.push(d.msgId);
      if (pending.length >= prefetch / 4 || seen === total) queueMicrotask(flush);
    };
    q.consume({ owner: { node: 'n1', connection: 'bench/c', channel }, consumerTag: 'drain', noAck: false, creditMode: 'auto', prefetch, priority: 0 }, sink)
      .catch((e: unknown) => reject(e instanceof Error ? e : new Error(String(e))));
  });
  if (error !== undefined) throw error;
}

async function main(): Promise<void> {
  const dir = opts['data-dir'] ?? mkdtempSync(join(tmpdir(), 'espresso-deep-'));
  const rss = new RssPeak();
  const host = await GroupHost.start({ nodeId: nodeId('n1'), dataDir: dir, listen: { host: '127.0.0.1', port: 0 }, secret: 'bench' });
  try {
    const q = new ReplicatedQueue({
      name: 'deep', groupId: groupId('q/%2F/deep'), host, node: 'n1', incarnation: 'bench', config: defaultQueueConfig,
      clock: { nowMs: () => Date.now() }, deadLetterExchange: null, deadLetterRoutingKey: null, onDeadLetter: () => undefined,
      fieldValues: wireFieldValues,
    });
    const budget = sharedBodyBudget(host);
    console.log(`deep queue: ${total} x ${size} B persistent, confirms, window ${windowMax}; body budget ${mib(budget.bytesMax)}; data in ${dir}`);
    rss.reset();
    let t0 = performance.now();
    await publish(q);
    const publishS = (performance.now() - t0) / 1000;
    rss.sample();
    const publishPeak = rss.peak;
    const walFull = host.stats().wal;
    console.log(`publish: ${publishS.toFixed(1)} s (${Math.round(total / publishS)} msg/s), peak RSS ${mib(publishPeak)}, ` +
      `RSS now ${mib(process.memoryUsage().rss)}, heap ${mib(process.memoryUsage().heapUsed)}, ready ${q.stats().messagesReady}, ` +
      `bodies in memory ${mib(budget.stats().bytes)} (${budget.stats().residents}), WAL ${mib(walFull.diskBytes)} in ${walFull.segments} segments, fsyncs ${walFull.fsyncs}`);

    rss.reset();
    t0 = performance.now();
    await drain(q);
    const drainS = (performance.now() - t0) / 1000;
    rss.sample();
    const drainPeak = rss.peak;
    // The drain's settles pace snapshots that let the kept log go (the last may still be saving);
    // then compaction deletes the dead segments. Bounded: 100 x 50 ms.
    const gid = groupId('q/%2F/deep');
    for (let k = 0; k < 100 && (host.status(gid)?.firstIndex ?? 0) <= total; k++) await new Promise((r) => setTimeout(r, 50));
    await host.compactLog();
    await host.compactLog();
    const walAfter = host.stats().wal;
    console.log(`drain: ${drainS.toFixed(1)} s (${Math.round(total / drainS)} msg/s), peak RSS ${mib(drainPeak)}, ` +
      `bodies read back from the WAL ${q.bodiesReadBack}, left ${q.stats().messagesReady + q.stats().messagesUnacked}, ` +
      `WAL after ${mib(walAfter.diskBytes)} in ${walAfter.segments} segments`);
    const ok = Math.max(publishPeak, drainPeak) < 1024 * 1024 * 1024;
    console.log(JSON.stringify({
      bench: 'deep-queue', messages: total, bodyBytes: size, publishS, publishMsgPerS: Math.round(total / publishS), publishPeakRssBytes: publishPeak,
      drainS, drainMsgPerS: Math.round(total / drainS), drainPeakRssBytes: drainPeak, walBytesFull: walFull.diskBytes, walBytesAfter: walAfter.diskBytes,
      bodiesReadBack: q.bodiesReadBack, rssUnder1GiB: ok,
    }));
    if (!ok) process.exitCode = 1;
  } finally {
    rss.stop();
    await host.close();
    if (opts['data-dir'] === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

// ---- --server: a real espresso server process over AMQP ----

function rssOf(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  }
  return n;
}

/** Starts `espresso server` from source; resolves with its pid once it logged "node started" (60 s at most). */
async function startServer(dir: string, port: number): Promise<{ pid: number; stop: () => Promise<void> }> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'server', '--port', String(port), '--bind', '127.0.0.1', '--cluster-port', String(await freePort()), '--http-port', '0',
    '--data-dir', dir, '--log-level', 'info'];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready:\n${log.slice(-2000)}`)), 60_000);
    child.stdout!.on('data', (c: Buffer) => {
      log = (log + c.toString()).slice(-100_000);
      if (log.includes('"node started"')) { clearTimeout(timer); resolve(); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${String(code)}:\n${log.slice(-2000)}`)); });
  });
  const stop = (): Promise<void> => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
  return { pid: child.pid!, stop };
}

async function publishAmqp(url: string): Promise<void> {
  const conn = await amqp.connect(url);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue('deep', { durable: true });
  let outstanding = 0;
  let failed: Error | undefined;
  let wake: (() => void) | undefined;
  for (let i = 0; i < total && failed === undefined; i++) {
    outstanding++;
    const more = ch.sendToQueue('deep', bodyOf(i), { persistent: true }, (err) => {
      outstanding--;
      if (err !== null && err !== undefined) failed ??= new Error(`message ${i} nacked`);
      wake?.();
    });
    // Bounded waits: each resumes on a confirm (or a drained socket).
    while (outstanding >= windowMax || !more) {
      await new Promise<void>((r) => { wake = r; if (!more) ch.once('drain', r); });
      wake = undefined;
      if (outstanding < windowMax) break;
    }
  }
  await ch.waitForConfirms();
  if (failed !== undefined) throw failed;
  await conn.close();
}

async function drainAmqp(url: string): Promise<void> {
  const conn = await amqp.connect(url);
  const ch = await conn.createChannel();
  await ch.prefetch(prefetch);
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    void ch.consume('deep', (m) => {
      if (m === null) return reject(new Error('consumer cancelled'));
      if (m.content.readUInt32BE(0) !== seen) return reject(new Error(`delivery ${seen} has the body of ${m.content.readUInt32BE(0)}`));
      seen++;
      if (seen % Math.max(1, prefetch >> 2) === 0 || seen === total) ch.ack(m, true);
      if (seen === total) resolve();
    }, { noAck: false });
  });
  await conn.close();
}

async function mainServer(): Promise<void> {
  const dir = opts['data-dir'] ?? mkdtempSync(join(tmpdir(), 'espresso-deep-srv-'));
  const port = await freePort();
  const server = await startServer(dir, port);
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, rssOf(server.pid, 'VmRSS')); }, 100);
  try {
    console.log(`deep queue over AMQP: ${total} x ${size} B persistent, confirms, window ${windowMax}; server pid ${server.pid}, data in ${dir}`);
    let t0 = performance.now();
    await publishAmqp(url);
    const publishS = (performance.now() - t0) / 1000;
    const publishPeak = Math.max(peak, rssOf(server.pid, 'VmRSS'));
    const diskFull = dirBytes(dir);
    console.log(`publish: ${publishS.toFixed(1)} s (${Math.round(total / publishS)} msg/s), server peak RSS ${mib(publishPeak)}, data dir ${mib(diskFull)}`);
    peak = 0;
    t0 = performance.now();
    await drainAmqp(url);
    const drainS = (performance.now() - t0) / 1000;
    const drainPeak = Math.max(peak, rssOf(server.pid, 'VmRSS'));
    // The freed log goes with the drain's snapshots and the host's deferred compaction (about a second).
    await new Promise((r) => setTimeout(r, 3000));
    const diskAfter = dirBytes(dir);
    const hwm = rssOf(server.pid, 'VmHWM');
    console.log(`drain: ${drainS.toFixed(1)} s (${Math.round(total / drainS)} msg/s), server peak RSS ${mib(drainPeak)}, data dir after ${mib(diskAfter)}; server VmHWM ${mib(hwm)}`);
    console.log(JSON.stringify({
      bench: 'deep-queue-server', messages: total, bodyBytes: size, publishS, publishPeakRssBytes: publishPeak, drainS, drainPeakRssBytes: drainPeak,
      serverHwmBytes: hwm, dataDirBytesFull: diskFull, dataDirBytesAfter: diskAfter, rssUnder1GiB: hwm < 1024 ** 3,
    }));
    if (hwm >= 1024 ** 3) process.exitCode = 1;
  } finally {
    clearInterval(sampler);
    await server.stop();
    if (opts['data-dir'] === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

await (opts.server ? mainServer() : main());
