// What the node keeps in `level` beside the log: the group registry (GroupId <-> compact numeric
// id, tombstones), hard-state checkpoints, snapshot metadata and live-range checkpoints.

import { Level } from 'level';
import type { HardState } from './group-log.js';

export interface PersistedSnapshot {
  index: number;
  term: number;
  /** Membership blob, base64. */
  membership: string;
  /** File name under snapshots/. */
  file: string;
  bytes: number;
}

export interface PersistedLive {
  from: number;
  prevTerm: number;
  keep: number[];
}

export interface RegistryEntry {
  id: string;
  num: number;
  removed: boolean;
}

export interface MetaContents {
  registry: RegistryEntry[];
  nextNum: number;
  hardStates: Map<number, HardState>;
  snapshots: Map<number, PersistedSnapshot>;
  live: Map<number, PersistedLive>;
}

/** One put or delete; values are JSON. */
export type MetaOp = { type: 'put'; key: string; value: unknown } | { type: 'del'; key: string };

export const metaKey = {
  group: (num: number): string => `group/${num}`,
  hardState: (num: number): string => `hs/${num}`,
  snapshot: (num: number): string => `snap/${num}`,
  live: (num: number): string => `live/${num}`,
  nextNum: 'next-num',
};

export class MetaStore {
  private constructor(private readonly db: Level<string, unknown>) {}

  static async open(path: string): Promise<MetaStore> {
    const db = new Level<string, unknown>(path, { valueEncoding: 'json' });
    await db.open();
    return new MetaStore(db);
  }

  async load(): Promise<MetaContents> {
    const out: MetaContents = { registry: [], nextNum: 1, hardStates: new Map(), snapshots: new Map(), live: new Map() };
    for await (const [key, value] of this.db.iterator()) {
      const slash = key.indexOf('/');
      const kind = slash < 0 ? key : key.slice(0, slash);
      const num = Number(key.slice(slash + 1));
      if (kind === 'group') out.registry.push(value as RegistryEntry);
      else if (kind === 'hs') out.hardStates.set(num, value as HardState);
      else if (kind === 'snap') out.snapshots.set(num, value as PersistedSnapshot);
      else if (kind === 'live') out.live.set(num, value as PersistedLive);
      else if (key === metaKey.nextNum) out.nextNum = value as number;
    }
    out.registry.sort((a, b) => a.num - b.num);
    return out;
  }

  /** One chained batch, synced: the fast form (building-block-costs.md, section 1). */
  async write(ops: readonly MetaOp[]): Promise<void> {
    if (ops.length === 0) return;
    const batch = this.db.batch();
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value);
      else batch.del(op.key);
    }
    await batch.write({ sync: true });
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
