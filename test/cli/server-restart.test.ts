// `espresso server` as a process: durable definitions declared by a client are still there after the
// node is stopped with SIGTERM or killed with SIGKILL and started again on the same data directory.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { replyCodeOf } from '../broker/helpers.js';

const root = new URL('../../', import.meta.url).pathname;
const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const tmp = mkdtempSync(join(tmpdir(), 'espresso-restart-'));
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

interface Server {
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
}

/** Starts a node on free ports and resolves with its AMQP port once it logs 'node started'. */
function startServer(dataDir: string): Promise<Server> {
  const child = spawn(process.execPath, ['--import', tsxLoader, join(root, 'src/cli/main.ts'), 'server', '--port', '0', '--data-dir', dataDir, '--log-level', 'info'], {
    cwd: tmp,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let log = '';
  child.stdout!.on('data', (chunk: Buffer) => { log += chunk.toString('utf8'); });
  child.stderr!.on('data', (chunk: Buffer) => { log += chunk.toString('utf8'); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    children.delete(child);
    // A failed exit shows what the node said, so a failing test names the cause.
    if (code !== 0 && code !== null) process.stderr.write(`espresso server exited with ${code}:\n${log}\n`);
    resolve(code);
  }));
  return new Promise<Server>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const line = out.split('\n').find((l) => l.includes('"node started"'));
      if (line === undefined) return;
      clearTimeout(timer);
      resolve({ child, port: (JSON.parse(line) as { port: number }).port, exited });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before starting: ${out}`));
    });
  });
}

async function declareAll(port: number): Promise<void> {
  const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
  const ch = await conn.createChannel();
  await ch.assertExchange('events', 'direct', { durable: true });
  await ch.assertQueue('audit', { durable: true });
  await ch.bindQueue('audit', 'events', 'login');
  await ch.assertQueue('temp', { durable: false });
  await conn.close();
}

/** The definitions are back: passive declares succeed and the binding routes; 'temp' is gone. */
async function expectDefinitions(port: number): Promise<void> {
  const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  await ch.checkExchange('events');
  const before = (await ch.checkQueue('audit')).messageCount;
  // Confirmed = committed and applied in the replicated queue, so the count below includes it.
  ch.publish('events', 'login', Buffer.from('who'));
  await ch.waitForConfirms();
  expect((await ch.checkQueue('audit')).messageCount).toBe(before + 1);
  expect(await replyCodeOf(ch.checkQueue('temp'))).toBe(404);
  await conn.close().catch(() => undefined);
}

describe('espresso server restart', () => {
  it('keeps durable definitions after SIGTERM and after SIGKILL', async () => {
    const dataDir = join(tmp, 'node');
    let server = await startServer(dataDir);
    const secret = readFileSync(join(dataDir, 'cluster-secret'), 'utf8');
    await declareAll(server.port);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);

    server = await startServer(dataDir);
    await expectDefinitions(server.port);
    // The same definitions again (redeclared, then a new one), then no chance to shut down cleanly.
    await declareAll(server.port);
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${server.port}`);
    await (await conn.createChannel()).assertQueue('after-kill', { durable: true });
    await conn.close();
    server.child.kill('SIGKILL');
    await server.exited;

    server = await startServer(dataDir);
    await expectDefinitions(server.port);
    const c2 = await amqp.connect(`amqp://guest:guest@127.0.0.1:${server.port}`);
    await (await c2.createChannel()).checkQueue('after-kill');
    await c2.close();
    // The generated cluster secret is kept, not replaced, across restarts.
    expect(readFileSync(join(dataDir, 'cluster-secret'), 'utf8')).toBe(secret);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 60_000);
  it('keeps every confirmed message of a durable queue across SIGKILL, unacked ones redelivered', async () => {
    const dataDir = join(tmp, 'messages');
    let server = await startServer(dataDir);
    let conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${server.port}`);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('orders', { durable: true });
    for (let i = 0; i < 500; i++) ch.sendToQueue('orders', Buffer.from(`m${i}`), { persistent: true });
    await ch.waitForConfirms();
    // Take three: ack the first; the rest stay unacked (with credit refilled, m3 too) when the node dies.
    const consumer = await conn.createChannel();
    await consumer.prefetch(3);
    const got: amqp.ConsumeMessage[] = [];
    await consumer.consume('orders', (m) => { if (m !== null) got.push(m); });
    for (let i = 0; i < 1000 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    expect(got.map((m) => m.content.toString())).toEqual(['m0', 'm1', 'm2']);
    consumer.ack(got[0]!);
    // The ack counts once its settle is committed. The queue's log is ordered: a publish confirmed
    // after the ack was proposed (the checkQueue round trip orders the two) commits after the settle.
    await consumer.checkQueue('orders');
    ch.sendToQueue('orders', Buffer.from('barrier'), { persistent: true });
    await ch.waitForConfirms();
    // The connection dies with the node: amqplib reports that as an error and never settles close().
    conn.on('error', () => {});
    server.child.kill('SIGKILL');
    await server.exited;

    server = await startServer(dataDir);
    conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${server.port}`);
    const after = await conn.createChannel();
    expect((await after.checkQueue('orders')).messageCount).toBe(500);
    const first = await after.get('orders', { noAck: false });
    expect(first && first.content.toString()).toBe('m1');
    expect(first && first.fields.redelivered).toBe(true);
    const bodies = [(first as amqp.GetMessage).content.toString()];
    for (;;) {
      const m = await after.get('orders', { noAck: true });
      if (m === false) break;
      bodies.push(m.content.toString());
    }
    expect(bodies).toEqual([...Array.from({ length: 499 }, (_, i) => `m${i + 1}`), 'barrier']);
    await conn.close();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 60_000);
});
