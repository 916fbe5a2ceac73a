// `espresso cluster up --nodes 3`: three nodes on consecutive ports (AMQP base+k, HTTP base+10000+k,
// cluster base+20000+k), the URLs printed once all are ready, one cluster behind them, and Ctrl-C
// (SIGINT) stops every node before the command exits; a node killed with -9 is reported with the
// commands that start it again while the others carry on, and both commands work (`cluster
// restart`, and the node's own command line, secret-less).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { withRemoteNode } from '../../src/cluster/control-client.js';
import { CtlMethod, type ClusterStatus } from '../../src/cluster/control-service.js';
import { decodeJson, encodeJson } from '../../src/cluster/metadata-entries.js';
import { eventually, killAll, root, runCtl } from './cluster-nodes.js';

const tmp = mkdtempSync(join(tmpdir(), 'espresso-up-'));
afterAll(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A base port whose 3 AMQP, 3 HTTP and 3 cluster ports are free now. */
async function freeBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 10_000 + Math.floor(Math.random() * 25_000);
    const ports = [0, 1, 2].flatMap((k) => [base + k, base + 10_000 + k, base + 20_000 + k]);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new Error('no free base port found');
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    c.once('connect', () => { c.destroy(); resolve(false); });
    c.once('error', () => resolve(true));
  });
}

describe('espresso cluster up', () => {
  it('starts three nodes as one cluster, prints their URLs, and stops them all on Ctrl-C', async () => {
    const base = await freeBase();
    const loader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
    const child = spawn(process.execPath, ['--import', loader, join(root, 'src/cli/main.ts'), 'cluster', 'up', '--nodes', '3', '--base-port', String(base), '--data-dir', tmp], {
      cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await eventually('cluster up prints the URLs and the status hint', () => Promise.resolve(out.includes('cluster-status')), 60_000);
    for (let k = 0; k < 3; k++) expect(out).toContain(`n${k + 1}  amqp://guest:guest@127.0.0.1:${base + k}  http://127.0.0.1:${base + 10_000 + k}/metrics`);
    const metrics = await (await fetch(`http://127.0.0.1:${base + 10_000 + 1}/metrics`)).text();
    expect(metrics).toContain('espresso_identity_info{espresso_node="n2"} 1');
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${base + 2}`);
    const ch = await conn.createChannel();
    await ch.assertExchange('made-on-n3', 'fanout', { durable: true });
    await conn.close();
    const secret = readFileSync(join(tmp, 'cluster-secret'), 'utf8').trim();
    const status = decodeJson<ClusterStatus>(await withRemoteNode({ address: `127.0.0.1:${base + 20_000}`, secret },
      (call) => call(CtlMethod.status, encodeJson({}))));
    expect(status.voters).toEqual(['n1', 'n2', 'n3']);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('all nodes stopped');
    for (let k = 0; k < 3; k++) expect(await refused(base + k)).toBe(true);
  }, 90_000);
});

/** The pid a node's log names in its last "node started" line. */
function pidOf(logFile: string): number {
  const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"node started"'));
  return (JSON.parse(lines.at(-1)!) as { pid: number }).pid;
}

async function declares(port: number, exchange: string): Promise<boolean> {
  const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
  try {
    await (await conn.createChannel()).assertExchange(exchange, 'fanout', { durable: true });
    return true;
  } finally {
    await conn.close().catch(() => {});
  }
}

describe('a node of cluster up that dies', () => {
  it('leaves the others running, and starts again with cluster restart or from its own command line', async () => {
    const base = await freeBase();
    const dir = join(tmp, 'dies');
    const loader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
    const main = join(root, 'src/cli/main.ts');
    const up = spawn(process.execPath, ['--import', loader, main, 'cluster', 'up', '--nodes', '3', '--base-port', String(base), '--data-dir', dir], {
      cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    up.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    up.stderr.on('data', (c: Buffer) => { err += c.toString('utf8'); });
    const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
    await eventually('cluster up prints the URLs and the status hint', () => Promise.resolve(out.includes('cluster-status')), 60_000);
    expect(out).toContain(`status: npx espresso ctl --cluster-address 127.0.0.1:${base + 20_000} --data-dir ${join(dir, 'n1')} cluster-status`);

    process.kill(pidOf(join(dir, 'n2.log')), 'SIGKILL');
    await eventually('cluster up reports n2', () => Promise.resolve(err.includes('n2 exited (signal SIGKILL); n1, n3 keep running')), 20_000);
    expect(err).toContain(`npx espresso cluster restart n2 --data-dir ${dir}`);
    expect(await declares(base, 'while-n2-is-down')).toBe(true);
    const restarted = await runCluster(['restart', 'n2', '--data-dir', dir]);
    expect(restarted.stderr).toBe('');
    expect(restarted.code).toBe(0);
    expect(restarted.stdout).toContain('n2 restarted');
    expect(await declares(base + 1, 'after-n2-restart')).toBe(true);
    const again = await runCluster(['restart', 'n2', '--data-dir', dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('n2 is running');

    // n3 from the command line cluster up printed, without the secret: it reads its own.
    process.kill(pidOf(join(dir, 'n3.log')), 'SIGKILL');
    await eventually('cluster up reports n3', () => Promise.resolve(err.includes('n3 exited (signal SIGKILL)')), 20_000);
    const printed = /npx espresso server (.*--node-id n3 .*)\n/.exec(err)![1]!.split(' ');
    const { ESPRESSO_CLUSTER_SECRET: _none, ...envWithoutSecret } = process.env;
    const byHand: ChildProcess = spawn(process.execPath, ['--import', loader, main, 'server', ...printed], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: envWithoutSecret });
    let handOut = '';
    byHand.stdout!.on('data', (c: Buffer) => { handOut += c.toString('utf8'); });
    try {
      await eventually('n3 started by hand', () => Promise.resolve(handOut.includes('"node started"')), 60_000);
      expect(await declares(base + 2, 'after-n3-by-hand')).toBe(true);
      const status = await runCtl(['--cluster-address', `127.0.0.1:${base + 20_000}`, '--data-dir', join(dir, 'n1'), 'cluster-status']);
      expect(status.code).toBe(0);
      expect(status.stdout.match(/\balive\b/g)).toHaveLength(3);
      expect(handOut).not.toContain('wrong cluster secret');
    } finally {
      byHand.kill('SIGKILL');
    }
    up.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('all nodes stopped');
  }, 180_000);
});

/** `espresso cluster ...` as a process: exit code and output. */
function runCluster(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const loader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
  const child = spawn(process.execPath, ['--import', loader, join(root, 'src/cli/main.ts'), 'cluster', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}
