// Child process of the crash-consistency test: recovers the log in argv[2], then appends to
// random groups with group-committed flushes, printing every acknowledged (group, index) until
// it is SIGKILLed. Lines: "A <group> <lastIndex>", "L <group> <from>", "H <group> <commit>".

import { logIndex, term, type GroupId } from '../../src/lib/ids.js';
import { SeededRandom } from '../../src/lib/random.js';
import { WriteAheadLog } from '../../src/storage/index.js';
import { crashBody, crashGroups, crashLimits, crashTerm } from './crash-harness.js';

async function main(): Promise<void> {
  const dir = process.argv[2]!;
  const rng = new SeededRandom(Number(process.argv[3] ?? 1));
  const wal = await WriteAheadLog.open(dir, { limits: crashLimits });
  const groups = crashGroups();
  for (const g of groups) if (!wal.hasGroup(g)) wal.createGroup(g);
  await wal.flush();
  const out = (line: string): void => { process.stdout.write(line + '\n'); };
  out('READY');
  for (let turn = 0; turn < 1_000_000; turn++) {
    const touched = new Map<GroupId, number>();
    const n = 1 + rng.int(8);
    for (let k = 0; k < n; k++) {
      const g = groups[rng.int(groups.length)]!;
      const from = wal.lastIndex(g) + 1;
      const count = 1 + rng.int(4);
      const entries = [];
      for (let i = from; i < from + count; i++) entries.push({ index: logIndex(i), term: term(crashTerm(i)), data: crashBody(g, i) });
      wal.append(g, entries);
      touched.set(g, from + count - 1);
    }
    const commits = new Map<GroupId, number>();
    for (const [g, last] of touched) {
      if (rng.chance(0.5)) {
        const commit = Math.max(wal.hardState(g).commit, last - 2);
        wal.setHardState(g, { term: term(crashTerm(last)), vote: 'n1', commit: logIndex(commit) });
        commits.set(g, commit);
      }
    }
    await wal.flush();
    for (const [g, last] of touched) out(`A ${g} ${last}`);
    for (const [g, commit] of commits) out(`H ${g} ${commit}`);
    if (turn % 50 === 49) {
      for (const g of groups) {
        const from = Math.max(wal.firstIndex(g), wal.lastIndex(g) - 20);
        out(`L ${g} ${from}`); // printed first: entries below may vanish from here on
        wal.setLive(g, logIndex(from), [logIndex(1)]);
      }
      await wal.compact();
    }
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`crash child failed: ${String(e)}\n`);
  process.exit(1);
});
