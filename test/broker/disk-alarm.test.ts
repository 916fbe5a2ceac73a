// The disk alarm as clients see it (amqplib): free space below --disk-free-limit, or the WAL
// failing its writes, sends connection.blocked "low on disk" and stops reading publishers;
// connection.unblocked when it clears, and what was published meanwhile arrives exactly once.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultBrokerConfig } from '../../src/broker/config.js';
import { startBroker, type BrokerServer } from '../../src/broker/server.js';
import { loadConfig, parseByteSize } from '../../src/cli/config-loader.js';
import { silentLogger } from '../../src/lib/log.js';
import { FaultyIo } from '../storage/faulty-io.js';
import { until } from './helpers.js';
import { RawClient } from './raw-client.js';
import { startReplicatedNode } from './replicated-node.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function watch(conn: amqp.ChannelModel): string[] {
  const events: string[] = [];
  conn.on('blocked', (reason: string) => events.push(`blocked:${reason}`));
  conn.on('unblocked', () => events.push('unblocked'));
  return events;
}

async function connect(u: string): Promise<amqp.ChannelModel> {
  const conn = await amqp.connect(u);
  cleanups.push(async () => { await conn.close().catch(() => {}); });
  return conn;
}

describe('disk alarm from free space', () => {
  async function broker(free: () => number, memory = (): number => 0): Promise<BrokerServer> {
    const b = await startBroker({ ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 1000, diskFreeLimitBytes: 50_000_000 }, {
      logger: silentLogger, clock: { nowMs: () => Date.now() }, readMemoryBytes: memory, collectGarbage: () => {},
      readDiskFreeBytes: () => Promise.resolve(free()), diskCheckIntervalMs: 5,
    });
    cleanups.push(() => b.close());
    return b;
  }

  it('blocks publishers below the limit ("low on disk"), holds their publishes, and unblocks above it', async () => {
    let free = 10_000_000_000;
    const b = await broker(() => free);
    const conn = await connect(`amqp://guest:guest@127.0.0.1:${b.port}`);
    const events = watch(conn);
    const ch = await conn.createChannel();
    await ch.assertQueue('held', { durable: false });
    free = 49_999_999;
    await until(() => events.length === 1, 5000, 'connection.blocked');
    expect(events).toEqual(['blocked:low on disk']);
    expect(b.context.diskAlarm).toBe(true);
    for (let i = 0; i < 3; i++) ch.sendToQueue('held', Buffer.from(`m${i}`));
    const queue = b.context.queues.get('/', 'held')!;
    // As RabbitMQ: the publish that finds the connection blocking goes through, then the
    // connection is not read (later publishes wait in the socket). Another connection is read.
    const other = await (await connect(`amqp://guest:guest@127.0.0.1:${b.port}`)).createChannel();
    await until(() => queue.stats().messagesReady >= 1, 5000, 'the first publish');
    expect((await other.checkQueue('held')).messageCount).toBe(1);
    free = 60_000_000;
    await until(() => events.length === 2, 5000, 'connection.unblocked');
    expect(events).toEqual(['blocked:low on disk', 'unblocked']);
    await until(() => queue.stats().messagesReady === 3, 5000, 'the held publishes arrive');
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = await other.get('held', { noAck: true });
      if (m !== false) got.push(m.content.toString());
    }
    expect(got).toEqual(['m0', 'm1', 'm2']);
  });

  it('names both alarms when memory and disk are low, and blocks until both clear', async () => {
    let free = 10_000_000_000;
    let memory = 0;
    const b = await broker(() => free, () => memory);
    const conn = await connect(`amqp://guest:guest@127.0.0.1:${b.port}`);
    const events = watch(conn);
    memory = 2000;
    free = 1;
    await until(() => b.context.diskAlarm && b.context.memoryAlarm, 5000, 'both alarms');
    // A connection opened now is told both reasons at once, right after open-ok.
    const late = await RawClient.handshake(b.port);
    cleanups.push(() => late.destroy());
    expect((await late.method('connection.blocked')).reason).toBe('low on memory & disk');
    memory = 0;
    await until(() => !b.context.memoryAlarm, 5000, 'memory alarm cleared');
    expect(events.filter((e) => e === 'unblocked')).toEqual([]);
    free = 10_000_000_000;
    await until(() => events.includes('unblocked'), 5000, 'unblocked');
    await late.method('connection.unblocked');
  });
});

