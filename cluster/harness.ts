// A cluster of real `espresso server` processes on loopback for the fault suite: free ports, a data
// dir each under one temp dir, a LinkProxy per dialed link (node X's --seeds names, for every other
// node Y, the proxy X->Y), directed faults between nodes, and process control (kill -9, restart,
// SIGSTOP/SIGCONT, WAL damage). A watchdog process kills the nodes if this process dies first.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LinkProxy, passFault, type DirectionFault } from './link-proxy.js';

const root = new URL('../', import.meta.url).pathname;
const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

export interface HarnessOptions {
  nodes: number;
  /** Seeded uniform [0, 1) source for proxy resets and WAL damage. */
  random: () => number;
  /** Run dist/src/cli/main.js (built) instead of the sources through tsx. */
  useDist?: boolean;
  /** Log lines of each node kept in memory (all of them go to <dir>/<id>.log). */
  logLinesKept?: number;
  startTimeoutMs?: number;
  logLevel?: 'debug' | 'info' | 'warn';
  /** Keep the temp dir after close (for a chaos run's logs). */
  keepDir?: boolean;
}

export type NodeState = 'running' | 'stopped' | 'paused';

export interface NodeHandle {
  readonly id: string;
  readonly amqpPort: number;
  readonly clusterPort: number;
  readonly dataDir: string;
  state: NodeState;
  child: ChildProcess | undefined;
  exited: Promise<number | null> | undefined;
  /** The last log lines (JSON lines from the node, and its stderr). */
  log: string[];
  /** How many times it was started. */
  starts: number;
}

/** What marks a node ready for clients: the broker's line (issue 8 contract) or today's 'node started'. */
const readyRe = /"(?:msg|event)":"(?:broker listening|node started)"/;

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Pids to kill if we die: a tiny detached process reads '+pid'/'-pid' lines and kills on EOF. */
function startWatchdog(): ChildProcess {
  const script = `
    const pids = new Set(); let buf = '';
    process.stdin.on('data', (d) => { buf += d; let i;
      while ((i = buf.indexOf('\\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1);
        if (l[0] === '+') pids.add(Number(l.slice(1))); else if (l[0] === '-') pids.delete(Number(l.slice(1))); } });
    process.stdin.on('end', () => { for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch {} } process.exit(0); });`;
  const dog = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  dog.unref();
  (dog.stdin as unknown as { unref?: () => void }).unref?.();
  return dog;
}

export class ClusterHarness {
  readonly nodes: NodeHandle[] = [];
  /** proxies.get(`${dialer}>${target}`) */
  private readonly proxies = new Map<string, LinkProxy>();
  /** Directed faults: faults.get(`${from}>${to}`) applies to bytes from `from` to `to`. */
  private readonly faults = new Map<string, DirectionFault>();
  private readonly logs = new Map<string, WriteStream>();
  private readonly watchdog: ChildProcess;
  readonly secret = 'fault-suite-secret';
  private closed = false;
  private readonly onExit = (): void => this.killAllSync();

  private constructor(readonly dir: string, private readonly options: HarnessOptions) {
    this.watchdog = startWatchdog();
    process.once('exit', this.onExit);
  }

  /** Allocates ports, starts the proxies and every node, and waits until all are ready. */
  static async start(options: HarnessOptions): Promise<ClusterHarness> {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-fault-'));
    const h = new ClusterHarness(dir, options);
    try {
      for (let i = 1; i <= options.nodes; i++) {
        const id = `n${i}`;
        const dataDir = join(dir, id);
        mkdirSync(dataDir, { recursive: true });
        h.nodes.push({
          id, amqpPort: await freePort(), clusterPort: await freePort(), dataDir,
          state: 'stopped', child: undefined, exited: undefined, log: [], starts: 0,
        });
      }
      for (const a of h.nodes) {
        for (const b of h.nodes) {
          if (a === b) continue;
          h.proxies.set(`${a.id}>${b.id}`, await LinkProxy.start({ targetHost: '127.0.0.1', targetPort: b.clusterPort, random: options.random }));
        }
      }
      await Promise.all(h.nodes.map((n) => h.startNode(n.id)));
    } catch (e) {
      await h.close();
      throw e;
    }
    return h;
  }

