// `espresso rpc` as a user runs it against a real node: serve-echo answers until Ctrl-C, call
// prints the result (or the error and exit 1), bench prints a row per number of callers, and bad
// input or an unreachable broker gets the documented exit codes.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amqpUrl, freePorts, root, startNode, type NodeProc } from './cluster-nodes.js';

const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const mainTs = join(root, 'src/cli/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'espresso-rpc-cli-'));
let node: NodeProc;
let url = '';
const children = new Set<ChildProcess>();

interface Run {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

function espresso(args: readonly string[]): Run {
  const child = spawn(process.execPath, ['--import', tsxLoader, mainTs, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
  child.stderr!.on('data', (c: Buffer) => { err += c.toString('utf8'); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    children.delete(child);
    resolve(code);
  }));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  const [amqpPort, clusterPort] = await freePorts(2);
  node = startNode({ name: 'n1', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(dir, 'n1'), secret: 'rpc-cli' });
  await node.ready;
  url = amqpUrl(node);
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  node?.child.kill('SIGKILL');
  await node?.exited;
  rmSync(dir, { recursive: true, force: true });
});

describe('espresso rpc', () => {
  it('serve-echo answers calls until Ctrl-C; call prints the result as JSON', async () => {
    const server = espresso(['rpc', 'serve-echo', '--url', url, '--name', 'cli.echo']);
    await until('serve-echo to serve', () => server.stdout().includes("serving 'cli.echo'"));
    const call = espresso(['rpc', 'call', 'cli.echo', '{"a":[1,2,"three"]}', '--url', url, '--timeout', '5000']);
    expect(await call.exited).toBe(0);
    expect(call.stdout()).toBe('{"a":[1,2,"three"]}\n');
    const bench = espresso(['rpc', 'bench', '--url', url, '--name', 'cli.echo', '--no-server', '--callers', '1,3', '--seconds', '1']);
    expect(await bench.exited).toBe(0);
    const rows = bench.stdout().trim().split('\n').slice(2).map((l) => l.trim().split(/\s+/));
    expect(rows.map((r) => r[0])).toEqual(['1', '3']);
    for (const r of rows) {
      expect(Number(r[1]!.replace(/,/g, ''))).toBeGreaterThan(0);
      expect(r[4]).toBe('0');
    }
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
    expect(server.stdout()).toMatch(/SIGINT: stopped after \d+ calls/);
  }, 90_000);

  it('bench serves echo itself when asked nothing else', async () => {
    const bench = espresso(['rpc', 'bench', '--url', url, '--callers', '2', '--seconds', '1', '--size', '64']);
    expect(await bench.exited).toBe(0);
    expect(bench.stdout()).toMatch(/64-byte payloads/);
    expect(bench.stdout().trim().split('\n')).toHaveLength(3);
  }, 60_000);

  it('exits 1 with the error code when the call fails, 64 on bad input, 69 when no broker answers', async () => {
    const none = espresso(['rpc', 'call', 'cli.nobody', '1', '--url', url]);
    expect(await none.exited).toBe(1);
    expect(none.stderr()).toContain('NO_SERVER');
    const badJson = espresso(['rpc', 'call', 'cli.echo', '{nope', '--url', url]);
    expect(await badJson.exited).toBe(64);
    expect(badJson.stderr()).toContain('not JSON');
    const badUrl = espresso(['rpc', 'call', 'cli.echo', '1', '--url', 'http://x']);
    expect(await badUrl.exited).toBe(64);
    const [closed] = await freePorts(1);
    const down = espresso(['rpc', 'call', 'cli.echo', '1', '--url', `amqp://guest:guest@127.0.0.1:${closed!}`]);
    expect(await down.exited).toBe(69);
    expect(down.stderr()).toContain('could not connect');
  }, 60_000);
});
