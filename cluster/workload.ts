// The client side of a fault run: amqplib producers with publisher confirms and consumers with
// manual acks on several durable queues, each starting on a different node and reconnecting to the
// next node when its connection fails (or a confirm takes too long), as an application would.
// Every message carries a unique id (message-id property and body); all of it goes into a History.

import amqp from 'amqplib';
import type { DeliveryRecord, PublishRecord } from './checker.js';

export interface WorkloadOptions {
  /** AMQP URLs of every node, in node order; clients start at different ones and rotate on failure. */
  urls: readonly string[];
  queues: readonly string[];
  producers: number;
  /** Each queue has exactly one consumer at a time (so first-delivery order is meaningful). */
  consumers: number;
  /** Publishes per second per producer (spread over its queues). */
  ratePerProducer: number;
  /** Unconfirmed publishes per producer before it waits. */
  inflightMax: number;
  /** No confirm for this long with publishes outstanding: give up on the connection and reconnect. */
  confirmTimeoutMs: number;
  /** Connection attempt (TCP + AMQP handshake) bound. */
  connectTimeoutMs: number;
  prefetch: number;
  log: (line: string) => void;
}

export const defaultWorkloadOptions: Omit<WorkloadOptions, 'urls' | 'queues' | 'log'> = {
  producers: 3,
  consumers: 3,
  ratePerProducer: 40,
  inflightMax: 32,
  confirmTimeoutMs: 8_000,
  connectTimeoutMs: 5_000,
  prefetch: 32,
};

const reconnectDelayMs = 300;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

type Connection = Awaited<ReturnType<typeof amqp.connect>>;

/** amqp.connect bounded in time (a SIGSTOPped node accepts TCP but never answers the handshake). */
async function connectBounded(url: string, timeoutMs: number): Promise<Connection> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const attempt = amqp.connect(`${url}?heartbeat=2`, { timeout: timeoutMs });
  try {
    return await Promise.race([
      attempt,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(new Error(`connect to ${url} timed out`));
        }, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    // A handshake that finishes after we gave up is closed, not leaked.
    if (timedOut) void attempt.then((c) => c.close().catch(() => undefined), () => undefined);
  }
}

export class Workload {
  readonly publishes: PublishRecord[] = [];
  readonly deliveries: DeliveryRecord[] = [];
  /** Times of confirms, in arrival order (the chart's throughput line). */
  readonly confirmTimes: number[] = [];
  reconnects = 0;
  private producing = true;
  private consuming = true;
  private readonly tasks: Array<Promise<void>> = [];
  private readonly connections = new Set<Connection>();

  constructor(private readonly o: WorkloadOptions) {}

  /** Declares the queues (retrying on any node) and starts every producer and consumer. */
  async start(): Promise<void> {
    await this.declareQueues();
    for (let c = 0; c < this.o.consumers; c++) {
      const owned = this.o.queues.filter((_, i) => i % this.o.consumers === c);
      if (owned.length > 0) this.tasks.push(this.consumer(`c${c + 1}`, c, owned));
    }
    for (let p = 0; p < this.o.producers; p++) this.tasks.push(this.producer(`p${p + 1}`, p));
  }

  private async declareQueues(): Promise<void> {
    for (let attempt = 0; attempt < 60; attempt++) {
      const url = this.o.urls[attempt % this.o.urls.length]!;
      try {
        const conn = await connectBounded(url, this.o.connectTimeoutMs);
        conn.on('error', () => {});
        const ch = await conn.createChannel();
        for (const q of this.o.queues) await ch.assertQueue(q, { durable: true });
        await conn.close();
        return;
      } catch (e) {
        this.o.log(`declare on ${url} failed: ${(e as Error).message}`);
        await sleep(500);
      }
    }
    throw new Error('could not declare the queues on any node');
  }

  /** Stops publishing; unconfirmed publishes stay 'unknown'. */
  async stopProducers(): Promise<void> {
    this.producing = false;
  }

