// The nodes of a local cluster (`espresso cluster up`) as child processes: started, watched (one
// that dies is reported with the commands that start it again, and the others keep running),
// restarted on request, stopped together. `espresso cluster restart NODE` asks the running
// `cluster up` through a control port on 127.0.0.1 named in <data-dir>/cluster-up.json (mode 600,
// with a token), so the restarted node is again its child and stops with the others on Ctrl-C.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

export interface LocalNode {
  name: string;
  amqpPort: number;
  clusterPort: number;
  /** Flags of its `espresso server` command. */
  serverArgs: readonly string[];
}

interface Running {
  process: ChildProcess;
  exited: Promise<void>;
  ready: Promise<boolean>;
}

const readyTimeoutMs = 60_000;
const stopGraceMs = 10_000;
const stateFile = 'cluster-up.json';
/** A control request line longer than this is not ours: the connection is dropped. */
const requestBytesMax = 4096;

/** What `cluster up` leaves in its data directory for `cluster restart`. */
interface ControlState {
  pid: number;
  port: number;
  token: string;
  nodes: Array<{ name: string; command: string }>;
}

/** The command a person types to start `node` by hand (its secret is in its data directory). */
export function serverCommandOf(node: LocalNode): string {
  return `npx espresso server ${node.serverArgs.join(' ')}`;
}

export class LocalCluster {
  private readonly running = new Map<string, Running>();
  private stopping = false;

  constructor(
    readonly nodes: readonly LocalNode[],
    private readonly logDir: string,
    private readonly env: Record<string, string | undefined>,
    /** A node exited while the cluster was not stopping. */
    private readonly onDied: (node: LocalNode, how: string) => void,
  ) {}

  /** Starts `name`; resolves true once it logged "node started", false if it exited or timed out first. */
  start(name: string): Promise<boolean> {
    const node = this.node(name);
    const script = process.argv[1]!;
    const child = spawn(process.execPath, [...process.execArgv, script, 'server', ...node.serverArgs], { stdio: ['ignore', 'pipe', 'pipe'], env: this.env });
    const log = createWriteStream(join(this.logDir, `${name}.log`), { flags: 'a' });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const exited = new Promise<void>((done) => child.once('exit', (code, signal) => {
      this.running.delete(name);
      if (!this.stopping) this.onDied(node, signal !== null ? `signal ${signal}` : `exit code ${String(code)}`);
      done();
    }));
    const ready = new Promise<boolean>((done) => {
      let seen = '';
      const timer = setTimeout(() => done(false), readyTimeoutMs);
      child.stdout!.on('data', (chunk: Buffer) => {
        if (seen.length > 1_000_000) seen = seen.slice(-10_000);
        seen += chunk.toString('utf8');
        if (!seen.includes('"node started"')) return;
        clearTimeout(timer);
        done(true);
      });
      void exited.then(() => { clearTimeout(timer); done(false); });
    });
    this.running.set(name, { process: child, exited, ready });
    return ready;
  }

  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  /** Starts a node that is not running (a restart request). */
  async restart(name: string): Promise<{ ok: boolean; message: string }> {
    if (!this.nodes.some((n) => n.name === name)) {
      return { ok: false, message: `no node '${name}' in this cluster (nodes: ${this.nodes.map((n) => n.name).join(', ')})` };
    }
    const running = this.running.get(name);
    if (running !== undefined) return { ok: false, message: `${name} is running (pid ${String(running.process.pid)})` };
    if (this.stopping) return { ok: false, message: 'the cluster is stopping' };
    const node = this.node(name);
    if (await this.start(name)) return { ok: true, message: `${name} restarted: amqp://guest:guest@127.0.0.1:${node.amqpPort} (pid ${String(this.running.get(name)?.process.pid)})` };
    return { ok: false, message: `${name} did not start; see ${join(this.logDir, `${name}.log`)}` };
  }

