// `espresso cluster up --nodes 3`: three nodes on consecutive ports (AMQP base+k, HTTP base+10000+k,
// cluster base+20000+k), the URLs printed once all are ready, one cluster behind them, and Ctrl-C
// (SIGINT) stops every node before the command exits.

import { spawn } from 'node:child_process';
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
import { eventually, killAll, root } from './cluster-nodes.js';

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
    await eventually('cluster up prints the URLs', () => Promise.resolve(out.includes('is up')), 60_000);
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
