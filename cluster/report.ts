// The report of a fault run: a Markdown table of the verdict and of every nemesis operation, and an
// SVG timeline of confirms and deliveries per second with the fault windows shaded. Pure strings.

import type { History, Verdict } from './checker.js';
import type { NemesisResult } from './nemesis.js';

export interface RunInfo {
  seed: number;
  nodes: number;
  queues: number;
  producers: number;
  consumers: number;
  durationMs: number;
  reconnects: number;
  /** Confirmed messages the running consumers had not received when the drain gave up. */
  drainMissing: number;
  /** Messages still in the queues after the consumers stopped, taken by the final basic.get drain. */
  finalDrainFound: number;
  /** Queues the final drain could not read on any node. */
  undrainable: string[];
}

function s(ms: number): string {
  return (ms / 1000).toFixed(1);
}

export function renderMarkdown(info: RunInfo, v: Verdict, ops: readonly NemesisResult[], startMs: number): string {
  const lines = [
    `Run: seed ${info.seed}, ${info.nodes} nodes, ${info.queues} queues, ${info.producers} producers, ${info.consumers} consumers, ${s(info.durationMs)} s, ${info.reconnects} client reconnects.`,
    '',
    `**${v.ok ? 'PASS' : 'FAIL'}**` + (info.drainMissing > 0
      ? ` (consumers had not received ${info.drainMissing} confirmed messages when the drain timed out; the final basic.get drain found ${info.finalDrainFound} in the queues${info.undrainable.length > 0 ? `; could not read ${info.undrainable.join(',')}` : ''})`
      : ''),
    '',
    '| published | confirmed | nacked | unknown (unknown delivered) | delivered | distinct | lost | unexpected | duplicates | redelivered | order violations | longest confirm gap |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    `| ${v.published} | ${v.confirmed} | ${v.nacked} | ${v.unknown} (${v.unknownDelivered}) | ${v.delivered} | ${v.distinctDelivered} | ${v.lostCount} | ${v.unexpectedCount} | ${v.duplicates} | ${v.redelivered} | ${v.orderViolationCount} | ${s(v.longestGapMs)} s |`,
    '',
    '| # | nemesis | target | at (s) | held (s) | longest gap without confirm (s) | confirms | notes |',
    '|---|---|---|---|---|---|---|---|',
  ];
  v.availability.forEach((a, i) => {
    const op = ops.find((o) => o.startMs === a.op.startMs && o.name === a.op.name);
    const notes = [op?.skipped !== undefined ? `skipped: ${op.skipped}` : '', ...(op?.problems ?? [])].filter((x) => x !== '').join('; ');
    lines.push(`| ${i + 1} | ${a.op.name} | ${a.op.target.replace(/\|/g, '/')} | ${s(a.op.startMs - startMs)} | ${s(a.op.endMs - a.op.startMs)} | ${s(a.longestGapMs)} | ${a.confirms} | ${notes.replace(/\|/g, '/')} |`);
  });
  if (v.lost.length > 0) lines.push('', `Lost: ${v.lost.join(', ')}`);
  if (v.unexpected.length > 0) lines.push('', `Unexpected: ${v.unexpected.join(', ')}`);
  if (v.orderViolations.length > 0) {
    lines.push('', `Order violations (${v.orderViolationCount}; the first few): ${v.orderViolations.slice(0, 10).map((o) => `${o.producer}/${o.queue} seq ${o.seq} after ${o.afterSeq}`).join('; ')}`);
  }
  return lines.join('\n') + '\n';
}

function perSecond(times: readonly number[], startMs: number, seconds: number): number[] {
  const bins = new Array<number>(seconds).fill(0);
  for (const t of times) {
    const i = Math.floor((t - startMs) / 1000);
    if (i >= 0 && i < seconds) bins[i]! += 1;
  }
  return bins;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Timeline: confirms/s (solid) and deliveries/s (dashed), faults as shaded bands with their names. */
export function renderSvg(history: History, confirmTimes: readonly number[]): string {
  const width = 1000;
  const height = 320;
  const left = 50;
  const top = 20;
  const plotW = width - left - 20;
  const plotH = height - top - 60;
  const seconds = Math.max(1, Math.ceil((history.endMs - history.startMs) / 1000));
  const confirms = perSecond(confirmTimes, history.startMs, seconds);
  const deliveries = perSecond(history.deliveries.map((d) => d.atMs), history.startMs, seconds);
  const yMax = Math.max(10, ...confirms, ...deliveries);
  const x = (sec: number): number => left + (sec / seconds) * plotW;
  const y = (v: number): number => top + plotH - (v / yMax) * plotH;
  const line = (bins: readonly number[]): string => bins.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(i + 0.5).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="10">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  history.ops.forEach((op, i) => {
    const x0 = x((op.startMs - history.startMs) / 1000);
    const x1 = Math.max(x0 + 2, x((op.endMs - history.startMs) / 1000));
    parts.push(`<rect x="${x0.toFixed(1)}" y="${top}" width="${(x1 - x0).toFixed(1)}" height="${plotH}" fill="${i % 2 === 0 ? '#fdd' : '#fed'}"/>`);
    parts.push(`<text x="${x0.toFixed(1)}" y="${top + plotH + 14 + (i % 3) * 11}" fill="#a00">${escapeXml(op.name)}</text>`);
  });
  parts.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="black"/>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="black"/>`);
  parts.push(`<text x="4" y="${top + 8}">${yMax}/s</text><text x="4" y="${top + plotH}">0</text>`);
  parts.push(`<text x="${left + plotW - 30}" y="${height - 4}">${seconds} s</text>`);
  parts.push(`<path d="${line(confirms)}" fill="none" stroke="#06c" stroke-width="1.5"/>`);
  parts.push(`<path d="${line(deliveries)}" fill="none" stroke="#090" stroke-width="1" stroke-dasharray="4 2"/>`);
  parts.push(`<text x="${left + 10}" y="${top + 12}" fill="#06c">confirms/s</text><text x="${left + 90}" y="${top + 12}" fill="#090">deliveries/s</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