  /** SIGTERM to every running node, SIGKILL after a grace period; resolves when all exited. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    const all = [...this.running.values()];
    for (const r of all) r.process.kill('SIGTERM');
    const timer = setTimeout(() => { for (const r of all) r.process.kill('SIGKILL'); }, stopGraceMs);
    await Promise.all(all.map((r) => r.exited));
    clearTimeout(timer);
  }

  /** A second Ctrl-C: no grace. */
  killAll(): void {
    for (const r of this.running.values()) r.process.kill('SIGKILL');
  }

  private node(name: string): LocalNode {
    const node = this.nodes.find((n) => n.name === name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return node;
  }
}

/**
 * Serves restart requests for `cluster` on 127.0.0.1 (any free port) and records where in
 * <dir>/cluster-up.json; the returned close removes both.
 */
export async function serveRestarts(cluster: LocalCluster, dir: string): Promise<() => void> {
  const token = randomBytes(16).toString('hex');
  const server: Server = createServer((socket) => answer(socket, cluster, token));
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const port = (server.address() as { port: number }).port;
  const state: ControlState = { pid: process.pid, port, token, nodes: cluster.nodes.map((n) => ({ name: n.name, command: serverCommandOf(n) })) };
  const path = join(dir, stateFile);
  writeFileSync(path, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  return () => {
    server.close();
    rmSync(path, { force: true });
  };
}

function answer(socket: Socket, cluster: LocalCluster, token: string): void {
  let line = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    line += chunk;
    if (line.length > requestBytesMax) return void socket.destroy();
    const end = line.indexOf('\n');
    if (end === -1) return;
    socket.removeAllListeners('data');
    let request: { token?: unknown; restart?: unknown };
    try {
      request = JSON.parse(line.slice(0, end)) as typeof request;
    } catch {
      return void socket.destroy();
    }
    if (request.token !== token || typeof request.restart !== 'string') return void socket.end(`${JSON.stringify({ ok: false, message: 'refused: not a request of this cluster' })}\n`);
    void cluster.restart(request.restart).then((r) => socket.end(`${JSON.stringify(r)}\n`));
  });
}

export type RestartOutcome =
  | { readonly kind: 'answered'; readonly ok: boolean; readonly message: string }
  /** No `cluster up` runs for this directory; `command` (if the node is known) starts it by hand. */
  | { readonly kind: 'no-cluster'; readonly message: string; readonly command: string | undefined };

/** Asks the `cluster up` running on `dir` to restart `name`. */
export async function requestRestart(dir: string, name: string): Promise<RestartOutcome> {
  let state: ControlState;
  try {
    state = JSON.parse(readFileSync(join(dir, stateFile), 'utf8')) as ControlState;
  } catch {
    return { kind: 'no-cluster', message: `no 'espresso cluster up' runs with --data-dir ${dir} (no ${join(dir, stateFile)})`, command: undefined };
  }
  const command = state.nodes.find((n) => n.name === name)?.command;
  const reply = await new Promise<string | undefined>((done) => {
    const c = createConnection({ host: '127.0.0.1', port: state.port });
    let text = '';
    c.setEncoding('utf8');
    c.once('connect', () => c.write(`${JSON.stringify({ token: state.token, restart: name })}\n`));
    c.on('data', (chunk: string) => { text += chunk; });
    c.once('end', () => done(text));
    c.once('error', () => done(undefined));
  });
  if (reply === undefined) {
    return { kind: 'no-cluster', message: `the 'espresso cluster up' of ${dir} (pid ${state.pid}) does not answer; it has stopped`, command };
  }
  try {
    const r = JSON.parse(reply) as { ok: boolean; message: string };
    return { kind: 'answered', ok: r.ok, message: r.message };
  } catch {
    return { kind: 'answered', ok: false, message: `unexpected answer from 'espresso cluster up': ${reply.slice(0, 200)}` };
  }
}
