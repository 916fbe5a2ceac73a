// Test helpers: a real broker node in-process on a free loopback port, and small waits that are
// driven by events (bounded by a deadline), not by sleeping.

import { defaultBrokerConfig, type BrokerConfig } from '../../src/broker/config.js';
import { startBroker, type BrokerServer } from '../../src/broker/server.js';
import { silentLogger } from '../../src/lib/log.js';

export async function startTestBroker(overrides: Partial<BrokerConfig> = {}, memory?: () => number): Promise<BrokerServer> {
  return startBroker(
    { ...defaultBrokerConfig, port: 0, memoryHighWatermarkBytes: 0, ...overrides },
    { logger: silentLogger, clock: { nowMs: () => Date.now() }, ...(memory === undefined ? {} : { readMemoryBytes: memory, collectGarbage: () => {} }) },
  );
}

export function url(broker: BrokerServer, extra = ''): string {
  return `amqp://guest:guest@127.0.0.1:${broker.port}${extra}`;
}

/** Resolves when `check` holds, polling once per event-loop turn; fails after `ms`. */
export async function until(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** The AMQP reply code carried by a client library's error (amqplib: .code). */
export async function replyCodeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: unknown; message?: string };
    if (typeof err.code === 'number') return err.code;
    const m = /\b(\d{3})\b/.exec(err.message ?? '');
    if (m !== null) return Number(m[1]);
    throw e;
  }
  throw new Error('expected the operation to fail');
}
