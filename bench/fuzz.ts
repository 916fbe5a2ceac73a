// A coverage-guided fuzzer over the AMQP codec and the login (bench/fuzz-targets.ts), for a bounded
// time: `npx tsx bench/fuzz.ts [--target NAME] [--seconds 60] [--seed 1]`.
//
// Coverage comes from V8's own block coverage (node:inspector, Profiler.takePreciseCoverage with
// call counts, reset on every take), restricted to the code under src/: an input is kept when it
// reaches a block, or a hit-count bucket of a block (1, 2, 3, 4-7, 8-15, ...), no earlier input
// reached. Inputs are mutated from the kept ones (bit flips, interesting bytes and lengths, inserts,
// deletes, copies, splices of two inputs), 1 to 4 mutations stacked, from a seeded generator, so
// a seed replays its run. A throw is a crash and an input that runs longer than 1 s a hang; both
// are saved and make the exit code 1. Inputs that added coverage are written to
// test/fuzz-corpus/<target>/ (at most 64 per target and run, up to 4 KiB each), which the corpus
// test replays in `npm test`. (@jazzer.js/core was the first choice: its 4.0 native addon needs
// glibc 2.38, Debian 12 has 2.36, and 2.1 downloads its binary at install.)

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { fuzzTargets, type FuzzTarget } from './fuzz-targets.js';

const root = new URL('../', import.meta.url).pathname;
export const corpusDir = join(root, 'test/fuzz-corpus');
const inputMaxBytes = 4096;
const newPerRunMax = 64;
const hangMs = 1000;

interface ScriptCoverage {
  url: string;
  functions: Array<{ ranges: Array<{ startOffset: number; endOffset: number; count: number }> }>;
}

/** Synchronous inspector calls (a session in the same thread answers before post returns). */
function post<T>(session: Session, method: string, params: object = {}): T {
  let result: T | undefined;
  let error: Error | null = null;
  session.post(method, params, (e, r) => {
    error = e;
    result = r as T;
  });
  if (error !== null) throw error;
  if (result === undefined) throw new Error(`inspector ${method} did not answer synchronously`);
  return result;
}

function bucket(count: number): number {
  return count <= 3 ? count : 31 - Math.clz32(count) + 2;
}

/** The coverage features of the input that just ran (and resets the counters). */
function features(session: Session): string[] {
  const { result } = post<{ result: ScriptCoverage[] }>(session, 'Profiler.takePreciseCoverage');
  const out: string[] = [];
  for (const script of result) {
    if (!script.url.includes('/src/')) continue;
    for (const fn of script.functions) {
      for (const r of fn.ranges) if (r.count > 0) out.push(`${script.url}:${r.startOffset}:${r.endOffset}:${bucket(r.count)}`);
    }
  }
  return out;
}

/**
 * xorshift32: the mutator's own generator, outside src/ so its code adds no coverage of its own
 * (the counters need no reset before each input).
 */
class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = (seed * 2654435761) >>> 0 || 1;
  }
  int(n: number): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state % n;
  }
}

const interestingU32 = [0, 1, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x1000, 0x7fff, 0x8000, 0xffff, 0x10000, 0x1fff8, 0x7fffffff, 0x80000000, 0xffffffff];
const interestingBytes = [0, 1, 0x7f, 0x80, 0xff, 0xce, 0x41, 0x53, 0x46, 0x41, 0x74, 0x56];

function mutate(input: Buffer, other: Buffer, rnd: Rng): Buffer {
  let b = Buffer.from(input);
  const n = 1 + rnd.int(4);
  for (let i = 0; i < n; i++) {
    const at = b.length === 0 ? 0 : rnd.int(b.length);
    switch (rnd.int(8)) {
      case 0: if (b.length > 0) b[at] = b[at]! ^ (1 << rnd.int(8)); break;
      case 1: if (b.length > 0) b[at] = interestingBytes[rnd.int(interestingBytes.length)]!; break;
      case 2: if (b.length >= 4) b.writeUInt32BE(interestingU32[rnd.int(interestingU32.length)]!, rnd.int(b.length - 3)); break;
      case 3: if (b.length >= 2) b.writeUInt16BE(interestingU32[rnd.int(interestingU32.length)]! & 0xffff, rnd.int(b.length - 1)); break;
      case 4: b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + rnd.int(8) }, () => rnd.int(256))), b.subarray(at)]); break;
      case 5: b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rnd.int(16)))]); break;
      case 6: { const len = rnd.int(Math.min(32, b.length - at) + 1); b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]); break; }
      default: { const cut = other.length === 0 ? 0 : rnd.int(other.length); b = Buffer.concat([b.subarray(0, at), other.subarray(cut)]); }
    }
  }
  return b.length > inputMaxBytes ? b.subarray(0, inputMaxBytes) : b;
}

