// Adapts the storage layer's per-group view of the WAL to the Raft core's LogReader and HardState
// shapes: `undefined` becomes null, vote '' means none, the snapshot's membership is a protobuf blob.

import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';
import type { Entry, EntryType, HardState, LogReader, SnapshotMeta } from '../raft/index.js';
import type { WriteAheadLog } from '../storage/index.js';
import { decodeMembership } from './raft-wire.js';

export function raftReader(wal: WriteAheadLog, id: GroupId): LogReader {
  const r = wal.reader(id);
  return {
    firstIndex: () => r.firstIndex(),
    lastIndex: () => r.lastIndex(),
    term: (i) => r.term(i),
    entries: (lo, hi, maxBytes): Entry[] =>
      r.entries(lo, hi, maxBytes).map((e) => ({ index: e.index, term: e.term, type: (e.type ?? 0) as EntryType, data: e.data })),
    snapshot: (): SnapshotMeta | null => {
      const s = r.snapshot();
      if (s === undefined) return null;
      return { index: s.index, term: s.term, membership: decodeMembership(s.membership) };
    },
    snapshotChunk: (index: LogIndex, offset: number, maxBytes: number) => wal.snapshotChunk(id, index, offset, maxBytes) ?? null,
  };
}

export function raftHardState(wal: WriteAheadLog, id: GroupId): HardState {
  const hs = wal.hardState(id);
  return { term: hs.term as Term, vote: hs.vote === '' ? null : (hs.vote as NodeId), commit: hs.commit as LogIndex };
}

export function walHardState(hs: HardState): { term: HardState['term']; vote: string; commit: LogIndex } {
  return { term: hs.term, vote: hs.vote ?? '', commit: hs.commit };
}