  /** Waits until every confirmed id was delivered (or the time is up); returns how many are missing. */
  async drain(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let missing = Infinity;
    while (Date.now() < deadline) {
      const seen = new Set(this.deliveries.map((d) => d.id));
      missing = this.publishes.filter((p) => p.outcome === 'ok' && !seen.has(p.id)).length;
      if (missing === 0) return 0;
      await sleep(250);
    }
    return missing;
  }

  /**
   * The final drain, after stop(): a fresh connection per queue (trying every node) takes whatever
   * is still in it with basic.get until it is empty, recorded as consumer 'final'. Messages found
   * here were kept but not delivered to the long-running consumer (a liveness finding, not a loss).
   */
  async finalDrain(timeoutMs = 30_000, getsMax = 100_000): Promise<{ found: number; unreachable: string[] }> {
    let found = 0;
    const unreachable: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (const queue of this.o.queues) {
      let done = false;
      for (let i = 0; i < this.o.urls.length && !done && Date.now() < deadline; i++) {
        const url = this.o.urls[i]!;
        try {
          const conn = await connectBounded(url, this.o.connectTimeoutMs);
          conn.on('error', () => {});
          try {
            const ch = await conn.createChannel();
            for (let n = 0; n < getsMax && Date.now() < deadline; n++) {
              // A get the cluster never answers (no leader reachable) ends this node's try.
              const msg = await Promise.race([
                ch.get(queue, { noAck: false }),
                sleep(this.o.connectTimeoutMs).then(() => { throw new Error(`basic.get on ${queue} got no answer`); }),
              ]);
              if (msg === false) break;
              found += 1;
              this.record(queue, 'final', msg);
              ch.ack(msg);
            }
            done = true;
          } finally {
            await conn.close().catch(() => undefined);
          }
        } catch (e) {
          this.o.log(`final drain of ${queue} on ${url}: ${(e as Error).message}`);
        }
      }
      if (!done) unreachable.push(queue);
    }
    return { found, unreachable };
  }

  private record(queue: string, consumer: string, msg: amqp.Message): void {
    let bodyId = '';
    try {
      bodyId = String((JSON.parse(msg.content.toString('utf8')) as { id?: unknown }).id ?? '');
    } catch {
      bodyId = '<unparsable>';
    }
    this.deliveries.push({
      id: String(msg.properties.messageId ?? ''), queue, consumer,
      redelivered: msg.fields.redelivered, atMs: Date.now(), bodyId,
    });
  }

  async stop(): Promise<void> {
    this.producing = false;
    this.consuming = false;
    for (const c of this.connections) await c.close().catch(() => undefined);
    await Promise.all(this.tasks);
  }

  private async producer(name: string, index: number): Promise<void> {
    const seqs = new Map<string, number>();
    let next = 0;
    for (let attempt = 0; this.producing; attempt++) {
      const url = this.o.urls[(index + attempt) % this.o.urls.length]!;
      try {
        // AMQP orders one channel's publishes, not a reconnected application's: the order check
        // is per connection (name#attempt); ids and seqs run on across connections.
        await this.produceOn(name, `${name}#${attempt}`, url, seqs, () => next++);
      } catch (e) {
        this.o.log(`${name} on ${url}: ${(e as Error).message}`);
      }
      if (!this.producing) break;
      this.reconnects += 1;
      await sleep(reconnectDelayMs);
    }
  }

