// The crash-consistency harness shared by the test and bench/storage-crash.ts: runs the child,
// SIGKILLs it after a random number of acknowledgements, reopens the log and checks that every
// acknowledged entry is present and intact and that no torn entry is returned.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { groupId, logIndex, type GroupId } from '../../src/lib/ids.js';
import { SeededRandom } from '../../src/lib/random.js';
import { WriteAheadLog } from '../../src/storage/index.js';
import { bodyOf } from './helpers.js';

export const crashLimits = { segmentBytesTarget: 256 * 1024, cacheBytesMax: 64 * 1024 };
export const crashGroups = (): GroupId[] => Array.from({ length: 16 }, (_, k) => groupId(`c${k}`));
export const crashBody = (g: string, index: number, t: number): Uint8Array => bodyOf(g, index, t, 50 + ((index * 7919) % 3000));

const childScript = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const roundMsMax = 30_000;

/** Per group: index -> term of every entry a flush acknowledged and nothing since superseded. */
type Acked = Map<string, Map<number, number>>;

export interface RoundResult {
  acks: number;
  entriesChecked: number;
  recoveryMs: number;
  problems: string[];
}

/** Runs one child until `killAfterAcks` acknowledgements arrive, then SIGKILLs it. */
function runChild(dir: string, seed: number, killAfterAcks: number, acked: Acked, faults: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = ['--import', 'tsx', childScript, dir, String(seed), ...(faults ? ['faults'] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let acks = 0;
    let rest = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), roundMsMax); // a bound, not an assertion
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, g, a, b, c] = line.split(' ');
        const expected = acked.get(g!) ?? new Map<number, number>();
        acked.set(g!, expected);
        if (kind === 'T') for (const i of [...expected.keys()]) if (i >= Number(a)) expected.delete(i);
        if (kind === 'L') for (const i of [...expected.keys()]) if (i < Number(a) && i !== 1) expected.delete(i);
        if (kind === 'A') {
          for (let i = Number(a); i <= Number(b); i++) expected.set(i, Number(c));
          acks++;
        }
      }
      if (acks >= killAfterAcks) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(acks);
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

/** Reopens the log and checks it against what the child acknowledged. */
async function check(dir: string, acked: Acked): Promise<{ entries: number; recoveryMs: number; problems: string[] }> {
  const wal = await WriteAheadLog.open(dir, { limits: crashLimits });
  const problems: string[] = [...wal.recovery.corruptedGroups.map((g) => `group ${g} reported corrupted`)];
  let entries = 0;
  for (const g of crashGroups()) {
    const expected = acked.get(g) ?? new Map<number, number>();
    if (!wal.hasGroup(g)) { if (expected.size > 0) problems.push(`group ${g} lost`); continue; }
    const first = wal.firstIndex(g);
    const last = wal.lastIndex(g);
    let prevTerm = 0;
    // No torn or foreign entry is returned: every body matches its (group, index, term).
    for (const e of wal.entries(g, first, logIndex(last + 1), Number.MAX_SAFE_INTEGER)) {
      entries++;
      if (e.term < prevTerm) problems.push(`${g}/${e.index}: term goes back`);
      prevTerm = e.term;
      if (!Buffer.from(e.data).equals(Buffer.from(crashBody(g, e.index, e.term)))) problems.push(`${g}/${e.index}: wrong body`);
    }
    // The hard state written with each acknowledged batch is at least as new.
    const termAcked = Math.max(0, ...expected.values());
    if (wal.hardState(g).term < termAcked) problems.push(`${g}: hard state term ${wal.hardState(g).term} < acknowledged ${termAcked}`);
    // Every acknowledged entry that nothing superseded is there, with its term.
    for (const [i, t] of expected) {
      const e = wal.entry(g, logIndex(i));
      if (e === undefined) problems.push(`${g}/${i}: acknowledged entry (term ${t}) is missing (log ${first}..${last})`);
      else if (e.term !== t || !Buffer.from(e.data).equals(Buffer.from(crashBody(g, i, t)))) problems.push(`${g}/${i}: term ${e.term}, acknowledged ${t}`);
    }
  }
  const recoveryMs = wal.recovery.durationMs;
  await wal.close();
  return { entries, recoveryMs, problems };
}

/**
 * Runs `rounds` kill-and-recover rounds in `dir`; each round's kill point comes from the seed.
 * With `faults`, the child's writes also fail now and then (ENOSPC after a partial write).
 */
export async function runCrashRounds(dir: string, seed: number, rounds: number, acksMax: number, faults = false): Promise<RoundResult[]> {
  const rng = new SeededRandom(seed);
  const acked: Acked = new Map();
  const results: RoundResult[] = [];
  for (let r = 0; r < rounds; r++) {
    const acks = await runChild(dir, rng.nextU32(), 1 + rng.int(acksMax), acked, faults);
    const c = await check(dir, acked);
    results.push({ acks, entriesChecked: c.entries, recoveryMs: c.recoveryMs, problems: c.problems });
    if (c.problems.length > 0) break;
  }
  return results;
}
