// A TCP proxy for one dialed link between two nodes (the dialer connects to it, it connects to the
// target's real cluster port), with a fault per byte direction: pass, delay, stall, random resets.
//
// TCP never loses bytes, so faults are modelled as what a network does to a TCP connection:
// - stall: bytes in that direction are held (the reading side is paused, so the sender backs up)
//   as if packets were dropped; when the fault heals, every connection that held bytes is reset,
//   so the held bytes are lost like the packets they stand for and both nodes redial.
// - delay: each chunk is delivered delayMs after it arrived, in order.
// - resetProbability: each chunk resets the whole connection with this probability (a flaky link
//   dropping a fraction of traffic shows up to the nodes as lost connections and redials).

import { createServer, connect, type Server, type Socket } from 'node:net';

export interface DirectionFault {
  stall: boolean;
  delayMs: number;
  resetProbability: number;
}

export const passFault: DirectionFault = { stall: false, delayMs: 0, resetProbability: 0 };

/** 'up' = bytes the dialer sends to the target; 'down' = bytes the target sends back. */
export type ByteDirection = 'up' | 'down';

export interface LinkProxyStats {
  connections: number;
  resets: number;
  bytesUp: number;
  bytesDown: number;
  /** Chunks held by a stall so far. */
  chunksHeld: number;
}

export interface LinkProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Uniform in [0, 1): the source of reset decisions (seeded by the caller). */
  random: () => number;
  /** Port to listen on (0 = any free port). */
  listenPort?: number;
}

/** Bytes waiting in a delay queue before the source is paused (backpressure through the proxy). */
const delayedBytesMax = 4 * 1024 * 1024;

/** One direction of one proxied connection: reads src, writes dst, applying the fault. */
class Pump {
  private held: Buffer[] = [];
  private delayed: Array<{ dueMs: number; chunk: Buffer }> = [];
  private delayedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  /** Bytes were held here by a stall: the connection must be reset when the stall heals. */
  tainted = false;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly fault: () => DirectionFault,
    private readonly onBytes: (n: number) => void,
    private readonly onHeld: () => void,
    private readonly reset: () => void,
    private readonly random: () => number,
  ) {
    src.on('data', (chunk: Buffer) => this.onData(chunk));
    dst.on('drain', () => {
      this.waitingDrain = false;
      this.updateFlow();
    });
  }

  private onData(chunk: Buffer): void {
    const f = this.fault();
    if (f.resetProbability > 0 && this.random() < f.resetProbability) {
      this.reset();
      return;
    }
    if (f.stall) {
      this.held.push(chunk);
      this.tainted = true;
      this.onHeld();
      this.updateFlow();
      return;
    }
    if (f.delayMs > 0 || this.delayed.length > 0) {
      const last = this.delayed[this.delayed.length - 1];
      const dueMs = Math.max(Date.now() + f.delayMs, last?.dueMs ?? 0);
      this.delayed.push({ dueMs, chunk });
      this.delayedBytes += chunk.length;
      this.schedule();
      this.updateFlow();
      return;
    }
    this.write(chunk);
  }

  private write(chunk: Buffer): void {
    this.onBytes(chunk.length);
    if (!this.dst.write(chunk)) this.waitingDrain = true;
    this.updateFlow();
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const head = this.delayed[0];
    if (head === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = Date.now();
      while (this.delayed.length > 0 && this.delayed[0]!.dueMs <= now) {
        const { chunk } = this.delayed.shift()!;
        this.delayedBytes -= chunk.length;
        if (!this.dst.destroyed) this.write(chunk);
      }
      this.schedule();
      this.updateFlow();
    }, Math.max(0, head.dueMs - Date.now()));
  }

  /** Pauses the source while bytes are held, the destination is full, or the delay queue is big. */
  updateFlow(): void {
    if (this.src.destroyed) return;
    const blocked = this.held.length > 0 || this.waitingDrain || this.delayedBytes > delayedBytesMax;
    if (blocked) this.src.pause();
    else this.src.resume();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.held = [];
    this.delayed = [];
    this.delayedBytes = 0;
  }
}

interface Connection {
  client: Socket;
  upstream: Socket;
  up: Pump;
  down: Pump;
}

export class LinkProxy {
  private readonly connections = new Set<Connection>();
  private readonly faults: Record<ByteDirection, DirectionFault> = { up: passFault, down: passFault };
  readonly stats: LinkProxyStats = { connections: 0, resets: 0, bytesUp: 0, bytesDown: 0, chunksHeld: 0 };

  private constructor(private readonly server: Server, readonly port: number, private readonly options: LinkProxyOptions) {}

  static async start(options: LinkProxyOptions): Promise<LinkProxy> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort ?? 0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');
    const proxy = new LinkProxy(server, address.port, options);
    server.on('connection', (socket) => proxy.accept(socket));
    return proxy;
  }

  fault(direction: ByteDirection): DirectionFault {
    return this.faults[direction];
  }

  /** Sets the fault of one direction; lifting a stall resets the connections that held bytes. */
  setFault(direction: ByteDirection, fault: DirectionFault): void {
    const wasStalled = this.faults[direction].stall;
    this.faults[direction] = { ...fault };
    if (wasStalled && !fault.stall) {
      for (const c of [...this.connections]) {
        if ((direction === 'up' ? c.up : c.down).tainted) this.destroy(c);
      }
    }
  }

  /** Resets every open connection (both nodes see the link drop and redial). */
  resetAll(): void {
    for (const c of [...this.connections]) this.destroy(c);
  }

  get openConnections(): number {
    return this.connections.size;
  }

  async close(): Promise<void> {
    this.resetAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.stats.connections += 1;
    client.setNoDelay(true);
    const upstream = connect({ host: this.options.targetHost, port: this.options.targetPort, noDelay: true });
    const conn: Connection = {
      client,
      upstream,
      up: new Pump(client, upstream, () => this.faults.up, (n) => { this.stats.bytesUp += n; }, () => { this.stats.chunksHeld += 1; }, () => this.reset(conn), this.options.random),
      down: new Pump(upstream, client, () => this.faults.down, (n) => { this.stats.bytesDown += n; }, () => { this.stats.chunksHeld += 1; }, () => this.reset(conn), this.options.random),
    };
    this.connections.add(conn);
    upstream.once('connect', () => conn.up.updateFlow());
    for (const s of [client, upstream]) {
      s.on('error', () => this.destroy(conn));
      s.on('close', () => this.destroy(conn));
      s.on('end', () => this.destroy(conn));
    }
  }

  private reset(c: Connection): void {
    this.stats.resets += 1;
    this.destroy(c);
  }

  private destroy(c: Connection): void {
    if (!this.connections.delete(c)) return;
    c.up.stop();
    c.down.stop();
    // resetAndDestroy sends RST where supported, like a middlebox dropping the flow.
    for (const s of [c.client, c.upstream]) {
      try {
        if (!s.destroyed) s.resetAndDestroy();
      } catch {
        s.destroy();
      }
    }
  }
}
