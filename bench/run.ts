// Runs one scenario against one running broker: declares its queues, starts the worker threads,
// drives the phases (full load, then a fixed lower rate; or publish-then-drain for the backlog),
// prints a progress line per second, and turns counters, histograms and tallies into a result.

import { Worker } from 'node:worker_threads';
import * as amqp from 'amqplib';
import type { BenchArgs } from './args.js';
import { sampleProcess, sleep, type BrokerHandle } from './broker-process.js';
import type { BrokerResult, Observation, ProcessUsage } from './report.js';
import { exchangeName, isRpc, queueName, queuesOfConsumer, queuesOfPublisher, rpcMethod, type Scenario } from './scenarios.js';
import { checkDeliveries } from './delivery-check.js';
import { cpuSecondsPer100k, mergeHistograms, perSecond, summarize, type LatencySummary } from './stats.js';
import { Counter, counterSlots, type DoneMessage, type FromWorker, type ToWorker, type WorkerSpec } from './worker-protocol.js';

const workerUrl = new URL('./worker.ts', import.meta.url);
const readyTimeoutMs = 60_000;
const settleTimeoutMs = 60_000;
/** A drain ends when every expected delivery arrived or nothing arrived for this long. */
const drainIdleMs = 10_000;
const rpcWindowPerClient = 8;
/** A phase fails when nothing was confirmed for this long while publishing. */
const stallMs = 30_000;

interface LiveWorker {
  spec: WorkerSpec;
  worker: Worker;
  counters: Float64Array;
  inbox: FromWorker[];
  waiters: Array<() => void>;
}

function startWorker(spec: WorkerSpec): LiveWorker {
  // tsx's loader hooks do not reach worker threads on Node 20: the thread registers them itself
  // before importing the TypeScript worker.
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(workerUrl.href)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: spec });
  const live: LiveWorker = { spec, worker, counters: new Float64Array(spec.counters), inbox: [], waiters: [] };
  worker.on('message', (m: FromWorker) => {
    live.inbox.push(m);
    for (const w of live.waiters.splice(0)) w();
  });
  worker.on('error', (e) => {
    live.inbox.push({ ev: 'error', message: e.message });
    for (const w of live.waiters.splice(0)) w();
  });
  return live;
}

/** Waits for an event of kind `ev` from the worker; an 'error' event or the timeout throws. */
async function expectEvent<E extends FromWorker['ev']>(w: LiveWorker, ev: E, timeoutMs: number): Promise<Extract<FromWorker, { ev: E }>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const i = w.inbox.findIndex((m) => m.ev === ev || m.ev === 'error');
    if (i >= 0) {
      const m = w.inbox.splice(i, 1)[0] as FromWorker;
      if (m.ev === 'error') throw new Error(`${w.spec.role} ${w.spec.id}: ${m.message}`);
      return m as Extract<FromWorker, { ev: E }>;
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`${w.spec.role} ${w.spec.id}: no '${ev}' within ${timeoutMs} ms`);
    await new Promise<void>((r) => {
      w.waiters.push(r);
      setTimeout(r, Math.min(left, 1000));
    });
  }
}

const send = (ws: readonly LiveWorker[], m: ToWorker): void => ws.forEach((w) => w.worker.postMessage(m));
const sum = (ws: readonly LiveWorker[], c: Counter): number => ws.reduce((s, w) => s + (w.counters[c] ?? 0), 0);

function queueOptions(s: Scenario, handle: BrokerHandle): amqp.Options.AssertQueue {
  if (!s.durable) return { durable: false, arguments: { 'x-queue-type': 'classic' } };
  const args: Record<string, unknown> = { 'x-queue-type': 'quorum' };
  if (handle.topology === 'cluster') args['x-quorum-initial-group-size'] = 3;
  return { durable: true, arguments: args };
}

/** Declares the scenario's queues (through node i mod n, so leaders spread) and its fanout exchange. */
async function declareTopology(s: Scenario, handle: BrokerHandle, log: (l: string) => void): Promise<amqp.ChannelModel[]> {
  const conns = await Promise.all(handle.urls.map((u) => amqp.connect(u)));
  const chans = await Promise.all(conns.map((c) => c.createChannel()));
  const opts = queueOptions(s, handle);
  const declares: Array<Promise<unknown>> = [];
  // The SDK's servers declare their request queue themselves, as in use.
  for (let q = 0; q < s.queues && s.kind !== 'rpc-sdk'; q++) {
    const ch = chans[q % chans.length];
    if (ch !== undefined) declares.push(ch.assertQueue(queueName(s, q), opts));
  }
  await Promise.all(declares);
  const ex = exchangeName(s);
  const ch0 = chans[0];
  if (ex !== '' && ch0 !== undefined) {
    await ch0.assertExchange(ex, 'fanout', { durable: true });
    await Promise.all(Array.from({ length: s.queues }, (_, q) => ch0.bindQueue(queueName(s, q), ex, '')));
  }
  log(`${handle.broker}: declared ${s.queues} queue(s)${ex === '' ? '' : ` bound to ${ex}`}`);
  return conns;
}