  /** Publishes on one connection until it fails, a confirm is overdue, or producing stops. */
  private async produceOn(name: string, session: string, url: string, seqs: Map<string, number>, counter: () => number): Promise<void> {
    const conn = await connectBounded(url, this.o.connectTimeoutMs);
    this.connections.add(conn);
    let failed: Error | undefined;
    conn.on('error', (e: Error) => { failed = e; });
    conn.on('close', () => { failed ??= new Error('connection closed'); });
    try {
      const ch = await conn.createConfirmChannel();
      ch.on('error', (e: Error) => { failed = e; });
      let inflight = 0;
      let lastProgressMs = Date.now();
      const intervalMs = 1000 / this.o.ratePerProducer;
      while (this.producing && failed === undefined) {
        if (inflight >= this.o.inflightMax) {
          if (Date.now() - lastProgressMs > this.o.confirmTimeoutMs) throw new Error('confirms overdue');
          await sleep(20);
          continue;
        }
        const n = counter();
        const queue = this.o.queues[n % this.o.queues.length]!;
        const seq = seqs.get(queue) ?? 0;
        seqs.set(queue, seq + 1);
        const id = `${name}-${queue}-${seq}`;
        const record: PublishRecord = { id, producer: session, queue, seq, sentMs: Date.now(), outcome: 'unknown' };
        this.publishes.push(record);
        inflight += 1;
        const body = Buffer.from(JSON.stringify({ id, producer: name, queue, seq }));
        ch.sendToQueue(queue, body, { persistent: true, messageId: id }, (err: unknown) => {
          inflight -= 1;
          lastProgressMs = Date.now();
          record.doneMs = lastProgressMs;
          if (err === null || err === undefined) {
            record.outcome = 'ok';
            this.confirmTimes.push(lastProgressMs);
          } else if (failed === undefined) record.outcome = 'nack';
          // else: amqplib fails pending confirms when the channel goes: the outcome stays unknown.
        });
        await sleep(intervalMs);
        if (inflight > 0 && Date.now() - lastProgressMs > this.o.confirmTimeoutMs) throw new Error('confirms overdue');
        if (inflight === 0) lastProgressMs = Date.now();
      }
      if (failed !== undefined) throw failed;
      // Clean stop: give outstanding confirms a bounded chance to arrive.
      for (let i = 0; i < 100 && inflight > 0 && failed === undefined; i++) await sleep(50);
    } finally {
      this.connections.delete(conn);
      await conn.close().catch(() => undefined);
    }
  }

  private async consumer(name: string, index: number, queues: readonly string[]): Promise<void> {
    for (let attempt = 0; this.consuming; attempt++) {
      const url = this.o.urls[(index + attempt + 1) % this.o.urls.length]!;
      try {
        await this.consumeOn(name, url, queues);
      } catch (e) {
        this.o.log(`${name} on ${url}: ${(e as Error).message}`);
      }
      if (!this.consuming) break;
      this.reconnects += 1;
      await sleep(reconnectDelayMs);
    }
  }

  /** Consumes the queues on one connection until it fails or consuming stops. */
  private async consumeOn(name: string, url: string, queues: readonly string[]): Promise<void> {
    const conn = await connectBounded(url, this.o.connectTimeoutMs);
    this.connections.add(conn);
    let failed: Error | undefined;
    let wake: () => void = () => {};
    const woken = new Promise<void>((r) => { wake = r; });
    conn.on('error', (e: Error) => { failed = e; wake(); });
    conn.on('close', () => { failed ??= new Error('connection closed'); wake(); });
    try {
      const ch = await conn.createChannel();
      ch.on('error', (e: Error) => { failed = e; wake(); });
      ch.on('close', () => { failed ??= new Error('channel closed'); wake(); });
      await ch.prefetch(this.o.prefetch);
      for (const q of queues) {
        await ch.consume(q, (msg) => {
          if (msg === null) {
            failed ??= new Error(`consumer of ${q} cancelled by the broker`);
            wake();
            return;
          }
          this.record(q, name, msg);
          try {
            ch.ack(msg);
          } catch {
            // The channel is gone: the message comes back redelivered.
          }
        }, { noAck: false });
      }
      while (this.consuming && failed === undefined) await Promise.race([woken, sleep(200)]);
      if (failed !== undefined && this.consuming) throw failed;
    } finally {
      this.connections.delete(conn);
      await conn.close().catch(() => undefined);
    }
  }
}
