// Real processes on 127.0.0.1: three gossip nodes, one killed with SIGKILL, one paused with
// SIGSTOP and resumed, and a node with the wrong cluster secret that must not get in.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../cluster/ports.js';

interface Member { id: string; status: 'alive' | 'suspect' | 'dead'; incarnation: number }
interface Proc { id: string; port: number; child: ChildProcess; views: Array<{ atMs: number; view: Member[] }>; log: string[] }

const runner = new URL('./gossip-node.ts', import.meta.url).pathname;
const procs = new Map<string, Proc>();

function start(id: string, port: number, secret: string, peers: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', runner, id, String(port), secret, ...peers], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p: Proc = { id, port, child, views: [], log: [] };
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    let nl;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      if (line.startsWith('{')) p.views.push(JSON.parse(line) as { atMs: number; view: Member[] });
    }
  });
  child.stderr!.on('data', (d: Buffer) => p.log.push(d.toString()));
  procs.set(id, p);
  return p;
}

function statusAt(observer: string, target: string): Member | undefined {
  const views = procs.get(observer)!.views;
  return views[views.length - 1]?.view.find((m) => m.id === target);
}

/** Polls (bounded) until cond holds; real processes, so this is the one place that waits. */
async function until(cond: () => boolean, what: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!cond()) {
    if (Date.now() - started > timeoutMs) {
      const views = [...procs.values()].map((p) => `${p.id}: ${JSON.stringify(p.views[p.views.length - 1]?.view)}`).join('\n');
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${views}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - started;
}

const everyoneSees = (observers: string[], target: string, status: Member['status']): boolean =>
  observers.every((o) => statusAt(o, target)?.status === status);

beforeAll(async () => {
  const ports = [await freePort(), await freePort(), await freePort()];
  const addr = (i: number): string => `n${i + 1}=127.0.0.1:${ports[i]}`;
  start('n1', ports[0]!, 'cluster-secret', []);
  start('n2', ports[1]!, 'cluster-secret', [addr(0)]);
  start('n3', ports[2]!, 'cluster-secret', [addr(0), addr(1)]);
  await until(() => ['n1', 'n2', 'n3'].every((o) => ['n1', 'n2', 'n3'].every((t) => statusAt(o, t)?.status === 'alive')),
    'three nodes alive everywhere', 30_000);
});

afterAll(() => {
  for (const p of procs.values()) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGCONT');
      p.child.kill('SIGKILL');
    }
  }
});

describe('gossip between real processes', () => {
  it('a node with the wrong cluster secret cannot join, and the log says so', async () => {
    const port = await freePort();
    const bad = start('n9', port, 'not-the-secret', [`n1=127.0.0.1:${procs.get('n1')!.port}`]);
    await until(() => bad.log.join('').includes('wrong cluster secret') &&
      procs.get('n1')!.log.join('').includes('wrong cluster secret'), 'refusal logged by both', 20_000);
    expect(statusAt('n1', 'n9')).toBeUndefined();
    expect(bad.views[bad.views.length - 1]!.view.map((m) => m.id)).toEqual(['n9']);
    bad.child.kill('SIGKILL');
  });

  it('a paused node is suspected, then marked dead, and rejoins alive after SIGCONT', async () => {
    const n3 = procs.get('n3')!;
    const before = statusAt('n1', 'n3')!.incarnation;
    n3.child.kill('SIGSTOP');
    await until(() => everyoneSees(['n1', 'n2'], 'n3', 'dead'), 'n3 dead at n1 and n2', 30_000);
    const suspected = procs.get('n1')!.views.some((v) => v.view.some((m) => m.id === 'n3' && m.status === 'suspect'));
    expect(suspected).toBe(true);
    n3.child.kill('SIGCONT');
    const rejoinMs = await until(() => everyoneSees(['n1', 'n2'], 'n3', 'alive'), 'n3 alive again', 30_000);
    expect(statusAt('n1', 'n3')!.incarnation).toBeGreaterThan(before);
    process.stdout.write(`[gossip] paused node alive again ${rejoinMs} ms after SIGCONT\n`);
  });

  it('a node killed with SIGKILL is marked dead on the others within a bounded time', async () => {
    await until(() => everyoneSees(['n1', 'n3'], 'n2', 'alive') && everyoneSees(['n2'], 'n3', 'alive'), 'all alive', 20_000);
    procs.get('n2')!.child.kill('SIGKILL');
    const detectMs = await until(() => everyoneSees(['n1', 'n3'], 'n2', 'dead'), 'n2 dead at n1 and n3', 15_000);
    process.stdout.write(`[gossip] SIGKILLed node marked dead everywhere after ${detectMs} ms\n`);
    expect(detectMs).toBeLessThan(15_000);
  });
});
