// `npm run chaos -- --minutes N --nodes 5 --seed S [--ops a,b] [--once] [--hold-sec 8] [--queues 6] [--netns]`: a longer
// fault run with random nemesis operations (--once: each of --ops once, in order); prints progress and writes the report (Markdown table
// and SVG timeline) under cluster/report/. Exit code 1 when the checker finds a violation. --netns: one network
// namespace per node and faults made by the kernel (iptables, ip link, tc netem where present) instead of TCP proxies (root).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allNemeses, netnsOnlyNemeses, type NemesisName } from './nemesis.js';
import { fixedSchedule, randomSchedule, runFaults } from './run.js';

function flag(argv: readonly string[], name: string, fallback: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

async function main(argv: readonly string[]): Promise<number> {
  const minutes = Number(flag(argv, '--minutes', '2'));
  const nodes = Number(flag(argv, '--nodes', '5'));
  const seed = Number(flag(argv, '--seed', String(Date.now() % 100_000)));
  const holdMs = Number(flag(argv, '--hold-sec', '8')) * 1000;
  const queues = Number(flag(argv, '--queues', '6'));
  const netns = argv.includes('--netns');
  const usable = allNemeses.filter((n) => netns || !netnsOnlyNemeses.includes(n));
  const ops = flag(argv, '--ops', usable.join(',')).split(',').filter((x): x is NemesisName => (allNemeses as readonly string[]).includes(x));
  if (!(minutes > 0) || !(nodes >= 1 && nodes <= 9) || !Number.isInteger(seed) || ops.length === 0) {
    process.stderr.write('usage: npm run chaos -- --minutes N --nodes 1..9 --seed S [--ops kill-leader,pause,...] [--hold-sec 8] [--queues 6] [--netns]\n');
    return 64;
  }
  const t0 = Date.now();
  const log = (line: string): void => { process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`); };
  log(`chaos: ${minutes} min, ${nodes} nodes${netns ? ' (one network namespace each)' : ''}, seed ${seed}, ops ${ops.join(',')}`);
  const r = await runFaults({
    nodes, seed, schedule: argv.includes('--once') ? fixedSchedule(ops) : randomSchedule(ops, minutes * 60_000), holdMs, quietMs: 4_000, warmupMs: 3_000,
    drainTimeoutMs: 60_000, queues, log, progressEveryMs: 5_000, keepDir: true, netns,
    workload: { producers: Math.max(2, nodes), consumers: Math.min(queues, nodes) },
  });
  const dir = new URL('./report/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  const stem = `chaos-${nodes}n${netns ? '-netns' : ''}-seed${seed}`;
  writeFileSync(join(dir, `${stem}.md`), `# Chaos run ${stem}\n\n${r.markdown}\n![timeline](${stem}.svg)\n`);
  writeFileSync(join(dir, `${stem}.svg`), r.svg);
  process.stdout.write(`\n${r.markdown}\nreport: ${join(dir, stem)}.md / .svg; node logs kept in ${r.dir}\n`);
  return r.verdict.ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    process.stderr.write(`chaos: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 2;
  },
);