function specs(s: Scenario, handle: BrokerHandle, args: BenchArgs, bodyBytes: number, maxSeq: number): WorkerSpec[] {
  const base = { bodyBytes, persistent: s.durable, prefetch: args.prefetch, maxSeq, settleTimeoutMs, exchange: '' };
  const url = (i: number): string => handle.urls[i % handle.urls.length] ?? '';
  const counters = (): SharedArrayBuffer => new SharedArrayBuffer(8 * counterSlots);
  if (s.kind === 'rpc-sdk') {
    // One server on node 2 (concurrency above any caller count), the callers on node 1: every reply crosses nodes.
    const method = [rpcMethod(s)];
    return [
      { ...base, role: 'sdk-server', id: 0, url: url(1), targets: method, queueIndexes: [0], window: Math.max(32, 2 * s.publishers), counters: counters() },
      { ...base, role: 'sdk-caller', id: 0, url: url(0), targets: method, queueIndexes: [0], window: s.publishers, counters: counters() },
    ];
  }
  const out: WorkerSpec[] = [];
  for (let c = 0; c < s.consumers; c++) {
    const qs = s.kind === 'rpc' ? [0] : queuesOfConsumer(s.queues, s.consumers, c);
    const role = s.kind === 'rpc' ? 'rpc-server' : 'consumer';
    out.push({ ...base, role, id: c, url: url(c + 1), targets: qs.map((q) => queueName(s, q)), queueIndexes: qs, window: args.window, counters: counters() });
  }
  for (let p = 0; p < s.publishers; p++) {
    const qs = s.routing === 'fanout' ? [0] : queuesOfPublisher(s.queues, s.publishers, p);
    const targets = s.routing === 'fanout' ? [''] : qs.map((q) => queueName(s, q));
    const role = s.kind === 'rpc' ? 'rpc-client' : 'publisher';
    const window = s.kind === 'rpc' ? rpcWindowPerClient : args.window;
    out.push({ ...base, role, id: p, url: url(p), targets, queueIndexes: qs, exchange: exchangeName(s), window, counters: counters() });
  }
  return out;
}

export interface RunContext {
  args: BenchArgs;
  log: (line: string) => void;
}

interface Sampler {
  stop(): ProcessUsage[];
}

/** Samples the broker's processes and prints progress once a second until stopped. */
function startSampler(handle: BrokerHandle, s: Scenario, ws: readonly LiveWorker[], phaseName: () => string, log: (l: string) => void): Sampler {
  const startCpu = handle.processes.map((p) => sampleProcess(p.pid)?.cpuSeconds ?? 0);
  const peak = handle.processes.map((p) => sampleProcess(p.pid)?.rssBytes ?? 0);
  const t0 = Date.now();
  let last = { t: t0, pub: 0, conf: 0, del: 0, cpu: startCpu.reduce((a, b) => a + b, 0), gen: process.cpuUsage() };
  const tick = (): void => {
    const now = Date.now();
    const samples = handle.processes.map((p) => sampleProcess(p.pid));
    samples.forEach((x, i) => (peak[i] = Math.max(peak[i] ?? 0, x?.rssBytes ?? 0)));
    const cpu = samples.reduce((a, x) => a + (x?.cpuSeconds ?? 0), 0);
    const cur = { t: now, pub: sum(ws, Counter.Published), conf: sum(ws, Counter.Confirmed), del: sum(ws, Counter.Delivered), cpu, gen: process.cpuUsage() };
    const dt = (now - last.t) / 1000;
    const genCpu = (cur.gen.user + cur.gen.system - last.gen.user - last.gen.system) / 1e6;
    const rss = samples.reduce((a, x) => a + (x?.rssBytes ?? 0), 0);
    log(`[${handle.broker} ${s.name} ${phaseName()} ${Math.round((now - t0) / 1000)}s] pub ${Math.round((cur.pub - last.pub) / dt)}/s conf ${Math.round((cur.conf - last.conf) / dt)}/s deliv ${Math.round((cur.del - last.del) / dt)}/s | broker CPU ${Math.round(((cur.cpu - last.cpu) / dt) * 100)}% RSS ${Math.round(rss / 1048576)} MiB | generator CPU ${Math.round((genCpu / dt) * 100)}%${sum(ws, Counter.Blocked) > 0 ? ' | BLOCKED by broker' : ''}`);
    last = cur;
  };
  const timer = setInterval(tick, 1000);
  return {
    stop: () => {
      clearInterval(timer);
      return handle.processes.map((p, i) => {
        const x = sampleProcess(p.pid);
        return { name: p.name, pid: p.pid, cpuSeconds: (x?.cpuSeconds ?? 0) - (startCpu[i] ?? 0), peakRssBytes: Math.max(peak[i] ?? 0, x?.rssBytes ?? 0) };
      });
    },
  };
}

