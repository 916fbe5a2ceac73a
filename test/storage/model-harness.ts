// The model check of the write-ahead log, shared by test/storage/model.test.ts and the long run in
// bench/storage-model.ts: random operation sequences (appends with term changes, truncation, live
// ranges, hard state, installed snapshots, compaction with rewrites, reopen) against a plain
// in-memory model of each group's log; every read must agree.

import { isDeepStrictEqual } from 'node:util';
import { groupId, logIndex, term, type GroupId } from '../../src/lib/ids.js';
import { SeededRandom } from '../../src/lib/random.js';
import { WriteAheadLog } from '../../src/storage/index.js';
import { bodyOf, tempDir } from './helpers.js';

function same(actual: unknown, expected: unknown, where: string): void {
  if (!isDeepStrictEqual(actual, expected)) throw new Error(`${where}: got ${JSON.stringify(actual)}, model says ${JSON.stringify(expected)}`);
}

interface ModelGroup {
  first: number;
  last: number;
  prevTerm: number;
  terms: Map<number, number>; // every retained entry, dense range and kept ones below it
  hard: { term: number; vote: string; commit: number };
}

const sizeOf = (i: number): number => 20 + ((i * 2654435761) % 700);
const limits = { segmentBytesTarget: 8 * 1024, cacheBytesMax: 4 * 1024, rewriteAfterSegments: 1, rewriteLiveRatioMax: 0.6 };

function check(wal: WriteAheadLog, id: GroupId, m: ModelGroup, step: string): void {
  const where = `${step} ${id}`;
  same(wal.hardState(id), m.hard, where);
  same(wal.firstIndex(id), m.first, where);
  same(wal.lastIndex(id), m.last, where);
  if (m.first > 1 || m.prevTerm > 0) same(wal.term(id, logIndex(m.first - 1)), m.prevTerm, where);
  const got = m.last >= m.first ? wal.entries(id, logIndex(m.first), logIndex(m.last + 1), Number.MAX_SAFE_INTEGER) : [];
  same(got.length, m.last - m.first + 1, where);
  for (const e of got) {
    same(e.term, m.terms.get(e.index), `${where}/${e.index}`);
    same(Buffer.from(e.data).equals(Buffer.from(bodyOf(id, e.index, e.term, sizeOf(e.index)))), true, `${where}/${e.index} body`);
  }
  for (let i = Math.max(1, m.first - 40); i < m.first; i++) {
    const e = wal.entry(id, logIndex(i));
    const t = m.terms.get(i);
    same(e?.term, t, `${where} kept ${i}`);
    if (e !== undefined) same(Buffer.from(e.data).equals(Buffer.from(bodyOf(id, i, e.term, sizeOf(i)))), true, `${where} kept ${i} body`);
  }
}

/** Runs one seed; throws an Error naming seed, step and operation at the first disagreement. */
export async function runModelSeed(seed: number, steps: number): Promise<void> {
  const rng = new SeededRandom(seed);
  const t = tempDir(`model-${seed}`);
  const ids = [groupId('a'), groupId('b'), groupId('c')];
  const model = new Map<GroupId, ModelGroup>(ids.map((id) => [id, { first: 1, last: 0, prevTerm: 0, terms: new Map(), hard: { term: 0, vote: '', commit: 0 } }]));
  let wal = await WriteAheadLog.open(t.dir, { limits });
  try {
    for (const id of ids) wal.createGroup(id);
    for (let step = 0; step < steps; step++) {
      const id = ids[rng.int(ids.length)]!;
      const m = model.get(id)!;
      const op = rng.int(100);
      let label: string;
      if (op < 50) {
        // Append, sometimes from inside the log with a higher term (a new leader's suffix).
        const from = rng.chance(0.2) && m.last >= m.first ? m.first + rng.int(m.last - m.first + 1) : m.last + 1;
        const base = from - 1 >= m.first ? m.terms.get(from - 1)! : m.prevTerm;
        const top = Math.max(base, ...[...m.terms.entries()].filter(([i]) => i >= m.first).map(([, tt]) => tt));
        const tt = from <= m.last ? top + 1 : Math.max(base, 1) + (rng.chance(0.1) ? 1 : 0);
        const count = 1 + rng.int(6);
        for (let i = from; i <= m.last; i++) m.terms.delete(i);
        const entries = [];
        for (let i = from; i < from + count; i++) {
          entries.push({ index: logIndex(i), term: term(tt), data: bodyOf(id, i, tt, sizeOf(i)) });
          m.terms.set(i, tt);
        }
        wal.append(id, entries);
        m.last = from + count - 1;
        label = `append ${from}+${count}@${tt}`;
      } else if (op < 58 && m.last >= m.first) {
        const from = m.first + rng.int(m.last - m.first + 1);
        wal.truncateSuffix(id, logIndex(from));
        for (let i = from; i <= m.last; i++) m.terms.delete(i);
        m.last = from - 1;
        label = `truncate ${from}`;
      } else if (op < 80) {
        const from = m.first + rng.int(m.last - m.first + 2);
        const keep = [...m.terms.keys()].filter((i) => i < from && rng.chance(0.15));
        if (from > m.first) m.prevTerm = m.terms.get(from - 1) ?? m.prevTerm;
        for (const i of [...m.terms.keys()]) if (i < from && !keep.includes(i)) m.terms.delete(i);
        m.first = Math.max(m.first, from);
        wal.setLive(id, logIndex(from), keep.map(logIndex));
        label = `live ${from} keep ${keep.join(',')}`;
      } else if (op < 90) {
        await wal.flush();
        await wal.compact();
        label = 'compact';
      } else if (op < 93) {
        const h = m.hard;
        m.hard = rng.chance(0.5) ? { term: h.term + 1, vote: rng.chance(0.5) ? `n${rng.int(3)}` : '', commit: h.commit }
          : { term: h.term, vote: h.vote === '' ? `n${rng.int(3)}` : h.vote, commit: h.commit + rng.int(3) };
        wal.setHardState(id, { term: term(m.hard.term), vote: m.hard.vote, commit: logIndex(m.hard.commit) });
        label = `hard state ${JSON.stringify(m.hard)}`;
      } else if (op < 95) {
        // A leader's snapshot replaces the whole log (a follower that fell behind).
        const top = Math.max(m.prevTerm, ...[...m.terms.values()]);
        const at = m.last + rng.int(20);
        const tt = top + rng.int(2);
        await wal.installSnapshot(id, { index: logIndex(at), term: term(tt), membership: new Uint8Array([1]) }, new Uint8Array([at & 0xff]));
        Object.assign(m, { first: at + 1, last: at, prevTerm: tt, terms: new Map() });
        label = `install snapshot ${at}@${tt}`;
      } else if (op < 97) {
        await wal.close();
        wal = await WriteAheadLog.open(t.dir, { limits });
        same(wal.corruptedGroups(), [], `seed ${seed} step ${step}: corrupted groups after reopen`);
        label = 'reopen';
      } else {
        await wal.flush();
        label = 'flush';
      }
      for (const g of ids) check(wal, g, model.get(g)!, `seed ${seed} step ${step} (${label})`);
    }
  } finally {
    await wal.close().catch(() => {});
    t.remove();
  }
}
