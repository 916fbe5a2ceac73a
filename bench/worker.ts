// One load-generator worker thread: a publisher (confirms with a window, optional fixed rate), a
// consumer (manual acks, prefetch, latency and per-message tallies), an RPC client/server over
// direct reply-to, or a Task-RPC SDK caller/server. Counters live in shared memory for the once-a-second progress line.

import { parentPort, workerData } from 'node:worker_threads';
import * as amqp from 'amqplib';
import { connectRpc, type Rpc } from '../src/tasks/index.js';
import { SeqCounts, encodeHistogram, newHistogram, type Histogram } from './stats.js';
import { Counter, type DoneMessage, type ToWorker, type WorkerSpec, header } from './worker-protocol.js';

const spec = workerData as WorkerSpec;
const port = parentPort;
if (port === null) throw new Error('bench/worker.ts runs only as a worker thread');
const counters = new Float64Array(spec.counters);
const histograms: Histogram[] = [newHistogram(), newHistogram()];
const tallies = new Map<string, { queueIndex: number; publisherId: number; seen: SeqCounts }>();
const confirmedPerTarget: number[] = spec.targets.map(() => 0);
let errors: string[] = [];

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
const yieldTurn = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function bump(c: Counter, n = 1): void {
  counters[c] = (counters[c] ?? 0) + n;
}

function makeBody(seq: number, phase: number): Buffer {
  const body = Buffer.alloc(spec.bodyBytes, 0x61);
  body.writeDoubleLE(nowUs(), header.timeUs);
  body.writeUInt32LE(spec.id, header.publisher);
  body.writeUInt32LE(seq, header.seq);
  body.writeUInt8(phase, header.phase);
  return body;
}

/** Latency and the (queue, publisher, seq) tally of one delivered body. */
function recordDelivery(body: Buffer, queueIndex: number): void {
  const phase = body.readUInt8(header.phase);
  const latencyUs = Math.max(1, Math.round(nowUs() - body.readDoubleLE(header.timeUs)));
  // Phases 0 (full) and 1 (low rate) are measured; later ones (the profiled phase) only tallied.
  if (phase <= 1) histograms[phase]?.recordValue(latencyUs);
  const publisherId = body.readUInt32LE(header.publisher);
  const key = `${queueIndex}:${publisherId}`;
  let t = tallies.get(key);
  if (t === undefined) {
    t = { queueIndex, publisherId, seen: new SeqCounts() };
    tallies.set(key, t);
  }
  t.seen.see(body.readUInt32LE(header.seq), spec.maxSeq);
  bump(Counter.Delivered);
}

// --- publisher ------------------------------------------------------------------------------

let publishing: { phase: number; ratePerSec: number | undefined; maxMessages: number | undefined } | undefined;
let seq = 0;