/** Waits until `target` deliveries arrived or none arrived for drainIdleMs; bounded by maxMs. */
async function drain(consumers: readonly LiveWorker[], target: number, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let seen = sum(consumers, Counter.Delivered);
  let lastProgress = Date.now();
  while (Date.now() < deadline && seen < target && Date.now() - lastProgress < drainIdleMs) {
    await sleep(50);
    const now = sum(consumers, Counter.Delivered);
    if (now > seen) lastProgress = Date.now();
    seen = now;
  }
}

/** Pauses the publishers when no confirm arrived for stallMs, remembering why. */
function watchStall(pubs: readonly LiveWorker[], pause: () => void): { stop(): void; why: string | undefined } {
  let last = sum(pubs, Counter.Confirmed);
  let lastMoveMs = Date.now();
  const state = {
    why: undefined as string | undefined,
    stop: () => clearInterval(timer),
  };
  const timer = setInterval(() => {
    const now = sum(pubs, Counter.Confirmed);
    if (now !== last) {
      last = now;
      lastMoveMs = Date.now();
    } else if (Date.now() - lastMoveMs > stallMs && state.why === undefined) {
      const blocked = sum(pubs, Counter.Blocked) > 0 ? ' (connection blocked by the broker: memory or disk alarm)' : '';
      state.why = `publishing stalled: nothing confirmed for ${stallMs / 1000} s${blocked}`;
      pause();
    }
  }, 1000);
  return state;
}

interface PhaseOutcome {
  /** From the start until the last publish was confirmed. */
  publishMs: number;
  /** From the start until the last delivery (drain included). */
  ms: number;
  confirmed: number;
  delivered: number;
}

/** One publishing phase: start, run `seconds` (or until each publisher sent maxMessages), pause, drain. */
async function phase(pubs: readonly LiveWorker[], cons: readonly LiveWorker[], n: number, ratePerSec: number | undefined, seconds: number, maxMessages: number | undefined, fanout: number): Promise<PhaseOutcome> {
  const conf0 = sum(pubs, Counter.Confirmed);
  const del0 = sum(cons, Counter.Delivered);
  const t0 = Date.now();
  const perPublisher = ratePerSec === undefined ? undefined : ratePerSec / pubs.length;
  send(pubs, { cmd: 'phase', phase: n, ratePerSec: perPublisher, maxMessages });
  const paused = Promise.all(pubs.map((w) => expectEvent(w, 'paused', seconds * 1000 + settleTimeoutMs + 5000)));
  // A count-bounded phase (the backlog) is still stopped after `seconds`.
  const stop = setTimeout(() => send(pubs, { cmd: 'pause' }), seconds * 1000);
  const stalled = watchStall(pubs, () => send(pubs, { cmd: 'pause' }));
  await paused.finally(() => {
    clearTimeout(stop);
    stalled.stop();
  });
  if (stalled.why !== undefined) throw new Error(stalled.why);
  const confirmed = sum(pubs, Counter.Confirmed) - conf0;
  const publishMs = Date.now() - t0;
  if (cons.length > 0) await drain(cons, del0 + confirmed * fanout, seconds * 1000 + settleTimeoutMs);
  return { publishMs, ms: Date.now() - t0, confirmed, delivered: sum(cons, Counter.Delivered) - del0 };
}

/** Collects every worker's final report, then ends the threads. */
async function finishWorkers(ws: readonly LiveWorker[]): Promise<DoneMessage[]> {
  send(ws, { cmd: 'finish' });
  try {
    return await Promise.all(ws.map((w) => expectEvent(w, 'done', 30_000)));
  } finally {
    await Promise.all(ws.map((w) => w.worker.terminate()));
  }
}

