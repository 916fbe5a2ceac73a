// `espresso ctl` against a one-node server: the secret read from the node's data dir, the status
// with the AMQP port the node got from the OS, the exit codes of a usage mistake and of a cluster
// port nobody listens on; and a status from a node still waiting for its cluster's quorum.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, freePorts, killAll, runCtl, startNode } from './cluster-nodes.js';

const tmp = mkdtempSync(join(tmpdir(), 'espresso-ctl-'));
afterAll(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

describe('espresso ctl', () => {
  it('reads the secret from --data-dir and shows the one node with the AMQP port it got', async () => {
    const [clusterPort, deadPort] = await freePorts(2);
    const dataDir = join(tmp, 'solo');
    // No --cluster-secret: the node generates one and keeps it in its data dir.
    const solo = startNode({ name: 'solo', amqpPort: 0, clusterPort: clusterPort!, dataDir, secret: '' });
    await solo.ready;
    const amqpPort = (JSON.parse(solo.output().split('\n').find((l) => l.includes('"node started"'))!) as { port: number }).port;
    const status = await runCtl(['--cluster-address', `127.0.0.1:${clusterPort!}`, '--data-dir', dataDir, 'cluster-status']);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('metadata leader: solo');
    expect(status.stdout).toMatch(new RegExp(`solo\\s+alive\\s+voter\\s+\\d+\\s+127\\.0\\.0\\.1:${clusterPort!}\\s+127\\.0\\.0\\.1:${amqpPort}`));
    // With the id given, the node is not asked for it; a wrong secret is still named as such.
    const byId = await runCtl(['--cluster-address', `solo@127.0.0.1:${clusterPort!}`, '--data-dir', dataDir, '--json', 'cluster-status']);
    expect(byId.code).toBe(0);
    expect((JSON.parse(byId.stdout) as { metaLeader: string }).metaLeader).toBe('solo');
    // ctl has its own way in: the node logs no refusal (nor any warning) for it.
    expect(solo.output().split('\n').filter((l) => l.includes('"level":"warn"') || l.includes('"level":"error"'))).toEqual([]);
    const wrong = await runCtl(['--cluster-address', `solo@127.0.0.1:${clusterPort!}`, '--cluster-secret', 'wrong', 'cluster-status']);
    expect(wrong.code).toBe(69);
    expect(wrong.stderr).toContain('refused our cluster secret');
    const usage = await runCtl(['--cluster-address', `127.0.0.1:${clusterPort!}`, '--data-dir', dataDir, 'no-such-command']);
    expect(usage.code).toBe(64);
    expect(usage.stderr).toContain("unknown command 'no-such-command'");
    const nobody = await runCtl(['--cluster-address', `127.0.0.1:${deadPort!}`, '--cluster-secret', 'x', 'cluster-status']);
    expect(nobody.code).toBe(69);
    expect(nobody.stderr).toContain(`nothing answers at 127.0.0.1:${deadPort!}`);
  }, 60_000);

  it('answers cluster-status while the node still waits for a quorum of its seeds', async () => {
    const [amqpPort, clusterPort, otherPort] = await freePorts(3);
    const seeds = `a@127.0.0.1:${clusterPort!},b@127.0.0.1:${otherPort!}`;
    const a = startNode({ name: 'a', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(tmp, 'a'), secret: 's', seeds });
    // b never starts: a cannot elect a metadata leader, yet ctl gets an answer from it.
    await eventually('a answers ctl', async () => {
      const r = await runCtl(['--cluster-address', `127.0.0.1:${clusterPort!}`, '--cluster-secret', 's', 'cluster-status']);
      return r.code === 0 && r.stdout.includes('still starting') && /voters: a,b/.test(r.stdout);
    }, 30_000);
    expect(a.output()).not.toContain('"node started"');
    a.child.kill('SIGKILL');
    await a.exited;
  }, 60_000);
});
