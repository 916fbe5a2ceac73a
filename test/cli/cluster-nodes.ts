// Real `espresso server` processes for cluster tests: free loopback ports, start with --seeds or
// --join, wait for "node started", ask a node's status through its cluster port, stop or kill.
// HTTP (/metrics) listens on any free port unless the spec names one; httpPort() reads it back.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import amqp from 'amqplib';
import { afterAll, beforeAll } from 'vitest';
import { freePorts } from '../../cluster/ports.js';
import { hostPort } from '../../src/cli/addresses.js';
import { callNode, withRemoteNode } from '../../src/cluster/control-client.js';
import { CtlMethod, type ClusterStatus } from '../../src/cluster/control-service.js';
import { decodeJson, encodeJson } from '../../src/cluster/metadata-entries.js';
import type { QueueListing } from '../../src/cluster/queue-listing.js';

export const root = new URL('../../', import.meta.url).pathname;
const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const main = join(root, 'src/cli/main.ts');
/** The built entry point that package.json's bin and start script name. */
export const builtMain = join(root, 'dist/src/cli/main.js');

export interface NodeSpec {
  name: string;
  amqpPort: number;
  clusterPort: number;
  dataDir: string;
  secret: string;
  /** --seeds value, or --join value. */
  seeds?: string;
  join?: string;
  /** More server flags (e.g. TLS files). */
  extraArgs?: readonly string[];
  /** HTTP port; any free one by default. */
  httpPort?: number;
  /** Where clients and ctl reach it (default 127.0.0.1). */
  host?: string;
  /** Run the built server as `npm start` does (node dist/src/cli/main.js) instead of the sources through tsx. */
  built?: boolean;
}

export interface NodeProc {
  spec: NodeSpec;
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  ready: Promise<void>;
  /** The HTTP port of this start (from its "node started" line; throws before it). */
  httpPort(): number;
}

const running = new Set<ChildProcess>();

export function killAll(): void {
  for (const c of running) c.kill('SIGKILL');
}

export { freePorts };

export function startNode(spec: NodeSpec, readyTimeoutMs = 30_000): NodeProc {
  const args = [
    ...(spec.built === true ? [builtMain] : ['--import', tsxLoader, main]), 'server', '--node-id', spec.name, '--port', String(spec.amqpPort),
    '--cluster-port', String(spec.clusterPort), '--http-port', String(spec.httpPort ?? 0), '--data-dir', spec.dataDir,
  ];
  // A node given a config file takes its log level from there (a flag would win over the file).
  if (!(spec.extraArgs ?? []).includes('--config')) args.push('--log-level', 'info');
  if (spec.seeds !== undefined) args.push('--seeds', spec.seeds);
  if (spec.join !== undefined) args.push('--join', spec.join);
  if (spec.extraArgs !== undefined) args.push(...spec.extraArgs);
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ESPRESSO_CLUSTER_SECRET: spec.secret } });
  running.add(child);
  let log = '';
  const append = (chunk: Buffer): void => {
    log += chunk.toString('utf8');
    if (log.length > 4_000_000) log = log.slice(-1_000_000);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    running.delete(child);
    resolve(code);
  }));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${spec.name} not ready in ${readyTimeoutMs} ms:\n${log.slice(-4000)}`)), readyTimeoutMs);
    const check = (): void => {
      if (!log.includes('"node started"')) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      resolve();
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${spec.name} exited with ${String(code)} before it was ready:\n${log.slice(-4000)}`));
    });
  });
  ready.catch(() => undefined);
  const httpPort = (): number => {
    const m = [...log.matchAll(/"node started".*?"httpPort":(\d+)/g)].pop();
    if (m === undefined) throw new Error(`${spec.name} has not logged its HTTP port yet`);
    return Number(m[1]);
  };
  return { spec, child, output: () => log, exited, ready, httpPort };
}

export function amqpUrl(n: NodeProc): string {
  return `amqp://guest:guest@${hostPort(n.spec.host ?? '127.0.0.1', n.spec.amqpPort)}`;
}

export function clusterAddress(n: NodeProc): string {
  return hostPort(n.spec.host ?? '127.0.0.1', n.spec.clusterPort);
}

