// The end-of-run check that no confirmed message was lost and how many arrived twice: what each
// queue should hold (from publisher confirms) against what consumers saw and what is still queued.

import { lostCount, mergeCounts, tally } from './stats.js';
import type { TallyPart } from './worker-protocol.js';

export interface DeliveryCheck {
  lost: number;
  duplicates: number;
  uniqueDelivered: number;
}

/**
 * `expected[q]`: messages confirmed into queue q; `parts`: every consumer's per-(queue, publisher)
 * delivery counts (several consumers of one queue are merged, so a message delivered to two of
 * them counts as a duplicate); `depth[q]`: messages still in queue q at the end.
 */
export function checkDeliveries(expected: readonly number[], parts: readonly TallyPart[], depth: readonly number[]): DeliveryCheck {
  const byPair = new Map<string, { queueIndex: number; counts: Uint8Array[] }>();
  for (const t of parts) {
    const key = `${t.queueIndex}:${t.publisherId}`;
    const entry = byPair.get(key) ?? { queueIndex: t.queueIndex, counts: [] };
    entry.counts.push(t.counts);
    byPair.set(key, entry);
  }
  const unique = new Array<number>(expected.length).fill(0);
  let duplicates = 0;
  for (const { queueIndex, counts } of byPair.values()) {
    const t = tally(mergeCounts(counts));
    unique[queueIndex] = (unique[queueIndex] ?? 0) + t.unique;
    duplicates += t.duplicates;
  }
  let lost = 0;
  for (let q = 0; q < expected.length; q++) lost += lostCount(expected[q] ?? 0, unique[q] ?? 0, depth[q] ?? 0);
  return { lost, duplicates, uniqueDelivered: unique.reduce((a, b) => a + b, 0) };
}
