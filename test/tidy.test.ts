// The tidy test: pure layers (ranks 0-1 in ARCHITECTURE.md) must not touch the clock, randomness,
// timers, the process or node:* modules, so a seeded simulation replays any run exactly.
// It also enforces the layer ranks: a folder imports only from lower ranks (type-only excepted).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const srcDir = new URL('../src/', import.meta.url).pathname;
const rank: Record<string, number> = {
  lib: 0, amqp: 1, raft: 1, queue: 1, model: 1,
  storage: 2, transport: 2, membership: 2,
  cluster: 3, broker: 4, tasks: 5, observe: 6, http: 7, cli: 8,
};
const pureFolders = ['lib', 'amqp', 'raft', 'queue', 'model'];
const banned: Array<[RegExp, string]> = [
  [/\bDate\.now\s*\(/, 'Date.now'],
  [/\bnew Date\s*\(\s*\)/, 'new Date()'],
  [/\bMath\.random\s*\(/, 'Math.random'],
  [/\bsetTimeout\s*\(|\bsetInterval\s*\(|\bsetImmediate\s*\(/, 'timers'],
  [/\bprocess\./, 'process'],
  [/from\s+['"]node:/, 'node:* import'],
  [/\bperformance\.now\s*\(/, 'performance.now'],
  [/\basync\s+(function|\(|[a-zA-Z_$][\w$]*\s*\()/, 'async'],
];

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

// Strip comments and string contents roughly, so prose mentioning Date.now does not trip it.
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}

describe('tidy', () => {
  const files = walk(srcDir);
  it('pure layers use no clock, randomness, timers, process or node modules', () => {
    const problems: string[] = [];
    for (const f of files) {
      const folder = relative(srcDir, f).split('/')[0] ?? '';
      if (!pureFolders.includes(folder)) continue;
      const text = code(readFileSync(f, 'utf8'));
      for (const [re, what] of banned) if (re.test(text)) problems.push(`${relative(srcDir, f)}: ${what}`);
    }
    expect(problems).toEqual([]);
  });

  it('folders import only from lower ranks (type-only imports excepted)', () => {
    const problems: string[] = [];
    const importRe = /^import\s+(type\s+)?[^'"]*from\s+['"](\.\.\/([a-z]+)\/[^'"]*)['"]/gm;
    for (const f of files) {
      const folder = relative(srcDir, f).split('/')[0] ?? '';
      const own = rank[folder];
      if (own === undefined) { problems.push(`${relative(srcDir, f)}: folder not in the layer table`); continue; }
      for (const m of readFileSync(f, 'utf8').matchAll(importRe)) {
        const typeOnly = Boolean(m[1]);
        const target = m[3] ?? '';
        const theirs = rank[target];
        if (theirs === undefined) continue;
        const allowed = theirs < own || typeOnly || (folder === 'membership' && target === 'transport');
        if (!allowed) problems.push(`${relative(srcDir, f)} imports ${m[2]} (rank ${theirs} >= ${own})`);
      }
    }
    expect(problems).toEqual([]);
  });
});