export function corpusOf(target: string): Buffer[] {
  const dir = join(corpusDir, target);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().map((f) => readFileSync(join(dir, f)));
}

interface RunReport {
  target: string;
  execs: number;
  execsPerSec: number;
  features: number;
  corpus: number;
  saved: number;
  crashes: number;
  hangs: number;
  heapMaxMiB: number;
}

function fuzzOne(target: FuzzTarget, seconds: number, seed: number, session: Session): RunReport {
  const rnd = new Rng(seed);
  const seen = new Set<string>();
  const corpus: Buffer[] = [];
  const report: RunReport = { target: target.name, execs: 0, execsPerSec: 0, features: 0, corpus: 0, saved: 0, crashes: 0, hangs: 0, heapMaxMiB: 0 };
  const dir = join(corpusDir, target.name);
  mkdirSync(dir, { recursive: true });
  const save = (input: Buffer, prefix = ''): void => {
    writeFileSync(join(dir, `${prefix}${createHash('sha1').update(input).digest('hex').slice(0, 16)}.bin`), input);
  };
  const exec = (input: Buffer): boolean => {
    const started = performance.now();
    try {
      target.run(input);
    } catch (e) {
      report.crashes++;
      save(input, 'crash-');
      console.error(`crash in ${target.name}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    }
    if (performance.now() - started > hangMs) {
      report.hangs++;
      save(input, 'hang-');
    }
    report.execs++;
    let added = false;
    for (const f of features(session)) {
      if (seen.has(f)) continue;
      seen.add(f);
      added = true;
    }
    return added;
  };
  features(session); // drop the counts of whatever ran before
  for (const input of [...target.seeds(), ...corpusOf(target.name)]) if (exec(input)) corpus.push(input);
  if (corpus.length === 0) corpus.push(Buffer.alloc(0));
  const started = Date.now();
  while (Date.now() - started < seconds * 1000) {
    const input = mutate(corpus[rnd.int(corpus.length)]!, corpus[rnd.int(corpus.length)]!, rnd);
    if (!exec(input)) continue;
    corpus.push(input);
    if (report.saved < newPerRunMax) {
      save(input);
      report.saved++;
    }
    if (report.execs % 256 === 0) report.heapMaxMiB = Math.max(report.heapMaxMiB, process.memoryUsage().heapUsed / 2 ** 20);
  }
  report.heapMaxMiB = Math.round(Math.max(report.heapMaxMiB, process.memoryUsage().heapUsed / 2 ** 20));
  report.execsPerSec = Math.round(report.execs / seconds);
  report.features = seen.size;
  report.corpus = corpus.length;
  return report;
}

function main(argv: readonly string[]): number {
  const arg = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i === -1 ? undefined : argv[i + 1];
  };
  const seconds = Number(arg('--seconds') ?? 60);
  const seed = Number(arg('--seed') ?? 1);
  const only = arg('--target');
  const targets = fuzzTargets.filter((t) => only === undefined || t.name === only);
  if (targets.length === 0 || !(seconds > 0) || !Number.isInteger(seed)) {
    console.error(`usage: bench/fuzz.ts [--target ${fuzzTargets.map((t) => t.name).join('|')}] [--seconds 60] [--seed 1]`);
    return 64;
  }
  const session = new Session();
  session.connect();
  post(session, 'Profiler.enable');
  post(session, 'Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  let failed = false;
  for (const t of targets) {
    const r = fuzzOne(t, seconds, seed, session);
    console.log(JSON.stringify(r));
    failed ||= r.crashes > 0 || r.hangs > 0;
  }
  session.disconnect();
  return failed ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = main(process.argv.slice(2));
