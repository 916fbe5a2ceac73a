// `npm pack` gives an installable package: the tarball, installed into a fresh directory with npm
// (its dependencies from the registry, or npm's cache when it has them), runs `npx espresso server`
// (with a shipped plugin by name) and an AMQP client publishes and gets a message through it.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, freePorts } from '../cli/cluster-nodes.js';

const root = new URL('../../', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'espresso-pack-'));
let server: ReturnType<typeof spawn> | undefined;
afterAll(() => {
  server?.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('packs a tarball that installs into a fresh directory and runs `npx espresso server`', async () => {
    // prepare (tsc) runs as part of npm pack, so the tarball holds freshly built code.
    execFileSync('npm', ['pack', '--pack-destination', tmp, '--no-fund'], { cwd: root, stdio: 'ignore', timeout: 240_000 });
    const tarball = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    expect(tarball).toMatch(/^espresso-\d+\.\d+\.\d+\.tgz$/);
    const listing = execFileSync('tar', ['-tzf', join(tmp, tarball!)], { encoding: 'utf8' }).split('\n');
    expect(listing).toContain('package/dist/src/cli/main.js');
    expect(listing).toContain('package/dist/plugins/consistent-hash.js');
    expect(listing).toContain('package/packaging/systemd/espresso.service');
    expect(listing.some((f) => f.startsWith('package/test/') || f.startsWith('package/src/'))).toBe(false);
    const app = join(tmp, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'espresso-pack-check', version: '1.0.0', private: true }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(tmp, tarball!)], { cwd: app, stdio: 'ignore', timeout: 300_000 });
    const [port, httpPort, clusterPort] = await freePorts(3);
    server = spawn('npx', ['--no-install', 'espresso', 'server', '--port', String(port), '--http-port', String(httpPort), '--cluster-port', String(clusterPort), '--data-dir', join(app, 'data'), '--plugin', 'consistent-hash'], {
      cwd: app, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    server.stdout!.on('data', (c: Buffer) => { log += c.toString('utf8'); });
    server.stderr!.on('data', (c: Buffer) => { log += c.toString('utf8'); });
    await eventually(`the installed server starts (log so far: ${log.slice(-500)})`, async () => log.includes('"node started"'), 60_000);
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port!}`);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('from-the-tarball', { durable: true });
    ch.sendToQueue('from-the-tarball', Buffer.from('installed'), { persistent: true });
    await ch.waitForConfirms();
    const got = await ch.get('from-the-tarball', { noAck: true });
    expect(got !== false && got.content.toString()).toBe('installed');
    // A shipped plugin loads by name from the installed package.
    await ch.assertExchange('ring', 'x-consistent-hash');
    await conn.close();
    // Its production dependencies serve /metrics too (prom-client).
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort!}/metrics`)).text();
    expect(metrics).toMatch(/^espresso_queue_messages_published_total 1$/m);
    const help = execFileSync('npx', ['--no-install', 'espresso', '--help'], { cwd: app, encoding: 'utf8', timeout: 30_000 });
    expect(help).toContain('espresso - a quorum-replicated AMQP 0-9-1 message broker');
  }, 600_000);
});
