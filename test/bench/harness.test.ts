// The benchmark harness's own pure parts: argument parsing, delivery tallies (lost/duplicated),
// histogram merging across workers, /proc parsing and the report a reader sees.
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../bench/args.js';
import { checkDeliveries } from '../../bench/delivery-check.js';
import { queuesOfConsumer, scenarioNames } from '../../bench/scenarios.js';
import {
  SeqCounts, cpuSecondsPer100k, encodeHistogram, lostCount, mergeCounts, mergeHistograms, newHistogram,
  parseProcStatTicks, parseStatusBytes, summarize, tally,
} from '../../bench/stats.js';
import { formatMarkdown, formatSvg, formatTable, ratio, type BrokerResult, type ScenarioReport } from '../../bench/report.js';
import type { StageBreakdown, StageLine } from '../../src/observe/stage-summary.js';

describe('bench arguments', () => {
  it('takes scenario names, expands all, and reads numeric options', () => {
    const r = parseBenchArgs(['1kib-1p1c', '--seconds', '3', '--broker', 'rabbitmq', '--messages', '5000'], scenarioNames);
    expect(r.ok && r.args).toMatchObject({ scenarios: ['1kib-1p1c'], seconds: 3, brokers: ['rabbitmq'], messages: 5000 });
    const all = parseBenchArgs(['all'], scenarioNames);
    expect(all.ok && all.args.scenarios).toEqual([...scenarioNames]);
  });
  it('refuses unknown scenarios, unknown flags and out-of-range numbers with a readable message', () => {
    const bad = [['nope'], ['1kib-1p1c', '--frobnicate'], ['1kib-1p1c', '--seconds', '0'], ['1kib-1p1c', '--seconds'], []];
    for (const argv of bad) {
      const r = parseBenchArgs(argv, scenarioNames);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.length).toBeGreaterThan(10);
    }
  });
});

describe('scenario layout', () => {
  it('gives every queue to some consumer and spreads 1,000 queues over 4 consumers evenly', () => {
    const seen = new Set<number>();
    for (let c = 0; c < 4; c++) {
      const qs = queuesOfConsumer(1000, 4, c);
      expect(qs.length).toBe(250);
      for (const q of qs) seen.add(q);
    }
    expect(seen.size).toBe(1000);
    expect(queuesOfConsumer(1, 4, 3)).toEqual([0]);
  });
});

describe('delivery tallies', () => {
  it('counts distinct and duplicate deliveries merged across consumers of one queue', () => {
    const a = new SeqCounts(4);
    const b = new SeqCounts(4);
    for (const s of [0, 1, 2, 9]) a.see(s);
    for (const s of [2, 3, 3]) b.see(s);
    const t = tally(mergeCounts([a.counts, b.counts]));
    expect(t).toEqual({ unique: 5, duplicates: 2 });
  });
  it('reports confirmed messages neither delivered nor queued as lost, never below zero', () => {
    expect(lostCount(100, 90, 10)).toBe(0);
    expect(lostCount(100, 90, 5)).toBe(5);
    expect(lostCount(100, 101, 0)).toBe(0);
  });
  it('refuses a sequence number beyond the run bound', () => {
    const c = new SeqCounts(2);
    expect(() => c.see(50, 10)).toThrow(/beyond/);
  });
  it('scales CPU to 100,000 messages', () => {
    expect(cpuSecondsPer100k(2, 50_000)).toBe(4);
    expect(cpuSecondsPer100k(2, 0)).toBe(0);
  });
});

describe('end-of-run delivery check', () => {
  const seen = (...seqs: number[]): Uint8Array => {
    const c = new SeqCounts(8);
    for (const s of seqs) c.see(s);
    return c.counts;
  };
  it('finds nothing lost when every confirmed message was delivered or is still queued', () => {
    const parts = [
      { queueIndex: 0, publisherId: 0, counts: seen(0, 1, 2) },
      { queueIndex: 1, publisherId: 0, counts: seen(0, 1) },
      { queueIndex: 1, publisherId: 1, counts: seen(0) },
    ];
    expect(checkDeliveries([3, 4], parts, [0, 1])).toEqual({ lost: 0, duplicates: 0, uniqueDelivered: 6 });
  });
  it('counts a message two consumers of one queue both received as a duplicate, not as two deliveries', () => {
    const parts = [
      { queueIndex: 0, publisherId: 3, counts: seen(0, 1) },
      { queueIndex: 0, publisherId: 3, counts: seen(1, 2) },
    ];
    expect(checkDeliveries([3], parts, [0])).toEqual({ lost: 0, duplicates: 1, uniqueDelivered: 3 });
  });
  it('reports confirmed messages missing from a queue as lost even when another queue got extra', () => {
    const parts = [
      { queueIndex: 0, publisherId: 0, counts: seen(0) },
      { queueIndex: 1, publisherId: 0, counts: seen(0, 1, 2) },
    ];
    expect(checkDeliveries([3, 2], parts, [0, 0]).lost).toBe(2);
  });
});

describe('latency histograms', () => {
  it('merges encoded worker histograms into the same percentiles as one histogram of all values', () => {
    const all = newHistogram();
    const parts = [newHistogram(), newHistogram(), newHistogram()];
    for (let i = 1; i <= 3000; i++) {
      all.recordValue(i * 10);
      parts[i % 3]?.recordValue(i * 10);
    }
    const merged = summarize(mergeHistograms(parts.map(encodeHistogram)));
    const one = summarize(all);
    expect({ ...merged, maxUs: 0 }).toEqual({ ...one, maxUs: 0 });
    // Decoding reports the top of the max value's bucket: within the 3-digit resolution.
    expect(Math.abs(merged.maxUs - one.maxUs)).toBeLessThanOrEqual(one.maxUs / 1000);
    expect(merged.count).toBe(3000);
    expect(merged.p50Us).toBeGreaterThan(14_900);
    expect(merged.p50Us).toBeLessThan(15_100);
  });
});

