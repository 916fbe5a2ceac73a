// The built server, as `npm start` runs it: package.json's start command (node
// dist/src/cli/main.js server, what the pretest build made) on three nodes, and the built ctl.
// Every other process test runs the sources through tsx, so this is the one that would notice a
// build that compiles but does not run (a missing file in dist/, an import tsx resolves and node
// does not).

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtMain, clusterAddress, clusterForFile, eventually, root, runCtl } from './cluster-nodes.js';

const secret = 'built-server-secret';

/** Newest modification time of the .ts files under `dir`, in ms. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

// npm test's pretest has built dist/ just now; a run of this file alone builds it when it is
// missing or older than the sources, so it never tests yesterday's build.
beforeAll(() => {
  if (existsSync(builtMain) && statSync(builtMain).mtimeMs >= newestSource(join(root, 'src'))) return;
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit', timeout: 300_000 });
}, 320_000);

const { nodes, connect } = clusterForFile('espresso-built-', secret, 3, { built: true });

describe('the built server (npm start)', () => {
  it('is what package.json starts: node dist/src/cli/main.js server', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
    expect(pkg.scripts['start']).toBe('node dist/src/cli/main.js server');
    expect(join(root, pkg.bin['espresso']!)).toBe(builtMain);
    for (const n of nodes.values()) expect(n.child.spawnargs.slice(1, 3)).toEqual([builtMain, 'server']);
  });

  it('three built nodes form a cluster: a durable queue published on n1 is consumed on n3, and the built ctl sees them all', async () => {
    const pub = await (await connect('n1')).createConfirmChannel();
    await pub.assertQueue('from-dist', { durable: true });
    const bodies = Array.from({ length: 100 }, (_, i) => `built-${i}`);
    for (const b of bodies) pub.sendToQueue('from-dist', Buffer.from(b), { persistent: true });
    await pub.waitForConfirms();
    const sub = await (await connect('n3')).createChannel();
    const got: string[] = [];
    await sub.consume('from-dist', (m) => {
      if (m === null) return;
      got.push(m.content.toString());
      sub.ack(m);
    });
    await eventually('100 messages on n3', () => Promise.resolve(got.length === bodies.length));
    expect(got).toEqual(bodies);

    const status = await runCtl(['--cluster-address', clusterAddress(nodes.get('n2')!), '--cluster-secret', secret, '--json', 'cluster-status'], {}, true);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    const s = JSON.parse(status.stdout) as { nodes: Array<{ id: string; status: string }>; metaLeader: string | null };
    expect(s.nodes.map((n) => [n.id, n.status]).sort()).toEqual([['n1', 'alive'], ['n2', 'alive'], ['n3', 'alive']]);
    expect(s.metaLeader).not.toBeNull();
  }, 60_000);

  it('stops cleanly on SIGTERM', async () => {
    for (const n of nodes.values()) n.child.kill('SIGTERM');
    expect(await Promise.all([...nodes.values()].map((n) => n.exited))).toEqual([0, 0, 0]);
  }, 60_000);
});
