// What a node logs about its clients, as an operator reads it: every connection's open and close
// at info (with who and why), and no warning for what a client did right, such as deleting a
// queue it consumes from on the same channel.

import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultBrokerConfig } from '../../src/broker/config.js';
import { startBroker } from '../../src/broker/server.js';
import { createLogger, type Logger } from '../../src/lib/log.js';
import { until } from './helpers.js';
import { startReplicatedNode } from './replicated-node.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function capture(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>), clock: { nowMs: () => Date.now() }, level: 'info', component: 'test' });
  return { logger, lines };
}

async function localNode(logger: Logger): Promise<string> {
  const b = await startBroker({ ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0, diskFreeLimitBytes: 0 }, { logger, clock: { nowMs: () => Date.now() } });
  cleanups.push(() => b.close());
  return `amqp://guest:guest@127.0.0.1:${b.port}`;
}

async function replicatedNode(logger: Logger): Promise<string> {
  const n = await startReplicatedNode({ logger });
  cleanups.push(() => n.stop());
  return n.url;
}

describe('connection log', () => {
  it('logs each connection close at info like its open, with the reason', async () => {
    const { logger, lines } = capture();
    const url = await localNode(logger);
    const polite = await amqp.connect(url);
    await polite.close();
    const rude = await amqp.connect(url);
    (rude.connection as unknown as { stream: { destroy(): void } }).stream.destroy();
    await until(() => lines.filter((l) => l['event'] === 'connection closed').length === 2, 5000, 'both closes to be logged');
    const opened = lines.filter((l) => l['event'] === 'connection opened');
    const closed = lines.filter((l) => l['event'] === 'connection closed');
    expect(opened.map((l) => l['connection'])).toEqual(closed.map((l) => l['connection']));
    expect(closed.map((l) => [l['level'], l['user'], l['vhost'], l['reason']])).toEqual([
      ['info', 'guest', '/', 'client closed the connection (200 Cheers, thanks)'],
      ['info', 'guest', '/', 'client closed the TCP connection without connection.close'],
    ]);
  });

  for (const [kind, start, durable] of [['transient', localNode, false], ['replicated', replicatedNode, true]] as const) {
    it(`logs no warning when a channel deletes a ${kind} queue it consumes, then closes`, async () => {
      const { logger, lines } = capture();
      const url = await start(logger);
      const conn = await amqp.connect(url);
      const ch = await conn.createChannel();
      await ch.assertQueue('work', { durable });
      await ch.consume('work', () => {});
      await ch.deleteQueue('work');
      await ch.close();
      await conn.close();
      await until(() => lines.some((l) => l['event'] === 'connection closed'), 5000, 'the close to be logged');
      await new Promise((r) => setTimeout(r, 200));
      expect(lines.filter((l) => l['level'] === 'warn' || l['level'] === 'error')).toEqual([]);
    });
  }
});