describe('/proc parsing', () => {
  it('reads utime+stime even when the command name has spaces and parentheses', () => {
    const line = '4242 (beam (smp) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1500 250 0 0 20 0 30 0 99 0 0';
    expect(parseProcStatTicks(line)).toBe(1750);
  });
  it('reads VmRSS and VmHWM in bytes', () => {
    const status = 'Name:\tbeam.smp\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n';
    expect(parseStatusBytes(status, 'VmRSS')).toBe(100 * 1024 * 1024);
    expect(parseStatusBytes(status, 'VmHWM')).toBe(200 * 1024 * 1024);
    expect(parseStatusBytes('Name: x\n', 'VmRSS')).toBeUndefined();
  });
});

function result(broker: BrokerResult['broker'], publishPerSec: number): BrokerResult {
  const lat = { count: 10, p50Us: 2000, p95Us: 4000, p99Us: 5000, maxUs: 9000 };
  return {
    broker, published: 1000, confirmed: 1000, delivered: 1000, publishPerSec, deliverPerSec: publishPerSec, full: lat, low: lat,
    lowRatePerSec: 100, lost: 0, duplicates: 0, nacked: 0, stillQueued: 0, brokerCpuSecondsPer100k: 5,
    processes: [{ name: 'x', pid: 1, cpuSeconds: 1, peakRssBytes: 100 * 1024 * 1024 }], generatorCpuSeconds: 1, generatorCpuSecondsPer100k: 2,
  };
}

describe('report', () => {
  const report: ScenarioReport = { scenario: '1kib-1p1c', title: 'one', topology: 'single', results: [result('espresso', 3000), result('rabbitmq', 6000)] };
  it('prints both brokers and the espresso/RabbitMQ ratio per metric', () => {
    const table = formatTable(report);
    expect(table).toMatch(/publish msg\/s\s+3,000\s+6,000\s+0\.50x/);
    expect(table).toMatch(/p99 ms \(full\)\s+5\.00\s+5\.00\s+1\.00x/);
    expect(ratio(1, 0)).toBe('-');
    expect(ratio(0.8, 172)).toBe('0.0047x');
  });
  it('shows a skipped broker with its reason and no ratio', () => {
    const skipped: ScenarioReport = { ...report, results: [{ ...result('espresso', 0), skipped: 'no cluster mode yet' }, result('rabbitmq', 6000)] };
    const table = formatTable(skipped);
    expect(table).toContain('espresso skipped: no cluster mode yet');
    expect(table).toMatch(/publish msg\/s\s+-\s+6,000\s+-/);
  });
  it('writes markdown with machine, commit, command and a chart link, and a well-formed SVG', () => {
    const md = formatMarkdown({
      dateIso: '2026-11-23T10:00:00Z', machine: '2 CPUs (Xeon)', commit: 'abc', command: 'npm run bench -- 1kib-1p1c', load: { before: [3.5, 2, 1], after: [11.25, 6, 2] },
    }, [report]);
    expect(md).toContain('- commit: `abc`');
    expect(md).toContain('- load average (1, 5, 15 min) before: 3.50 2.00 1.00; after: 11.25 6.00 2.00 (on 2 CPUs');
    expect(md).toContain('| publish msg/s | 3,000 | 6,000 | 0.50x |');
    expect(md).toContain('charts/1kib-1p1c-single.svg');
    const svg = formatSvg(report);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<rect /g)?.length).toBeGreaterThan(10);
  });
  it('adds espresso\'s stage breakdown and each node\'s CPU profile summary from the profiled phase', () => {
    const line = (stage: string, meanMs: number): StageLine => ({ stage, count: 80, meanMs, p50Ms: meanMs, p99Ms: 3 * meanMs });
    const stages: StageBreakdown = {
      queue: null, fromMs: 0, toMs: 8000, published: 80, consumed: 79, pathMeanMs: 10,
      stages: [line('routed', 0.5), line('persisted', 6), line('committed', 2), line('applied', 0.5), line('confirm_sent', 1), line('delivered', 1)],
      endToEnd: line('end_to_end', 10),
    };
    const cpu = { durationMs: 8000, busyMs: 6000, gcPercent: 4.2, top: [{ name: 'writev', where: '', selfMs: 600, percent: 10 }, { name: 'crc32c', where: 'crc32c.js:24', selfMs: 300, percent: 5 }] };
    const observed = { seconds: 8, stages, cpu: [{ node: 'bench1', summary: cpu }] };
    const md = formatMarkdown({ dateIso: 'd', machine: 'm', commit: 'c', command: 'x' }, [{ ...report, results: [{ ...result('espresso', 3000), observed }, result('rabbitmq', 6000)] }]);
    expect(md).toContain('80 publishes and 79 deliveries traced');
    expect(md).toContain('| persisted | 80 | 6.00 | 6.00 | 18.00 |');
    expect(md).toContain('Largest stage on the path to delivery: persisted, 60% of 10.0 ms.');
    expect(md).toContain('CPU profile of bench1: 6.0 s busy of 8.0 s, GC 4.2%; top self time: writev 10.0%, crc32c 5.0%');
    expect(parseBenchArgs(['1kib-1p1c', '--profile-seconds', '0'], scenarioNames)).toMatchObject({ ok: true, args: { profileSeconds: 0 } });
  });
});
