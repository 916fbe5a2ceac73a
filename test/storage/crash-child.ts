// Child process of the crash-consistency test: recovers the log in argv[2], then appends to
// random groups with group-committed flushes (sometimes replacing a suffix with a new term, as a
// new leader does), printing what each flush made durable, until it is SIGKILLed. Lines:
// "T <group> <from>" before a suffix is replaced, "A <group> <from> <last> <term>" once durable,
// "L <group> <from>" before entries below `from` (except index 1) are let go.
// With argv[4] 'faults', a third of the segment writes fail with ENOSPC after half their bytes
// reached the file, so kills also land while a batch is cut off and retried.

import { logIndex, term, type GroupId } from '../../src/lib/ids.js';
import { SeededRandom } from '../../src/lib/random.js';
import { nodeWalIo, WriteAheadLog, type WalIo } from '../../src/storage/index.js';
import { crashBody, crashGroups, crashLimits } from './crash-harness.js';

async function main(): Promise<void> {
  const dir = process.argv[2]!;
  const rng = new SeededRandom(Number(process.argv[3] ?? 1));
  const faults = process.argv[4] === 'faults' ? faultyIo(new SeededRandom(Number(process.argv[3] ?? 1) ^ 0x5eed)) : undefined;
  const wal = await WriteAheadLog.open(dir, faults === undefined ? { limits: crashLimits } : {
    limits: { ...crashLimits, writeRetryDelayMsMin: 1, writeRetryDelayMsMax: 2 }, io: faults,
  });
  const groups = crashGroups();
  for (const g of groups) if (!wal.hasGroup(g)) wal.createGroup(g);
  await wal.flush();
  const out = (line: string): void => { process.stdout.write(line + '\n'); };
  const epoch = new Map<GroupId, number>(groups.map((g) => [g, Math.max(1, wal.term(g, wal.lastIndex(g)) ?? 1, wal.hardState(g).term)]));
  for (let turn = 0; turn < 1_000_000; turn++) {
    const touched = new Map<GroupId, { from: number; last: number }>();
    for (let k = 1 + rng.int(8); k > 0; k--) {
      const g = groups[rng.int(groups.length)]!;
      if (touched.has(g)) continue;
      let from = wal.lastIndex(g) + 1;
      if (rng.chance(0.05) && wal.lastIndex(g) >= wal.firstIndex(g)) {
        from = Math.max(wal.firstIndex(g), wal.lastIndex(g) - rng.int(4));
        epoch.set(g, epoch.get(g)! + 1);
        out(`T ${g} ${from}`); // printed first: from here on entries >= from may be replaced
      }
      const t = epoch.get(g)!;
      const count = 1 + rng.int(4);
      const entries = [];
      for (let i = from; i < from + count; i++) entries.push({ index: logIndex(i), term: term(t), data: crashBody(g, i, t) });
      wal.append(g, entries);
      wal.setHardState(g, { term: term(t), vote: 'n1', commit: logIndex(Math.max(wal.hardState(g).commit, Math.min(from - 1, wal.lastIndex(g)))) });
      touched.set(g, { from, last: from + count - 1 });
    }
    await wal.flush();
    for (const [g, r] of touched) out(`A ${g} ${r.from} ${r.last} ${epoch.get(g)}`);
    if (turn % 50 === 49) {
      for (const g of groups) {
        const from = Math.max(wal.firstIndex(g), wal.lastIndex(g) - 20);
        out(`L ${g} ${from}`); // printed first: entries below may vanish from here on
        wal.setLive(g, logIndex(from), from > 1 ? [logIndex(1)] : []);
      }
      await wal.compact();
    }
  }
}

/** Real file calls; a third of the writes put half their bytes in the file, then fail with ENOSPC. */
function faultyIo(rng: SeededRandom): WalIo {
  return {
    ...nodeWalIo,
    write: async (fd, buf, offset, length, position) => {
      if (!rng.chance(1 / 3)) return nodeWalIo.write(fd, buf, offset, length, position);
      const half = Math.floor(length / 2);
      if (half > 0) await nodeWalIo.write(fd, buf, offset, half, position);
      throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
    },
  };
}

main().catch((e: unknown) => {
  process.stderr.write(`crash child failed: ${String(e)}\n`);
  process.exit(1);
});