async function runPublisher(conn: amqp.ChannelModel): Promise<void> {
  const ch = await conn.createConfirmChannel();
  ch.on('error', (e: Error) => errors.push(`publisher channel: ${e.message}`));
  let outstanding = 0;
  let wake: (() => void) | undefined;
  const settle = (): void => {
    outstanding--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  port?.postMessage({ ev: 'ready' });
  for (;;) {
    const job = await nextJob();
    if (job === 'finish') break;
    const startUs = nowUs();
    let sent = 0;
    while (publishing !== undefined && (job.maxMessages === undefined || sent < job.maxMessages)) {
      if (outstanding >= spec.window) {
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      if (job.ratePerSec !== undefined) {
        const dueUs = startUs + (sent * 1e6) / job.ratePerSec;
        const waitUs = dueUs - nowUs();
        if (waitUs > 1000) await sleepMs(waitUs / 1000);
      }
      const target = sent % spec.targets.length;
      const s = seq++;
      outstanding++;
      sent++;
      const ok = ch.publish(spec.exchange, spec.targets[target] ?? '', makeBody(s, job.phase), { persistent: spec.persistent }, (err: unknown) => {
        if (err === null || err === undefined) {
          bump(Counter.Confirmed);
          confirmedPerTarget[target] = (confirmedPerTarget[target] ?? 0) + 1;
        } else bump(Counter.Nacked);
        settle();
      });
      bump(Counter.Published);
      if (!ok) await new Promise<void>((r) => ch.once('drain', () => r()));
      if (sent % 64 === 0) await yieldTurn(); // 'drain' can fire synchronously: always yield now and then
    }
    publishing = undefined;
    const deadline = Date.now() + spec.settleTimeoutMs;
    while (outstanding > 0 && Date.now() < deadline) await sleepMs(10);
    if (outstanding > 0) errors.push(`${outstanding} publishes never confirmed within ${spec.settleTimeoutMs} ms`);
    port?.postMessage({ ev: 'paused' });
  }
  await ch.close().catch(() => undefined);
}

type Job = { phase: number; ratePerSec: number | undefined; maxMessages: number | undefined };
let jobWaiter: ((j: Job | 'finish') => void) | undefined;
let finishing = false;

function nextJob(): Promise<Job | 'finish'> {
  if (finishing) return Promise.resolve('finish');
  if (publishing !== undefined) return Promise.resolve(publishing);
  return new Promise((r) => (jobWaiter = r));
}

// --- consumer -------------------------------------------------------------------------------

async function startConsuming(conn: amqp.ChannelModel): Promise<void> {
  for (let i = 0; i < spec.targets.length; i++) {
    const queue = spec.targets[i] ?? '';
    const queueIndex = spec.queueIndexes[i] ?? 0;
    const ch = await conn.createChannel();
    ch.on('error', (e: Error) => errors.push(`consumer channel: ${e.message}`));
    await ch.prefetch(spec.prefetch);
    await ch.consume(queue, (msg) => {
      if (msg === null) {
        errors.push(`consumer of ${queue} was cancelled by the broker`);
        return;
      }
      recordDelivery(msg.content, queueIndex);
      ch.ack(msg);
    }, { noAck: false });
  }
}

// --- RPC ------------------------------------------------------------------------------------

async function runRpcServer(conn: amqp.ChannelModel): Promise<void> {
  const ch = await conn.createChannel();
  ch.on('error', (e: Error) => errors.push(`rpc server channel: ${e.message}`));
  await ch.prefetch(spec.prefetch);
  await ch.consume(spec.targets[0] ?? '', (msg) => {
    if (msg === null) return;
    const replyTo = msg.properties.replyTo as string | undefined;
    if (replyTo !== undefined) ch.sendToQueue(replyTo, msg.content, { correlationId: msg.properties.correlationId as string });
    bump(Counter.Delivered);
    ch.ack(msg);
  }, { noAck: false });
}

async function runRpcClient(conn: amqp.ChannelModel): Promise<void> {
  const ch = await conn.createChannel();
  ch.on('error', (e: Error) => errors.push(`rpc client channel: ${e.message}`));
  const window = new RequestWindow();
  await ch.consume('amq.rabbitmq.reply-to', (msg) => {
    if (msg === null) return;
    recordDelivery(msg.content, 0);
    bump(Counter.Confirmed);
    window.settled();
  }, { noAck: true });
  port?.postMessage({ ev: 'ready' });
  await window.drive((s, phase) => {
    ch.sendToQueue(spec.targets[0] ?? '', makeBody(s, phase), { persistent: spec.persistent, replyTo: 'amq.rabbitmq.reply-to', correlationId: String(s) });
  });
}

// --- Task-RPC SDK ---------------------------------------------------------------------------

let sdk: Rpc | undefined;
const maxErrorsKept = 20;

async function runSdkServer(): Promise<void> {
  sdk = await connectRpc([spec.url], { name: `bench sdk-server ${spec.id}` });
  await sdk.serve(spec.targets[0] ?? '', (payload) => {
    bump(Counter.Delivered);
    return payload;
  }, { concurrency: spec.window });
}

/** `spec.window` concurrent callers: each call is sent when a reply (or failure) frees a slot. */
async function runSdkCaller(): Promise<void> {
  const rpc = await connectRpc([spec.url], { name: `bench sdk-caller ${spec.id}` });
  sdk = rpc;
  const window = new RequestWindow();
  port?.postMessage({ ev: 'ready' });
  await window.drive((s, phase) => {
    rpc.call(spec.targets[0] ?? '', makeBody(s, phase), { timeoutMs: spec.settleTimeoutMs }).then((reply) => {
      recordDelivery(reply as Buffer, 0);
      bump(Counter.Confirmed);
    }, (e: unknown) => {
      if (errors.length < maxErrorsKept) errors.push(`call ${s}: ${e instanceof Error ? e.message : String(e)}`);
    }).finally(() => window.settled());
  });
}

/** Requests in flight up to spec.window, at the phase's rate if it has one; each phase ends with its replies. */
class RequestWindow {
  private outstanding = 0;
  private wake: (() => void) | undefined;

  settled(): void {
    this.outstanding--;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async drive(send: (seq: number, phase: number) => void): Promise<void> {
    for (;;) {
      const job = await nextJob();
      if (job === 'finish') break;
      const startUs = nowUs();
      let sent = 0;
      while (publishing !== undefined) {
        if (this.outstanding >= spec.window) {
          await Promise.race([new Promise<void>((r) => (this.wake = r)), sleepMs(100)]);
          continue;
        }
        if (job.ratePerSec !== undefined) {
          const waitUs = startUs + (sent * 1e6) / job.ratePerSec - nowUs();
          if (waitUs > 1000) await sleepMs(waitUs / 1000);
        }
        this.outstanding++;
        sent++;
        send(seq++, job.phase);
        bump(Counter.Published);
        if (sent % 16 === 0) await yieldTurn();
      }
      const deadline = Date.now() + spec.settleTimeoutMs;
      while (this.outstanding > 0 && Date.now() < deadline) await sleepMs(10);
      if (this.outstanding > 0) errors.push(`${this.outstanding} requests without a reply within ${spec.settleTimeoutMs} ms`);
      port?.postMessage({ ev: 'paused' });
    }
  }
}

// --- control --------------------------------------------------------------------------------

let conn: amqp.ChannelModel | undefined;

port.on('message', (m: ToWorker) => {
  if (m.cmd === 'phase') {
    publishing = { phase: m.phase, ratePerSec: m.ratePerSec, maxMessages: m.maxMessages };
    const w = jobWaiter;
    jobWaiter = undefined;
    w?.(publishing);
  } else if (m.cmd === 'pause') {
    publishing = undefined;
  } else if (m.cmd === 'consume') {
    if (conn !== undefined) startConsuming(conn).then(() => port.postMessage({ ev: 'consuming' }), (e: unknown) => fail(e));
  } else if (m.cmd === 'finish') {
    finishing = true;
    const w = jobWaiter;
    jobWaiter = undefined;
    w?.('finish');
    if (spec.role === 'consumer' || spec.role === 'rpc-server' || spec.role === 'sdk-server') void finish();
  }
});

function fail(e: unknown): void {
  port?.postMessage({ ev: 'error', message: e instanceof Error ? e.message : String(e) });
}

async function finish(): Promise<void> {
  await conn?.close().catch(() => undefined);
  await sdk?.close().catch(() => undefined);
  const done: DoneMessage = {
    ev: 'done',
    histograms: histograms.map(encodeHistogram),
    tallies: [...tallies.values()].map((t) => ({ queueIndex: t.queueIndex, publisherId: t.publisherId, counts: t.seen.counts })),
    confirmedPerTarget,
    errors,
  };
  port?.postMessage(done);
  errors = [];
}

async function main(): Promise<void> {
  if (spec.role === 'sdk-server') {
    await runSdkServer();
    port?.postMessage({ ev: 'ready' });
    return;
  }
  if (spec.role === 'sdk-caller') {
    await runSdkCaller();
    await finish();
    return;
  }
  conn = await amqp.connect(spec.url);
  conn.on('error', (e: Error) => errors.push(`connection: ${e.message}`));
  conn.on('blocked', (reason: string) => {
    counters[Counter.Blocked] = 1;
    errors.push(`connection blocked by the broker: ${reason}`);
  });
  conn.on('unblocked', () => (counters[Counter.Blocked] = 0));
  if (spec.role === 'publisher') await runPublisher(conn);
  else if (spec.role === 'rpc-client') await runRpcClient(conn);
  else if (spec.role === 'rpc-server') {
    await runRpcServer(conn);
    port?.postMessage({ ev: 'ready' });
    return;
  } else {
    port?.postMessage({ ev: 'ready' });
    return;
  }
  await finish();
}

main().catch(fail);
