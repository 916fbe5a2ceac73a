// espresso for side-by-side runs: builds it if asked (or if dist/ is missing), starts a single
// node (`node dist/src/cli/main.js server --port P --data-dir D`) or three nodes on loopback that
// bootstrap one cluster from the same --seeds list; stops exactly those.

import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { callNode } from '../src/cluster/control-client.js';
import { nodeId } from '../src/lib/ids.js';
import type { ClusterStatus } from '../src/cluster/control-service.js';
import { decodeJson, encodeJson } from '../src/cluster/metadata-entries.js';
import { ObserveMethod, type ProfileTicket } from '../src/observe/observe-service.js';
import type { StageBreakdown } from '../src/observe/stage-summary.js';
import type { Observation } from './report.js';
import { register, run, terminate, waitUntil, portOpen, alive, type BrokerHandle, type StorageCounters } from './broker-process.js';

const repoDir = new URL('..', import.meta.url).pathname;
const mainJs = join(repoDir, 'dist', 'src', 'cli', 'main.js');

const singlePort = 5790;
const clusterPorts = [5795, 5796, 5797];
const clusterPeerPort = (amqpPort: number): number => 20000 + amqpPort;
const benchSecret = 'espresso-bench';

/** Compiles the project when asked or when the entry point is missing (type errors elsewhere do not stop emit). */
export async function ensureEspressoBuilt(force: boolean, log: (line: string) => void): Promise<string | undefined> {
  if (!force && existsSync(mainJs)) return undefined;
  log('espresso: building (tsc -p tsconfig.json)');
  await run(join(repoDir, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: repoDir, timeoutMs: 600_000 });
  return existsSync(mainJs) ? undefined : `no build at ${mainJs} (tsc did not emit it)`;
}

/** Why a 3-node espresso cannot start with this build, or undefined when it can. */
export async function clusterUnsupported(): Promise<string | undefined> {
  const help = await run(process.execPath, [mainJs, 'server', '--help'], { timeoutMs: 20_000 });
  const text = help.stdout + help.stderr;
  const missing = ['--node-id', '--cluster-port', '--seeds'].filter((f) => !text.includes(f));
  return missing.length === 0 ? undefined : `this build's 'espresso server' has no ${missing.join(', ')} yet (cluster mode is issue 8)`;
}

interface EspressoNode {
  pid: number;
  port: number;
}

/** Another build to run instead of this checkout's (a baseline commit), more server flags, other AMQP ports (cluster: + 20000). */
export interface EspressoOptions {
  mainJs?: string;
  extraArgs?: readonly string[];
  ports?: readonly number[];
}

function launch(args: string[], dir: string, o: EspressoOptions): number {
  mkdirSync(dir, { recursive: true });
  const out = openSync(join(dir, 'stdout.log'), 'a');
  const child = spawn(process.execPath, [o.mainJs ?? mainJs, 'server', ...args, ...(o.extraArgs ?? [])], { cwd: repoDir, detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error('could not start espresso');
  return child.pid;
}

/**
 * Same memory budget as RabbitMQ's default vm_memory_high_watermark (0.4 of RAM per node), so the
 * backlog scenario blocks publishers at the same point on both (espresso's own default is 1 GiB).
 */
export const memoryHighWatermarkBytes = Math.floor(totalmem() * 0.4);

function nodeArgs(topology: 'single' | 'cluster', i: number, port: number, dataDir: string, ports: readonly number[]): string[] {
  const base = ['--port', String(port), '--bind', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'warn', '--node-name', `bench${i + 1}`,
    '--memory-high-watermark', String(memoryHighWatermarkBytes), '--cluster-port', String(clusterPeerPort(port)), '--cluster-secret', benchSecret];
  if (topology === 'single') return base;
  const seeds = ports.map((p, k) => `bench${k + 1}@127.0.0.1:${clusterPeerPort(p)}`).join(',');
  return [...base, '--node-id', `bench${i + 1}`, '--seeds', seeds];
}

export async function startEspresso(topology: 'single' | 'cluster', workDir: string, log: (line: string) => void, o: EspressoOptions = {}): Promise<BrokerHandle> {
  const base = join(workDir, `espresso-${topology}`);
  rmSync(base, { recursive: true, force: true });
  const ports = o.ports ?? (topology === 'single' ? [singlePort] : clusterPorts);
  for (const p of ports) {
    if (await portOpen(p)) throw new Error(`port ${p} is already in use; is another broker running there?`);
  }
  const nodes: EspressoNode[] = [];
  const handle = register({
    broker: 'espresso', topology, urls: ports.map((p) => `amqp://guest:guest@127.0.0.1:${p}`), processes: [],
    storageCounters: () => storageCounters(ports),
    observe: (seconds) => observe(ports, seconds),
    stop: async () => {
      for (const n of nodes) await terminate(n.pid, 15_000);
      rmSync(base, { recursive: true, force: true });
      log('espresso: stopped');
    },
  });
  ports.forEach((port, i) => {
    const dir = join(base, `node${i + 1}`);
    nodes.push({ pid: launch(nodeArgs(topology, i, port, join(dir, 'data'), ports), dir, o), port });
  });
  const ready = await waitUntil(async () => (await Promise.all(nodes.map((n) => portOpen(n.port)))).every(Boolean) || nodes.some((n) => !alive(n.pid)), 60_000);
  const dead = nodes.filter((n) => !alive(n.pid));
  if (!ready || dead.length > 0) throw new Error(`espresso did not start (see ${base}/node*/stdout.log)`);
  handle.processes = nodes.map((n, i) => ({ name: `node espresso bench${i + 1}`, pid: n.pid }));
  log(`espresso: ${topology} up (pids ${nodes.map((n) => n.pid).join(', ')})`);
  return handle;
}

/** `ctl profile stages` over the next `seconds` (asked of node 1) and a CPU profile summary of every node, at once. */
async function observe(ports: readonly number[], seconds: number): Promise<Observation> {
  const ask = (i: number, method: string, payload: unknown): Promise<Uint8Array> => callNode({
    address: `127.0.0.1:${clusterPeerPort(ports[i]!)}`, nodeId: nodeId(`bench${i + 1}`), secret: benchSecret, timeoutMs: seconds * 1000 + 60_000,
  }, method, encodeJson(payload));
  const stages = ask(0, ObserveMethod.stages, { seconds }).then((b) => decodeJson<StageBreakdown>(b));
  const cpu = Promise.all(ports.map((_, i) => ask(i, ObserveMethod.profile, { kind: 'cpu', seconds, keep: false })
    .then((b) => decodeJson<ProfileTicket>(b)).then((t) => ({ node: t.node, summary: t.summary! }))));
  return { seconds, stages: await stages, cpu: await cpu };
}

/** fsyncs and records of every node's write-ahead log, asked with `ctl cluster-status` over the cluster port. */
async function storageCounters(ports: readonly number[]): Promise<StorageCounters | undefined> {
  try {
    const all = await Promise.all(ports.map(async (p, i) => {
      const bytes = await callNode({ address: `127.0.0.1:${clusterPeerPort(p)}`, nodeId: nodeId(`bench${i + 1}`), secret: benchSecret, timeoutMs: 5_000 }, 'ctl.status', new Uint8Array(0));
      return (JSON.parse(new TextDecoder().decode(bytes)) as ClusterStatus).storage;
    }));
    return { fsyncs: all.reduce((a, s) => a + s.fsyncs, 0), records: all.reduce((a, s) => a + s.recordsWritten, 0) };
  } catch {
    return undefined; // an older build without storage counters: the figure is left out
  }
}
