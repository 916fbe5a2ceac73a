// CPU profiles through node:inspector: a real profile of this process while it spins in a known
// function is a Chrome .cpuprofile (nodes, samples, time deltas), and its summary finds that
// function among the top self times; a second profile at once is refused, not stacked.
import { describe, expect, it } from 'vitest';
import { isOperatingError, OperatingErrorCode } from '../../src/lib/errors.js';
import { cpuProfile, formatCpuSummary, summarizeCpuProfile } from '../../src/observe/profiler.js';

function spinForProfile(untilMs: number): number {
  let x = 0;
  while (performance.now() < untilMs) for (let i = 0; i < 10_000; i++) x = (x * 31 + i) % 1_000_003;
  return x;
}

describe('cpu profiles', () => {
  it('records a .cpuprofile whose summary names the function that burned the time', async () => {
    const taking = cpuProfile(1);
    await expect(cpuProfile(1)).rejects.toSatisfy((e: unknown) => isOperatingError(e, OperatingErrorCode.Overloaded));
    // Busy in slices, so the profile's own timer gets to fire.
    const end = performance.now() + 900;
    while (performance.now() < end) {
      spinForProfile(performance.now() + 50);
      await new Promise((r) => setImmediate(r));
    }
    const json = await taking;
    const p = JSON.parse(json) as { nodes: unknown[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
    expect(p.nodes.length).toBeGreaterThan(0);
    expect(p.samples.length).toBe(p.timeDeltas.length);
    expect(p.endTime - p.startTime).toBeGreaterThan(900_000);
    const s = summarizeCpuProfile(json);
    expect(s.busyMs).toBeGreaterThan(300);
    expect(s.top.slice(0, 5).map((f) => f.name)).toContain('spinForProfile');
    expect(s.top.find((f) => f.name === 'spinForProfile')!.where).toMatch(/profiler\.test\.ts:\d+$/);
    expect(formatCpuSummary(s)).toContain('GC ');
    await expect(cpuProfile(0)).rejects.toSatisfy((e: unknown) => isOperatingError(e, OperatingErrorCode.BadConfig));
  }, 20_000);
});