/** Confirmed messages each queue should have received, per the publishers' own confirm counts. */
function expectedPerQueue(s: Scenario, pubs: readonly LiveWorker[], done: readonly DoneMessage[]): number[] {
  const expected = new Array<number>(s.queues).fill(0);
  pubs.forEach((w, i) => {
    const confirmed = done[i]?.confirmedPerTarget ?? [];
    if (isRpc(s)) expected[0] = (expected[0] ?? 0) + (w.counters[Counter.Published] ?? 0);
    else if (s.routing === 'fanout') for (let q = 0; q < s.queues; q++) expected[q] = (expected[q] ?? 0) + (confirmed[0] ?? 0);
    else w.spec.queueIndexes.forEach((q, t) => (expected[q] = (expected[q] ?? 0) + (confirmed[t] ?? 0)));
  });
  return expected;
}

async function queueDepths(s: Scenario, conn: amqp.ChannelModel): Promise<number[]> {
  const ch = await conn.createChannel();
  const depth = await Promise.all(Array.from({ length: s.queues }, (_, q) => ch.checkQueue(queueName(s, q)).then((r) => r.messageCount)));
  await Promise.all(Array.from({ length: s.queues }, (_, q) => ch.deleteQueue(queueName(s, q))));
  if (exchangeName(s) !== '') await ch.deleteExchange(exchangeName(s));
  await ch.close();
  return depth;
}

interface Measured {
  publishPerSec: number;
  deliverPerSec: number;
  full: PhaseOutcome;
  low: PhaseOutcome | undefined;
}

async function drivePhases(s: Scenario, pubs: LiveWorker[], cons: LiveWorker[], args: BenchArgs, setPhase: (p: string) => void): Promise<Measured> {
  const fanout = s.routing === 'fanout' ? s.queues : 1;
  const drainers = isRpc(s) ? [] : cons;
  if (s.kind === 'backlog') {
    const capSeconds = Math.max(args.seconds, 600);
    setPhase('publish');
    const perPublisher = Math.ceil(args.messages / pubs.length);
    const pub = await phase(pubs, [], 0, undefined, capSeconds, perPublisher, 1);
    setPhase('drain');
    const t0 = Date.now();
    send(cons, { cmd: 'consume' });
    await Promise.all(cons.map((w) => expectEvent(w, 'consuming', readyTimeoutMs)));
    await drain(cons, pub.confirmed, capSeconds * 1000);
    const drainMs = Date.now() - t0;
    const delivered = sum(cons, Counter.Delivered);
    const full = { publishMs: pub.publishMs, ms: pub.ms + drainMs, confirmed: pub.confirmed, delivered };
    return { publishPerSec: perSecond(pub.confirmed, pub.publishMs), deliverPerSec: perSecond(delivered, drainMs), full, low: undefined };
  }
  setPhase('full');
  const full = await phase(pubs, drainers, 0, s.fullRatePerSec, args.seconds, undefined, fanout);
  // RPC: a request counts when its reply arrived (Confirmed), so both rates are round trips/s.
  const delivered = isRpc(s) ? full.confirmed : full.delivered;
  const measured: Measured = { publishPerSec: perSecond(full.confirmed, full.publishMs), deliverPerSec: perSecond(delivered, full.ms), full, low: undefined };
  if (args.lowRateSeconds > 0 && s.lowRatePerSec > 0) {
    setPhase('low-rate');
    measured.low = await phase(pubs, drainers, 1, s.lowRatePerSec, args.lowRateSeconds, undefined, fanout);
  }
  return measured;
}

/**
 * espresso: one more full-load phase (phase 2: tallied for loss, not timed) while every node takes a
 * CPU profile and the stage breakdown is gathered, so neither perturbs the measured phases.
 */
