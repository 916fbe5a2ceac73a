// Random operation sequences (appends with term changes, truncation, live ranges, hard state,
// installed snapshots, compaction with rewrites, reopen) against a plain in-memory model of each
// group's log: every read must agree. The seed is in every failure message.

import { describe, expect, it } from 'vitest';
import { groupId, logIndex, term, type GroupId } from '../../src/lib/ids.js';
import { SeededRandom } from '../../src/lib/random.js';
import { WriteAheadLog } from '../../src/storage/index.js';
import { bodyOf, tempDir } from './helpers.js';

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
  expect(wal.hardState(id), where).toEqual(m.hard);
  expect(wal.firstIndex(id), where).toBe(m.first);
  expect(wal.lastIndex(id), where).toBe(m.last);
  if (m.first > 1 || m.prevTerm > 0) expect(wal.term(id, logIndex(m.first - 1)), where).toBe(m.prevTerm);
  const got = m.last >= m.first ? wal.entries(id, logIndex(m.first), logIndex(m.last + 1), Number.MAX_SAFE_INTEGER) : [];
  expect(got.length, where).toBe(m.last - m.first + 1);
  for (const e of got) {
    expect(e.term, `${where}/${e.index}`).toBe(m.terms.get(e.index));
    expect(Buffer.from(e.data).equals(Buffer.from(bodyOf(id, e.index, e.term, sizeOf(e.index)))), `${where}/${e.index} body`).toBe(true);
  }
  for (let i = Math.max(1, m.first - 40); i < m.first; i++) {
    const e = wal.entry(id, logIndex(i));
    const t = m.terms.get(i);
    expect(e?.term, `${where} kept ${i}`).toBe(t);
    if (e !== undefined) expect(Buffer.from(e.data).equals(Buffer.from(bodyOf(id, i, e.term, sizeOf(i)))), `${where} kept ${i} body`).toBe(true);
  }
}

async function runSeed(seed: number, steps: number): Promise<void> {
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
        expect(wal.corruptedGroups()).toEqual([]);
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

describe('write-ahead log against a model', () => {
  it('agrees with the model over random appends, truncations, live ranges, hard states, installed snapshots, compactions and reopens', async () => {
    for (let seed = 1; seed <= 12; seed++) await runSeed(seed, 150);
  });
});
