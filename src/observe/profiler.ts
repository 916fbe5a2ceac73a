// CPU and heap profiles of this process on demand: a CPU profile through the inspector protocol
// (node:inspector, the same .cpuprofile Chrome DevTools and speedscope open), a heap snapshot from
// V8 (.heapsnapshot), both gzipped for the trip to ctl; and the summary of a CPU profile that ctl
// and the bench harness print: the functions with the most self time, and the share of GC.

import { Session } from 'node:inspector/promises';
import { getHeapSnapshot } from 'node:v8';
import { createGzip } from 'node:zlib';
import { OperatingError, OperatingErrorCode } from '../lib/errors.js';

/** Sampling interval of CPU profiles (µs): V8's default is 1000; finer costs more while profiling. */
export const cpuSamplingIntervalUs = 500;
export const profileSecondsMax = 300;

let profiling = false;

/** Records a CPU profile for `seconds`; the .cpuprofile JSON. One at a time per process. */
export async function cpuProfile(seconds: number): Promise<string> {
  if (!(seconds > 0 && seconds <= profileSecondsMax)) {
    throw new OperatingError(OperatingErrorCode.BadConfig, `a CPU profile lasts 0 to ${profileSecondsMax} seconds, not ${seconds}`);
  }
  if (profiling) throw new OperatingError(OperatingErrorCode.Overloaded, 'a CPU profile is being taken on this node already; try again when it is done');
  profiling = true;
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: cpuSamplingIntervalUs });
    await session.post('Profiler.start');
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const { profile } = await session.post('Profiler.stop');
    return JSON.stringify(profile);
  } finally {
    session.disconnect();
    profiling = false;
  }
}

/** A heap snapshot of this process, gzipped (it stops the event loop while V8 writes it). */
export async function heapSnapshotGzip(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const gzip = createGzip({ level: 1 });
  const done = new Promise<void>((resolve, reject) => {
    gzip.on('data', (c: Buffer) => chunks.push(c));
    gzip.once('end', resolve);
    gzip.once('error', reject);
  });
  getHeapSnapshot().pipe(gzip);
  await done;
  return Buffer.concat(chunks);
}

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfileJson {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface CpuFunction {
  readonly name: string;
  /** file:line (1-based), or '' for V8's own entries ((garbage collector), (program), (idle)). */
  readonly where: string;
  readonly selfMs: number;
  /** Of the time the process was busy (idle excluded). */
  readonly percent: number;
}

export interface CpuSummary {
  readonly durationMs: number;
  readonly busyMs: number;
  /** Share of busy time in V8's garbage collector. */
  readonly gcPercent: number;
  readonly top: readonly CpuFunction[];
}

/** Self time per function (same name and place merged), the top `n` by self time, and the GC share. */
export function summarizeCpuProfile(json: string | CpuProfileJson, n = 15): CpuSummary {
  const p: CpuProfileJson = typeof json === 'string' ? (JSON.parse(json) as CpuProfileJson) : json;
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  // Each sample's time is the delta to the next sample (V8 records deltas before each sample).
  for (let i = 0; i < samples.length; i++) {
    const us = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, us));
  }
  const merged = new Map<string, { name: string; where: string; us: number }>();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const f = byId.get(id)?.callFrame;
    if (f === undefined) continue;
    totalUs += us;
    if (f.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const where = f.url === '' ? '' : `${f.url.replace(/^file:\/\//, '')}:${f.lineNumber + 1}`;
    const name = f.functionName === '' ? '(anonymous)' : f.functionName;
    const key = `${name}\u0000${where}`;
    const m = merged.get(key) ?? { name, where, us: 0 };
    m.us += us;
    merged.set(key, m);
  }
  const busyUs = Math.max(1, totalUs - idleUs);
  const gcUs = [...merged.values()].filter((m) => m.name === '(garbage collector)').reduce((a, m) => a + m.us, 0);
  const top = [...merged.values()].sort((a, b) => b.us - a.us).slice(0, n)
    .map((m) => ({ name: m.name, where: m.where, selfMs: m.us / 1000, percent: (100 * m.us) / busyUs }));
  return { durationMs: (p.endTime - p.startTime) / 1000, busyMs: busyUs / 1000, gcPercent: (100 * gcUs) / busyUs, top };
}

export function formatCpuSummary(s: CpuSummary): string {
  const lines = [`${(s.durationMs / 1000).toFixed(1)} s profiled, ${(s.busyMs / 1000).toFixed(2)} s busy; GC ${s.gcPercent.toFixed(1)}% of busy time`];
  lines.push('  SELF MS   SELF %  FUNCTION');
  for (const f of s.top) {
    lines.push(`${f.selfMs.toFixed(1).padStart(9)}  ${f.percent.toFixed(1).padStart(6)}%  ${f.name}${f.where === '' ? '' : `  ${f.where}`}`);
  }
  return `${lines.join('\n')}\n`;
}