describe('disk alarm from failing WAL writes', () => {
  it('blocks publishers while the WAL retries ENOSPC; the held messages are confirmed and queued exactly once after', async () => {
    const io = new FaultyIo();
    const node = await startReplicatedNode({ storageIo: io, storageLimits: { writeRetryDelayMsMin: 1, writeRetryDelayMsMax: 8 } }, { diskFreeLimitBytes: 0 });
    cleanups.push(() => node.stop());
    const conn = await connect(node.url);
    const events = watch(conn);
    const pub = await conn.createConfirmChannel();
    await pub.assertQueue('jobs', { durable: true });
    for (let i = 0; i < 5; i++) pub.sendToQueue('jobs', Buffer.from(`a${i}`), { persistent: true });
    await pub.waitForConfirms();

    io.writeErrno = 'ENOSPC';
    io.partial = true;
    let confirmed = false;
    for (let i = 0; i < 5; i++) pub.sendToQueue('jobs', Buffer.from(`b${i}`), { persistent: true });
    const held = pub.waitForConfirms().then(() => { confirmed = true; });
    await until(() => events.length === 1, 10_000, 'connection.blocked');
    expect(events).toEqual(['blocked:low on disk']);
    expect(node.host.storageAlarm()?.message).toContain('ENOSPC');
    await io.nextFailure();
    expect(confirmed).toBe(false);

    io.writeErrno = undefined;
    await until(() => events.length === 2, 10_000, 'connection.unblocked');
    expect(events[1]).toBe('unblocked');
    await held;
    const sub = await conn.createChannel();
    const got: string[] = [];
    for (let i = 0; i < 20; i++) {
      const m = await sub.get('jobs', { noAck: true });
      if (m === false) break;
      got.push(m.content.toString());
    }
    expect(got).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'b0', 'b1', 'b2', 'b3', 'b4']);
  });
});

describe('--disk-free-limit', () => {
  it('reads sizes with RabbitMQ units', () => {
    expect(parseByteSize('50MB')).toBe(50_000_000);
    expect(parseByteSize('2GB')).toBe(2_000_000_000);
    expect(parseByteSize('1GiB')).toBe(2 ** 30);
    expect(parseByteSize('512k')).toBe(512 * 1024);
    expect(parseByteSize('1000')).toBe(1000);
    expect(parseByteSize('lots')).toBeNaN();
    expect(loadConfig({ configFile: undefined, env: {}, flags: {} }).diskFreeLimitBytes).toBe(50_000_000);
    expect(loadConfig({ configFile: undefined, env: { ESPRESSO_DISK_FREE_LIMIT: '1.5GB' }, flags: {} }).diskFreeLimitBytes).toBe(1_500_000_000);
    expect(() => loadConfig({ configFile: undefined, env: {}, flags: { diskFreeLimitBytes: '5 parsecs' } })).toThrow(/--disk-free-limit.*50MB/);
  });

  it('set above the free space, blocks publishers of a real server at once', async () => {
    const root = new URL('../../', import.meta.url).pathname;
    const tmp = mkdtempSync(join(tmpdir(), 'espresso-diskcli-'));
    const child: ChildProcess = spawn(process.execPath, [
      '--import', pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href, join(root, 'src/cli/main.ts'),
      'server', '--port', '0', '--data-dir', join(tmp, 'data'), '--disk-free-limit', '1000TB',
    ], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => { child.kill('SIGKILL'); rmSync(tmp, { recursive: true, force: true }); });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    await until(() => out.includes('"node started"') || child.exitCode !== null, 30_000, 'the server to start');
    const line = out.split('\n').find((l) => l.includes('"node started"'));
    expect(line, out).toBeDefined();
    const port = (JSON.parse(line!) as { port: number }).port;
    // The alarm is up before anyone connects: connection.blocked follows open-ok at once.
    const c = await RawClient.handshake(port);
    cleanups.push(() => c.destroy());
    expect((await c.method('connection.blocked', 10_000)).reason).toBe('low on disk');
    expect(out).toContain('disk alarm raised');
  }, 60_000);
});