  node(id: string): NodeHandle {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  amqpUrl(id: string): string {
    return `amqp://guest:guest@127.0.0.1:${this.node(id).amqpPort}`;
  }

  /** The --seeds value node `self` starts with: itself directly, every other node through its proxy. */
  seedsFor(self: string): string {
    return this.nodes
      .map((n) => n.id === self
        ? `${n.id}@127.0.0.1:${n.clusterPort}`
        : `${n.id}@127.0.0.1:${this.proxies.get(`${self}>${n.id}`)!.port}`)
      .join(',');
  }

  private argsFor(n: NodeHandle): string[] {
    const main = this.options.useDist === true ? [join(root, 'dist/src/cli/main.js')] : ['--import', tsxLoader, join(root, 'src/cli/main.ts')];
    const args = [
      ...main, 'server', '--node-id', n.id, '--node-name', n.id,
      '--port', String(n.amqpPort), '--cluster-port', String(n.clusterPort), '--http-port', '0',
      '--data-dir', n.dataDir, '--cluster-secret', this.secret,
      '--log-level', this.options.logLevel ?? 'info',
    ];
    if (this.nodes.length > 1) args.push('--seeds', this.seedsFor(n.id));
    return args;
  }

  /** Starts a stopped node and resolves once it logs that the broker listens. */
  async startNode(id: string): Promise<void> {
    const n = this.node(id);
    if (n.state !== 'stopped') throw new Error(`${id} is ${n.state}`);
    const logFile = this.logs.get(id) ?? createWriteStream(join(this.dir, `${id}.log`), { flags: 'a' });
    this.logs.set(id, logFile);
    const child = spawn(process.execPath, this.argsFor(n), { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    n.child = child;
    n.state = 'running';
    n.starts += 1;
    this.watchdog.stdin?.write(`+${child.pid}\n`);
    const kept = this.options.logLinesKept ?? 400;
    let ready: () => void = () => {};
    const readyP = new Promise<void>((r) => { ready = r; });
    let partial = '';
    const onChunk = (chunk: Buffer): void => {
      logFile.write(chunk);
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        n.log.push(line);
        if (readyRe.test(line)) ready();
      }
      if (n.log.length > kept) n.log.splice(0, n.log.length - kept);
    };
    child.stdout!.on('data', onChunk);
    child.stderr!.on('data', onChunk);
    n.exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => {
      this.watchdog.stdin?.write(`-${child.pid}\n`);
      if (n.child === child) {
        n.state = 'stopped';
        n.child = undefined;
      }
      resolve(code ?? (signal !== null ? -1 : null));
    }));
    const timeoutMs = this.options.startTimeoutMs ?? 45_000;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      readyP.then(() => 'ready' as const),
      n.exited.then((code) => `exited with ${code}` as const),
      new Promise<string>((r) => { timer = setTimeout(() => r(`not ready after ${timeoutMs} ms`), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (outcome !== 'ready') {
      throw new Error(`node ${id} ${outcome}:\n${n.log.slice(-30).join('\n')}`);
    }
  }

  /** kill -9; resolves once the process is gone. */
  async kill(id: string): Promise<void> {
    const n = this.node(id);
    if (n.child === undefined) return;
    const exited = n.exited;
    n.child.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM (a clean stop), SIGKILL after graceMs. */
  async stop(id: string, graceMs = 10_000): Promise<void> {
    const n = this.node(id);
    const child = n.child;
    if (child === undefined) return;
    if (n.state === 'paused') child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await n.exited;
    clearTimeout(timer);
  }

  pause(id: string): void {
    const n = this.node(id);
    if (n.child === undefined || n.state !== 'running') return;
    n.child.kill('SIGSTOP');
    n.state = 'paused';
  }

  resume(id: string): void {
    const n = this.node(id);
    if (n.child === undefined || n.state !== 'paused') return;
    n.child.kill('SIGCONT');
    n.state = 'running';
  }

  /** Sets the fault on bytes sent from `from` to `to`, on whichever connection carries them. */
  setLinkFault(from: string, to: string, fault: DirectionFault): void {
    this.faults.set(`${from}>${to}`, fault);
    // from dials to: its bytes go up; to dials from: from's bytes come back down.
    this.proxies.get(`${from}>${to}`)?.setFault('up', fault);
    this.proxies.get(`${to}>${from}`)?.setFault('down', fault);
  }

  /** Cuts both directions between every node of `a` and every node of `b`. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.setLinkFault(x, y, { ...passFault, stall: true });
        this.setLinkFault(y, x, { ...passFault, stall: true });
      }
    }
  }

  /** Every link back to pass (held connections are reset, so nodes redial). */
  heal(): void {
    for (const key of [...this.faults.keys()]) {
      const [from, to] = key.split('>') as [string, string];
      this.setLinkFault(from, to, passFault);
    }
    this.faults.clear();
  }

  /** Ids whose bytes to `to` are currently faulted, for the report. */
  faultedLinks(): string[] {
    return [...this.faults.entries()].filter(([, f]) => f.stall || f.delayMs > 0 || f.resetProbability > 0).map(([k]) => k);
  }

  /** The WAL segment files of a node (<data>/raft/wal/*.wal), oldest first. */
  walSegments(id: string): string[] {
    const dir = join(this.node(id).dataDir, 'raft', 'wal');
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((f) => f.endsWith('.wal')).sort();
    } catch {
      return [];
    }
    return names.map((f) => join(dir, f)).filter((p) => statSync(p).size > 0);
  }

  /** Kills every node at once (sync; used on process exit). */
  private killAllSync(): void {
    for (const n of this.nodes) {
      if (n.child === undefined) continue;
      try {
        n.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Stops every node (SIGKILL: the suite does not test clean shutdown), the proxies and the watchdog. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.nodes.map((n) => this.kill(n.id)));
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    for (const s of this.logs.values()) s.end();
    this.watchdog.stdin?.end();
    process.removeListener('exit', this.onExit);
    if (this.options.keepDir !== true) rmSync(this.dir, { recursive: true, force: true });
  }
}
