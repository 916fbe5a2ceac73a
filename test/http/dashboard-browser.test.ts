// The dashboard at / in a real headless browser (Debian's chromium, installed here with apt-get
// when missing): with the broker's credentials the page fills its tables from the management API
// (a queue declared over AMQP with its depth and leader, the node, a named connection); without
// them the node answers 401 and the page shows nothing. A screenshot is written as a PNG.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startManagedNode, type ManagedNode } from './management-node.js';

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1, stdout, stderr });
    });
  });
}

const chromiumPath = '/usr/bin/chromium';

/** null when chromium is there (installed now if it was not), else why it cannot be. */
async function ensureChromium(): Promise<string | null> {
  if (existsSync(chromiumPath)) return null;
  const install = (): ReturnType<typeof run> => run('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '--no-install-recommends', 'chromium'], 900_000);
  let r = await install();
  if (r.code !== 0) {
    await run('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'update'], 300_000);
    r = await install();
  }
  return existsSync(chromiumPath) ? null : `apt-get install chromium failed: ${r.stderr.slice(-300)}`;
}

const missing = await ensureChromium();
if (missing !== null) process.stderr.write(`skipping the dashboard browser test: ${missing}\n`);

function chromium(url: string, extra: string[]): ReturnType<typeof run> {
  return run(chromiumPath, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
    '--virtual-time-budget=10000', '--window-size=1280,900', ...extra, url], 120_000);
}

describe.skipIf(missing !== null)('the dashboard in headless chromium', () => {
  let m: ManagedNode;
  let conn: amqp.ChannelModel;
  const out = mkdtempSync(join(tmpdir(), 'espresso-dashboard-'));

  beforeAll(async () => {
    m = await startManagedNode();
    conn = await amqp.connect(m.node.url, { clientProperties: { connection_name: 'dash-conn' } });
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('dash-q', { durable: true });
    for (let i = 0; i < 3; i++) ch.sendToQueue('dash-q', Buffer.from(`m${i}`), { persistent: true });
    await ch.waitForConfirms();
  }, 60_000);
  afterAll(async () => {
    await conn?.close().catch(() => undefined);
    await m?.stop();
    rmSync(out, { recursive: true, force: true });
  });

  it('shows the cluster, a queue with its depth and leader, and a connection', async () => {
    const port = new URL(m.base).port;
    const page = await chromium(`http://guest:guest@127.0.0.1:${port}/`, ['--dump-dom']);
    expect(page.code).toBe(0);
    const dom = page.stdout;
    expect(dom).toMatch(/<td>\/<\/td><td>dash-q<\/td><td>classic<\/td><td class="ok">running<\/td><td class="n">3<\/td><td class="n">0<\/td>/);
    expect(dom).toMatch(/<td>dash-q<\/td>.*?<td>n1<\/td><td>n1<\/td>/);
    expect(dom).toMatch(/<td>n1<\/td><td class="ok">yes<\/td>/);
    expect(dom).toContain('<td>dash-conn</td>');
    expect(dom).toContain('node n1 · ');
    const shot = join(out, 'dashboard.png');
    const s = await chromium(`http://guest:guest@127.0.0.1:${port}/`, [`--screenshot=${shot}`]);
    expect(s.code).toBe(0);
    expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
  }, 180_000);

  it('shows nothing without credentials: the node answers 401', async () => {
    const page = await chromium(`http://127.0.0.1:${new URL(m.base).port}/`, ['--dump-dom']);
    expect(page.stdout).not.toContain('dash-q');
    expect((await fetch(`${m.base}/`)).status).toBe(401);
  }, 180_000);
});
