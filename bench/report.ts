// Turns measured results into what people read: the terminal table with espresso/RabbitMQ ratios,
// the markdown section appended to bench/RESULTS.md, and one SVG chart per scenario. Pure.

import type { LatencySummary } from './stats.js';
import type { CpuSummary } from '../src/observe/profiler.js';
import type { StageBreakdown } from '../src/observe/stage-summary.js';

/** What espresso's own observability saw during the profiled phase (ctl profile stages and cpu). */
export interface Observation {
  readonly seconds: number;
  /** The profiled phase's publish rate; absent: full load. */
  readonly ratePerSec?: number;
  readonly stages: StageBreakdown;
  readonly cpu: ReadonlyArray<{ node: string; summary: CpuSummary }>;
}

export interface ProcessUsage {
  name: string;
  pid: number;
  cpuSeconds: number;
  peakRssBytes: number;
}

export interface BrokerResult {
  broker: 'espresso' | 'rabbitmq';
  /** Why the broker was not measured (build missing, cluster unsupported...). */
  skipped?: string;
  /** Messages published / confirmed / delivered in the full-load (or backlog) phase. */
  published: number;
  confirmed: number;
  delivered: number;
  publishPerSec: number;
  deliverPerSec: number;
  full: LatencySummary;
  low: LatencySummary | undefined;
  lowRatePerSec: number;
  lost: number;
  duplicates: number;
  nacked: number;
  stillQueued: number;
  brokerCpuSecondsPer100k: number;
  processes: ProcessUsage[];
  generatorCpuSeconds: number;
  generatorCpuSecondsPer100k: number;
  /** fsyncs (all nodes) and write-ahead log records during the full-load phase; espresso only. */
  fsyncs?: number | undefined;
  walRecords?: number | undefined;
  /** espresso: the stage breakdown and CPU profile summaries of the profiled phase. */
  observed?: Observation | undefined;
}

export interface ScenarioReport {
  scenario: string;
  title: string;
  topology: 'single' | 'cluster';
  results: BrokerResult[];
}

interface Metric {
  label: string;
  /** undefined when the run has no such number (e.g. no low-rate phase in the backlog). */
  value: (r: BrokerResult) => number | undefined;
  format: (n: number) => string;
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function formatMs(us: number): string {
  const ms = us / 1000;
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

export function formatMiB(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(0);
}

const peakRss = (r: BrokerResult): number => r.processes.reduce((m, p) => Math.max(m, p.peakRssBytes), 0);

export const metrics: readonly Metric[] = [
  { label: 'publish msg/s', value: (r) => r.publishPerSec, format: formatCount },
  { label: 'deliver msg/s', value: (r) => r.deliverPerSec, format: formatCount },
  { label: 'p50 ms (full)', value: (r) => r.full.p50Us, format: formatMs },
  { label: 'p95 ms (full)', value: (r) => r.full.p95Us, format: formatMs },
  { label: 'p99 ms (full)', value: (r) => r.full.p99Us, format: formatMs },
  { label: 'max ms (full)', value: (r) => r.full.maxUs, format: formatMs },
  { label: 'p50 ms (low rate)', value: (r) => r.low?.p50Us, format: formatMs },
  { label: 'p99 ms (low rate)', value: (r) => r.low?.p99Us, format: formatMs },
  { label: 'max ms (low rate)', value: (r) => r.low?.maxUs, format: formatMs },
  { label: 'broker CPU s/100k msg', value: (r) => r.brokerCpuSecondsPer100k, format: (n) => n.toFixed(2) },
  { label: 'broker peak RSS MiB', value: peakRss, format: formatMiB },
  { label: 'msgs delivered per fsync', value: (r) => (r.fsyncs === undefined || r.fsyncs === 0 ? undefined : r.delivered / r.fsyncs), format: (n) => n.toFixed(1) },
  { label: 'WAL records per fsync', value: (r) => (r.fsyncs === undefined || r.fsyncs === 0 || r.walRecords === undefined ? undefined : r.walRecords / r.fsyncs), format: (n) => n.toFixed(1) },
  { label: 'generator CPU s/100k msg', value: (r) => r.generatorCpuSecondsPer100k, format: (n) => n.toFixed(2) },
  { label: 'lost', value: (r) => r.lost, format: formatCount },
  { label: 'duplicated', value: (r) => r.duplicates, format: formatCount },
  { label: 'nacked', value: (r) => r.nacked, format: formatCount },
];

/** espresso / RabbitMQ, as "1.23x"; '-' when either side is missing or RabbitMQ's is 0. */
export function ratio(espresso: number | undefined, rabbit: number | undefined): string {
  if (espresso === undefined || rabbit === undefined || rabbit === 0) return '-';
  const r = espresso / rabbit;
  return `${r !== 0 && r < 0.1 ? r.toPrecision(2) : r.toFixed(2)}x`;
}

function measured(report: ScenarioReport, broker: BrokerResult['broker']): BrokerResult | undefined {
  const r = report.results.find((x) => x.broker === broker);
  return r === undefined || r.skipped !== undefined ? undefined : r;
}

/** Rows of [metric, espresso, rabbitmq, ratio]. */
export function tableRows(report: ScenarioReport): string[][] {
  const e = measured(report, 'espresso');
  const q = measured(report, 'rabbitmq');
  return metrics.map((m) => {
    const ev = e === undefined ? undefined : m.value(e);
    const qv = q === undefined ? undefined : m.value(q);
    return [m.label, ev === undefined ? '-' : m.format(ev), qv === undefined ? '-' : m.format(qv), ratio(ev, qv)];
  });
}

const header = ['metric', 'espresso', 'RabbitMQ 3.10', 'espresso/RabbitMQ'];

function skippedNotes(report: ScenarioReport): string[] {
  return report.results.filter((r) => r.skipped !== undefined).map((r) => `${r.broker} skipped: ${r.skipped ?? ''}`);
}

/** A fixed-width table for the terminal. */
export function formatTable(report: ScenarioReport): string {
  const rows = [header, ...tableRows(report)];
  const widths = header.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]): string => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ');
  const out = [`== ${report.scenario} (${report.topology}): ${report.title}`, line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows.slice(1)) out.push(line(r));
  for (const note of skippedNotes(report)) out.push(`  (${note})`);
  for (const r of report.results) if (r.observed !== undefined) out.push('', ...formatObservation(r.observed));
  return out.join('\n') + '\n';
}

