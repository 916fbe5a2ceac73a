// The short fault runs of npm test: a fresh 3-node cluster of real processes per group of nemesis
// operations, the workload on it, each operation once, then the checker's verdict and what every
// operation did, printed so a failure (or a known gap) shows in the test output.

import { expect } from 'vitest';
import type { NemesisName } from '../../cluster/nemesis.js';
import { fixedSchedule, runFaults, type RunResult } from '../../cluster/run.js';

/** Per test: a 3-node cluster start, ~4 operations of a few seconds each, the drain. */
export const shortRunTimeoutMs = 240_000;

export async function shortRun(ops: readonly NemesisName[], seed: number, network: { netns?: boolean } = {}): Promise<RunResult> {
  const lines: string[] = [];
  const t0 = Date.now();
  const r = await runFaults({
    nodes: 3, seed, schedule: fixedSchedule(ops), holdMs: 3_000, quietMs: 2_000, warmupMs: 2_000,
    drainTimeoutMs: 30_000, queues: 3, progressEveryMs: 0,
    log: (l) => { lines.push(`[${new Date().toISOString().slice(11, 23)}] ${l}`); },
    workload: { producers: 3, consumers: 3, ratePerProducer: 25 }, netns: network.netns ?? false,
  });
  console.log(`fault run ${ops.join(', ')}${network.netns === true ? ' on network namespaces' : ''} (seed ${seed}):\n${r.markdown}`);
  // FAULT_VERBOSE=1 prints every run's progress; a failing or slow run prints it anyway.
  if (!r.verdict.ok || Date.now() - t0 > 90_000 || process.env['FAULT_VERBOSE'] === '1') console.log(lines.join('\n'));
  return r;
}

/** What every run must show: nothing confirmed was lost, nothing unexpected arrived, first deliveries in order, and it recovered. */
export function expectSafeAndRecovered(r: RunResult, ops: readonly NemesisName[]): void {
  expect(r.verdict.lost).toEqual([]);
  expect(r.verdict.unexpected).toEqual([]);
  // One producer, one queue: first deliveries arrive in publish order (RabbitMQ's per-channel order).
  expect(r.verdict.orderViolations).toEqual([]);
  expect(r.verdict.confirmed).toBeGreaterThan(100);
  expect(r.ops.map((o) => o.name).slice(0, ops.length)).toEqual(ops);
  expect(r.skipped).toEqual([]);
  // Every confirmed message reached a consumer by the end (the drain), and after the last fault
  // healed the cluster confirmed publishes again.
  expect(r.verdict.distinctDelivered).toBeGreaterThanOrEqual(r.verdict.confirmed);
  const lastHealMs = Math.max(...r.ops.map((o) => o.endMs));
  expect(r.history.publishes.some((p) => p.outcome === 'ok' && (p.doneMs ?? 0) > lastHealMs)).toBe(true);
}