async function profiledPhase(
  s: Scenario, handle: BrokerHandle, pubs: LiveWorker[], cons: LiveWorker[], args: BenchArgs, log: (l: string) => void,
): Promise<Observation | undefined> {
  if (handle.observe === undefined || args.profileSeconds === 0 || s.kind === 'backlog') return undefined;
  const rate = args.profileRate > 0 ? args.profileRate : s.fullRatePerSec;
  log(`${handle.broker}: profiled phase, ${args.profileSeconds} s at ${rate === undefined ? 'full load' : `${rate} msg/s`}: stage breakdown and CPU profiles`);
  const drainers = isRpc(s) ? [] : cons;
  const watching = handle.observe(args.profileSeconds);
  watching.catch(() => undefined);
  try {
    await phase(pubs, drainers, 2, rate, args.profileSeconds + 1, undefined, s.routing === 'fanout' ? s.queues : 1);
    const o = await watching;
    return rate === undefined ? o : { ...o, ratePerSec: rate };
  } catch (e) {
    // The measured phases stand; a loss in this one still shows in the delivery check.
    log(`${handle.broker}: no stage breakdown or profiles: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}

/** Runs scenario `s` against the running broker `handle`. */
export async function runScenario(s: Scenario, handle: BrokerHandle, ctx: RunContext): Promise<BrokerResult> {
  const { args, log } = ctx;
  const bodyBytes = Math.max(args.bodyBytes ?? s.bodyBytes, 32);
  const maxSeq = s.kind === 'backlog' ? args.messages + 1 : 100_000_000;
  const conns = await declareTopology(s, handle, log);
  const workers = specs(s, handle, args, bodyBytes, maxSeq).map(startWorker);
  try {
    const cons = workers.filter((w) => w.spec.role === 'consumer' || w.spec.role === 'rpc-server' || w.spec.role === 'sdk-server');
    const pubs = workers.filter((w) => w.spec.role === 'publisher' || w.spec.role === 'rpc-client' || w.spec.role === 'sdk-caller');
    await Promise.all(workers.map((w) => expectEvent(w, 'ready', readyTimeoutMs)));
    if (s.kind === 'stream') {
      send(cons, { cmd: 'consume' });
      await Promise.all(cons.map((w) => expectEvent(w, 'consuming', readyTimeoutMs)));
    }
    let phaseName = 'start';
    const sampler = startSampler(handle, s, workers, () => phaseName, log);
    const gen0 = process.cpuUsage();
    const storage0 = await handle.storageCounters?.();
    let measured: Measured;
    let processes: ProcessUsage[] = [];
    try {
      measured = await drivePhases(s, pubs, cons, args, (p) => (phaseName = p));
    } finally {
      processes = sampler.stop();
    }
    const gen = process.cpuUsage(gen0);
    const storage1 = storage0 === undefined ? undefined : await handle.storageCounters?.();
    // Counted now: the profiled phase below is not part of the comparison.
    const published = sum(pubs, Counter.Published);
    const confirmed = sum(pubs, Counter.Confirmed);
    const deliveredTotal = sum(isRpc(s) ? pubs : cons, Counter.Delivered);
    const observed = await profiledPhase(s, handle, pubs, cons, args, log);
    const done = await finishWorkers(workers); // in spec order: consumers first, then publishers
    const firstConn = conns[0];
    const depth = firstConn === undefined ? [] : await queueDepths(s, firstConn);
    const expected = expectedPerQueue(s, pubs, done.slice(cons.length));
    const check = checkDeliveries(expected, done.flatMap((d) => d.tallies), depth);
    for (const d of done) for (const e of d.errors) log(`${handle.broker}: worker reported: ${e}`);
    // Latency is measured where a message ends: consumers, or RPC clients receiving their replies.
    const receivers = isRpc(s) ? done.slice(cons.length) : done.slice(0, cons.length);
    const hist = (i: number): LatencySummary => summarize(mergeHistograms(receivers.map((d) => d.histograms[i] ?? '').filter((x) => x !== '')));
    const brokerCpu = processes.reduce((a, p) => a + p.cpuSeconds, 0);
    const genCpu = (gen.user + gen.system) / 1e6;
    return {
      broker: handle.broker, published, confirmed, delivered: deliveredTotal, observed,
      publishPerSec: measured.publishPerSec, deliverPerSec: measured.deliverPerSec, full: hist(0), low: measured.low === undefined ? undefined : hist(1),
      lowRatePerSec: s.lowRatePerSec, lost: check.lost, duplicates: check.duplicates, nacked: sum(pubs, Counter.Nacked),
      stillQueued: depth.reduce((a, b) => a + b, 0), brokerCpuSecondsPer100k: cpuSecondsPer100k(brokerCpu, deliveredTotal), processes,
      generatorCpuSeconds: genCpu, generatorCpuSecondsPer100k: cpuSecondsPer100k(genCpu, deliveredTotal),
      fsyncs: storage0 !== undefined && storage1 !== undefined ? storage1.fsyncs - storage0.fsyncs : undefined,
      walRecords: storage0 !== undefined && storage1 !== undefined ? storage1.records - storage0.records : undefined,
    };
  } finally {
    await Promise.all(workers.map((w) => w.worker.terminate()));
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  }
}
