// What both broker managers share: the handle the runner uses, bounded waits, commands with a
// timeout, /proc sampling of the broker's own processes, and a registry that stops every broker
// this run started when it ends, fails or is interrupted (Ctrl-C).

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { parseProcStatTicks, parseStatusBytes } from './stats.js';
import type { Observation } from './report.js';

export interface BrokerProcess {
  name: string;
  pid: number;
}

export interface BrokerHandle {
  broker: 'espresso' | 'rabbitmq';
  topology: 'single' | 'cluster';
  /** One AMQP URL per node, loopback only. */
  urls: string[];
  /** The processes whose CPU and memory count as the broker's (beam.smp per node, node per espresso node). */
  processes: BrokerProcess[];
  /** Write-ahead log counters summed over the nodes (espresso only: RabbitMQ does not expose its fsyncs). */
  storageCounters?(): Promise<StorageCounters | undefined>;
  /** espresso only: the stage breakdown over the next `seconds` and a CPU profile summary of every node. */
  observe?(seconds: number): Promise<Observation>;
  stop(): Promise<void>;
}

export interface StorageCounters {
  fsyncs: number;
  records: number;
}

const live = new Set<BrokerHandle>();

export function register(handle: BrokerHandle): BrokerHandle {
  live.add(handle);
  const stop = handle.stop;
  // Ctrl-C and the runner's own cleanup may both stop a broker: the second call waits for the first.
  let stopping: Promise<void> | undefined;
  handle.stop = () => {
    live.delete(handle);
    stopping ??= stop();
    return stopping;
  };
  return handle;
}

let interrupted = false;

/** True once an exit path stopped the brokers: the runner starts nothing more. */
export function isInterrupted(): boolean {
  return interrupted;
}

/** Stops every broker still running (called on exit paths; `interrupt` also ends the run). */
export async function stopAll(interrupt = false): Promise<void> {
  if (interrupt) interrupted = true;
  for (const h of [...live]) {
    try {
      await h.stop();
    } catch (e) {
      process.stderr.write(`bench: stopping ${h.broker} failed: ${String(e)}\n`);
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with a hard timeout; never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string }): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: options.env ?? process.env, timeout: options.timeoutMs, cwd: options.cwd, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Polls until `check` holds, at most `timeoutMs`; returns whether it did. */
export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(stepMs);
  }
  return false;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; pid < 0 addresses a process group. */
export async function terminate(pid: number, graceMs: number): Promise<void> {
  const target = Math.abs(pid);
  if (!alive(target)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitUntil(() => !alive(target), graceMs, 100)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  await waitUntil(() => !alive(target), 5000, 100);
}

const clockTicksPerSec = 100; // USER_HZ on Linux

export interface ProcSample {
  cpuSeconds: number;
  rssBytes: number;
}

/** CPU so far and current RSS of one process; undefined when it is gone. */
export function sampleProcess(pid: number): ProcSample | undefined {
  try {
    const ticks = parseProcStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const rss = parseStatusBytes(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS') ?? 0;
    return { cpuSeconds: ticks / clockTicksPerSec, rssBytes: rss };
  } catch {
    return undefined;
  }
}
