// The public surface of the pure multi-group Raft core. Hosts (src/cluster/) use only this file.
//
// API
// - new MultiRaft(self: NodeId, config: RaftConfig, random: Random)   one per node; config validated
//   (validateRaftConfig(c): string[]; defaultRaftConfig).
// - addGroup(id: GroupId, init: GroupInit { membership, hardState, reader: LogReader, applied? })
//   removeGroup(id), hasGroup(id), status(id): GroupStatus | null, entryTerm(id, index)
// - tick(): one tick for all groups (timer wheel: only due groups work; heartbeats coalesced into
//   one 'heartbeat' message per peer per heartbeatIntervalTicks with (group, term, commit) lines).
// - step(m: Message): an inbound message from a peer (the transport decodes to these objects).
// - propose(id, data: Uint8Array): ProposeResult
//     = { ok: true, index, term } | { ok: false, reason: 'not_leader'|'dropped'|'invalid'|'pending_change',
//       leaderHint?, detail? }. Proposals of one turn go out as one append per follower at ready().
//   proposeConfChange(id, { kind: ConfChangeKind.AddLearner|Promote|Remove, node }) (one at a time,
//   only after the leader's no-op committed; Promote only once the learner caught up)
//   transferLeadership(id, to), readIndex(id, requestId: number), campaign(id), compact(id, meta)
// - hasReady(): boolean; ready(): Ready; advance(ready). One Ready outstanding at a time; step(),
//   tick() and propose() may be called while it is being persisted.
//
// THE READY CYCLE (host, once per event-loop turn, for all groups together):
//   1. for each GroupReady, in one synced batch: install `snapshot` (if any) replacing the log and
//      state machine; if `truncateFrom` is set delete durable entries >= it; append `entries`;
//      write `hardState` (if not null).
//   2. send `messages` any time (may be sent before step 1 completes); send `messagesAfterPersist`
//      only after step 1 is durable (vote and append acks, vote requests, heartbeat answers).
//   3. apply `committedEntries` in order (skip empty Normal entries: a leader's no-op; ConfChange
//      entries are informational, the core already applied them when appended); serve
//      `readStates` once applied >= index; fail `failedReads`.
//   4. advance(ready). The leader counts its own entries toward commit only from here.
// The LogReader must reflect step 1 by the time advance() is called.
// Snapshots: the application snapshots when it likes and calls compact(id, meta) (meta.index <=
// applied); it may then drop log entries <= meta.index; the reader serves the snapshot's bytes
// through snapshotChunk(). A follower receiving one gets it whole in GroupReady.snapshot.

export { MultiRaft } from './multi-raft.js';
export type { GroupInit, GroupStatus } from './multi-raft.js';
export type { ProposeResult } from './group.js';
export { defaultRaftConfig, validateRaftConfig } from './limits.js';
export type { RaftConfig, UnsafeTestFlags } from './limits.js';
export { ConfChangeKind, applyConfChange, decodeConfChange, encodeConfChange } from './conf-change.js';
export type { ConfChange } from './conf-change.js';
export { EntryType } from './types.js';
export type {
  AppendMessage, AppendResponseMessage, Entry, GroupMessage, GroupReady, HardState, HeartbeatItem,
  HeartbeatMessage, HeartbeatResponseItem, HeartbeatResponseMessage, LogReader, Membership, Message,
  ReadState, Ready, Role, SnapshotMessage, SnapshotMeta, SnapshotResponseMessage, SoftState,
  TimeoutNowMessage, VoteMessage, VoteResponseMessage,
} from './types.js';