export interface RunInfo {
  dateIso: string;
  machine: string;
  commit: string;
  command: string;
  /** Load average (1, 5, 15 min) when the run started and when it ended: the machine may be shared. */
  load?: { before: readonly number[]; after: readonly number[] };
}

/** The markdown appended to bench/RESULTS.md for one run (all its scenarios). */
export function formatMarkdown(info: RunInfo, reports: readonly ScenarioReport[]): string {
  const out = [`## ${info.dateIso}`, '', `- machine: ${info.machine}`, `- commit: \`${info.commit}\``, `- command: \`${info.command}\``];
  if (info.load !== undefined) {
    const avg = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(' ');
    out.push(`- load average (1, 5, 15 min) before: ${avg(info.load.before)}; after: ${avg(info.load.after)} (on ${info.machine.split(' ')[0]} CPUs: above that, other work shared the machine and the figures are noisy)`);
  }
  out.push('');
  for (const report of reports) {
    out.push(`### ${report.scenario} (${report.topology}): ${report.title}`, '');
    out.push(`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
    for (const r of tableRows(report)) out.push(`| ${r.join(' | ')} |`);
    for (const note of skippedNotes(report)) out.push('', `${note}`);
    for (const r of report.results) {
      if (r.skipped !== undefined) continue;
      const procs = r.processes.map((p) => `${p.name} ${p.cpuSeconds.toFixed(1)} CPU s, peak ${formatMiB(p.peakRssBytes)} MiB`).join('; ');
      out.push('', `${r.broker}: ${formatCount(r.published)} published, ${formatCount(r.delivered)} delivered, ${formatCount(r.stillQueued)} left queued; generator ${r.generatorCpuSeconds.toFixed(1)} CPU s; ${procs}`);
      if (r.observed !== undefined) out.push('', ...formatObservation(r.observed));
    }
    out.push('', `![${report.scenario}](charts/${chartFileName(report)})`, '');
  }
  return out.join('\n') + '\n';
}

/** The profiled phase: where a traced message's time went, and each node's hottest functions. */
export function formatObservation(o: Observation): string[] {
  const b = o.stages;
  const out = [
    `espresso, profiled phase (${o.seconds} s at ${o.ratePerSec === undefined ? 'full load' : `${formatCount(o.ratePerSec)} msg/s`}, after the measured ones): where the time went (${b.published} publishes and ${b.consumed} deliveries traced, \`ctl profile stages\`)`,
    '', '| stage | traced | mean ms | p50 ms | p99 ms |', '|---|---:|---:|---:|---:|',
  ];
  for (const l of [...b.stages, b.endToEnd]) out.push(`| ${l.stage} | ${formatCount(l.count)} | ${l.meanMs.toFixed(2)} | ${l.p50Ms.toFixed(2)} | ${l.p99Ms.toFixed(2)} |`);
  const top = b.stages.filter((l) => l.stage !== 'confirm_sent' && l.stage !== 'acked' && l.stage !== 'settled').sort((x, y) => y.meanMs - x.meanMs)[0];
  if (top !== undefined && b.pathMeanMs > 0) out.push('', `Largest stage on the path to delivery: ${top.stage}, ${((100 * top.meanMs) / b.pathMeanMs).toFixed(0)}% of ${b.pathMeanMs.toFixed(1)} ms.`);
  for (const { node, summary } of o.cpu) {
    const fns = summary.top.slice(0, 8).map((f) => `${f.name} ${f.percent.toFixed(1)}%`).join(', ');
    out.push('', `CPU profile of ${node}: ${(summary.busyMs / 1000).toFixed(1)} s busy of ${(summary.durationMs / 1000).toFixed(1)} s, GC ${summary.gcPercent.toFixed(1)}%; top self time: ${fns}`);
  }
  return out;
}

export function chartFileName(report: ScenarioReport): string {
  return `${report.scenario}-${report.topology}.svg`;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

interface Panel {
  title: string;
  labels: string[];
  values: (r: BrokerResult) => number[];
  format: (n: number) => string;
}

const panels: readonly Panel[] = [
  { title: 'throughput (msg/s)', labels: ['publish', 'deliver'], values: (r) => [r.publishPerSec, r.deliverPerSec], format: formatCount },
  { title: 'latency at full load (ms)', labels: ['p50', 'p95', 'p99'], values: (r) => [r.full.p50Us / 1000, r.full.p95Us / 1000, r.full.p99Us / 1000], format: (n) => n.toFixed(1) },
  { title: 'latency at low rate (ms)', labels: ['p50', 'p95', 'p99'], values: (r) => [(r.low?.p50Us ?? 0) / 1000, (r.low?.p95Us ?? 0) / 1000, (r.low?.p99Us ?? 0) / 1000], format: (n) => n.toFixed(1) },
];

const colors: Record<BrokerResult['broker'], string> = { espresso: '#8c510a', rabbitmq: '#ff6600' };

/** Three grouped bar panels (throughput, latency full, latency low) of both brokers. */
export function formatSvg(report: ScenarioReport): string {
  const panelW = 300;
  const panelH = 220;
  const width = panelW * panels.length + 20;
  const results = report.results.filter((r) => r.skipped === undefined);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${panelH + 90}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14">${escapeXml(`${report.scenario} (${report.topology}): ${report.title}`)}</text>`,
  ];
  panels.forEach((panel, pi) => parts.push(svgPanel(panel, results, 10 + pi * panelW, 40, panelW - 20, panelH)));
  results.forEach((r, i) => {
    parts.push(`<rect x="${10 + i * 120}" y="${panelH + 70}" width="12" height="12" fill="${colors[r.broker]}"/>`);
    parts.push(`<text x="${26 + i * 120}" y="${panelH + 80}">${r.broker}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function svgPanel(panel: Panel, results: readonly BrokerResult[], x: number, y: number, w: number, h: number): string {
  const values = results.map((r) => panel.values(r));
  const max = Math.max(1e-9, ...values.flat());
  const plotTop = y + 20;
  const plotH = h - 40;
  const groupW = w / panel.labels.length;
  const barW = Math.max(4, (groupW - 16) / Math.max(1, results.length));
  const out = [`<text x="${x}" y="${y + 10}" font-weight="bold">${escapeXml(panel.title)}</text>`,
    `<line x1="${x}" y1="${plotTop + plotH}" x2="${x + w}" y2="${plotTop + plotH}" stroke="#444"/>`];
  panel.labels.forEach((label, li) => {
    const gx = x + li * groupW + 8;
    values.forEach((vs, ri) => {
      const v = vs[li] ?? 0;
      const bh = (v / max) * plotH;
      const bx = gx + ri * barW;
      const result = results[ri];
      if (result === undefined) return;
      out.push(`<rect x="${bx.toFixed(1)}" y="${(plotTop + plotH - bh).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="${colors[result.broker]}"/>`);
      out.push(`<text x="${(bx + barW / 2 - 1).toFixed(1)}" y="${(plotTop + plotH - bh - 3).toFixed(1)}" text-anchor="middle" font-size="9">${escapeXml(panel.format(v))}</text>`);
    });
    out.push(`<text x="${(gx + (groupW - 16) / 2).toFixed(1)}" y="${plotTop + plotH + 14}" text-anchor="middle">${escapeXml(label)}</text>`);
  });
  return out.join('\n');
}
