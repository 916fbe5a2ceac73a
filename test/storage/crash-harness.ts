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
export const crashTerm = (index: number): number => 1 + Math.floor(index / 100);
export const crashBody = (g: string, index: number): Uint8Array => bodyOf(g, index, crashTerm(index), 50 + ((index * 7919) % 3000));

const childScript = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const roundMsMax = 30_000;

interface Acked {
  last: Map<string, number>;
  from: Map<string, number>;
  commit: Map<string, number>;
}

export interface RoundResult {
  acks: number;
  entriesChecked: number;
  recoveryMs: number;
  problems: string[];
}

/** Runs one child until `killAfterAcks` acknowledgements arrive, then SIGKILLs it. */
function runChild(dir: string, seed: number, killAfterAcks: number, acked: Acked): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', childScript, dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let acks = 0;
    let rest = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), roundMsMax); // a bound, not an assertion
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, g, n] = line.split(' ');
        if (kind === 'A') { acked.last.set(g!, Math.max(acked.last.get(g!) ?? 0, Number(n))); acks++; }
        if (kind === 'L') acked.from.set(g!, Number(n));
        if (kind === 'H') acked.commit.set(g!, Math.max(acked.commit.get(g!) ?? 0, Number(n)));
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
    if (!wal.hasGroup(g)) { if (acked.last.has(g)) problems.push(`group ${g} lost`); continue; }
    const first = wal.firstIndex(g);
    const last = wal.lastIndex(g);
    const ackedLast = acked.last.get(g) ?? 0;
    if (last < ackedLast) problems.push(`${g}: last ${last} < acknowledged ${ackedLast}`);
    if (first > Math.max(1, acked.from.get(g) ?? 1)) problems.push(`${g}: first ${first} above live-from ${acked.from.get(g)}`);
    if (wal.hardState(g).commit < (acked.commit.get(g) ?? 0)) problems.push(`${g}: commit went back`);
    for (const e of wal.entries(g, first, logIndex(last + 1), Number.MAX_SAFE_INTEGER)) {
      entries++;
      const want = crashBody(g, e.index);
      if (e.term !== crashTerm(e.index) || !Buffer.from(e.data).equals(Buffer.from(want))) problems.push(`${g}/${e.index}: wrong body or term`);
    }
    const kept = wal.entry(g, logIndex(1));
    if (kept !== undefined && !Buffer.from(kept.data).equals(Buffer.from(crashBody(g, 1)))) problems.push(`${g}/1: kept entry damaged`);
    if (kept === undefined && ackedLast >= 1) problems.push(`${g}/1: entry kept live is gone`);
  }
  const recoveryMs = wal.recovery.durationMs;
  await wal.close();
  return { entries, recoveryMs, problems };
}

/** Runs `rounds` kill-and-recover rounds in `dir`; each round's kill point comes from the seed. */
export async function runCrashRounds(dir: string, seed: number, rounds: number, acksMax: number): Promise<RoundResult[]> {
  const rng = new SeededRandom(seed);
  const acked: Acked = { last: new Map(), from: new Map(), commit: new Map() };
  const results: RoundResult[] = [];
  for (let r = 0; r < rounds; r++) {
    const acks = await runChild(dir, rng.nextU32(), 1 + rng.int(acksMax), acked);
    const c = await check(dir, acked);
    results.push({ acks, entriesChecked: c.entries, recoveryMs: c.recoveryMs, problems: c.problems });
    if (c.problems.length > 0) break;
  }
  return results;
}