/** The node's cluster-status answer (through a transient peer, as ctl does). */
export async function statusOf(n: NodeProc): Promise<ClusterStatus> {
  const bytes = await withRemoteNode({ address: clusterAddress(n), secret: n.spec.secret, timeoutMs: 5_000 },
    (call) => call(CtlMethod.status, encodeJson({})));
  return decodeJson<ClusterStatus>(bytes);
}

/** Polls `check` every 100 ms until it returns true; throws with `what` after `timeoutMs`. */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<number> {
  const started = Date.now();
  let last: unknown;
  for (let i = 0; Date.now() - started < timeoutMs && i < 10_000; i++) {
    try {
      if (await check()) return Date.now() - started;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last !== undefined ? ` (last error: ${String(last)})` : ''}`);
}

/** Runs `espresso ctl ...` as a process: its exit code and output. */
export function runCtl(args: readonly string[], env: Record<string, string> = {}, built = false): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...(built ? [builtMain] : ['--import', tsxLoader, main]), 'ctl', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
  return new Promise((resolve) => child.once('exit', (code) => {
    running.delete(child);
    resolve({ code, stdout, stderr });
  }));
}

/** Specs of n1..nN on free ports, data under `dir`, one --seeds list naming every node. */
export async function seededSpecs(n: number, dir: string, secret: string): Promise<NodeSpec[]> {
  const ports = await freePorts(2 * n);
  const names = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const seeds = names.map((name, i) => `${name}@127.0.0.1:${ports[n + i]!}`).join(',');
  return names.map((name, i) => ({ name, amqpPort: ports[i]!, clusterPort: ports[n + i]!, dataDir: join(dir, name), secret, seeds }));
}

/** `ctl list-queues` asked of `n` over its cluster port. */
export async function listQueuesOf(n: NodeProc): Promise<QueueListing[]> {
  const bytes = await callNode({ address: clusterAddress(n), secret: n.spec.secret, timeoutMs: 5_000 }, 'ctl.list-queues', new Uint8Array(0));
  return JSON.parse(new TextDecoder().decode(bytes)) as QueueListing[];
}

/** The nodes of a test file's cluster, its clients' connections, and how to open one. */
export interface FileCluster {
  /** The running nodes (a test that kills or restarts one keeps this map up to date). */
  readonly nodes: Map<string, NodeProc>;
  /** How each node was started, to start it again. */
  readonly specs: Map<string, NodeSpec>;
  readonly conns: amqp.ChannelModel[];
  /** An amqplib connection to the node, closed after the file's tests; `onError` hears its errors. */
  connect(name: string, onError?: (e: Error) => void): Promise<amqp.ChannelModel>;
}

/**
 * n seeded nodes (n1..nN) in a temp dir for the tests of one file: started before them; after
 * them the connections close, every node is killed and the dir removed. `built`: the nodes run
 * the built dist/ as `npm start` does.
 */
export function clusterForFile(dirPrefix: string, secret: string, n = 3, o: { built?: boolean } = {}): FileCluster {
  const tmp = mkdtempSync(join(tmpdir(), dirPrefix));
  const nodes = new Map<string, NodeProc>();
  const specs = new Map<string, NodeSpec>();
  const conns: amqp.ChannelModel[] = [];
  afterAll(async () => {
    for (const c of conns) await c.close().catch(() => undefined);
    killAll();
    rmSync(tmp, { recursive: true, force: true });
  });
  beforeAll(async () => {
    for (const seeded of await seededSpecs(n, tmp, secret)) {
      const spec = o.built === true ? { ...seeded, built: true } : seeded;
      specs.set(spec.name, spec);
      nodes.set(spec.name, startNode(spec));
    }
    await Promise.all([...nodes.values()].map((node) => node.ready));
  }, 60_000);
  return {
    nodes,
    specs,
    conns,
    connect: async (name, onError = () => undefined) => {
      const c = await amqp.connect(amqpUrl(nodes.get(name)!));
      c.on('error', onError);
      conns.push(c);
      return c;
    },
  };
}
