// The public surface of the pure multi-group Raft core. Hosts (src/cluster/) use only this file.
//
// API
// - new MultiRaft(self: NodeId, config: RaftConfig, random: Random)   one per node; config validated
//   (validateRaftConfig(c): string[]; defaultRaftConfig).
// - addGroup(id: GroupId, init: GroupInit { membership, hardState, reader: LogReader, applied? })
//   `membership` is the group's bootstrap membership, identical on every node that ever hosts the
//   group (also nodes added later as learners: they start with it and an empty log and cannot
//   campaign until they are voters); a snapshot in the reader overrides it. Config entries in the
//   log after it are replayed. Messages for groups not hosted here are dropped.
//   removeGroup(id), hasGroup(id), status(id): GroupStatus | null (role, term, vote, leader,
//   commit, applied, first/last index, membership, transferee, leader-only replicas[{node, match,
//   state}]), entryTerm(id, index), counters { wakeups, heartbeatMessagesSent, heartbeatItemsSent, readies }
// - tick(): one tick for all groups (timer wheel: only due groups work; heartbeats coalesced into
//   one 'heartbeat' message per peer per heartbeatIntervalTicks with (group, term, commit) lines).
// - step(m: Message): an inbound message from a peer (the transport decodes to these objects).
// - propose(id, data: Uint8Array): ProposeResult
//     = { ok: true, index, term } | { ok: false, reason: 'not_leader'|'dropped'|'invalid'|'pending_change',
//       leaderHint?, detail? }. propose() itself only fails with not_leader (leaderHint when known)
//     or dropped (transfer in progress, maxUncommittedBytes). The entry is committed once a Ready
//     hands it out in committedEntries at that index with that term (a different term there means
//     it was lost to a new leader). Proposals of one turn go out as one append per follower at ready().
//   proposeConfChange(id, { kind: ConfChangeKind.AddLearner|Promote|Remove, node }) (one at a time,
//   only after the leader's no-op committed; Promote only once the learner caught up)
//   transferLeadership(id, to): TimeoutNow once `to` has the whole log; abandoned after one
//   election timeout. readIndex(id, requestId: number): leader only; the answer is a ReadState
//   { requestId, index } once a quorum confirmed leadership (unique per-term context), or the id in
//   failedReads if leadership is lost. campaign(id): start an election now. compact(id, meta).
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
// The LogReader must reflect step 1 by the time advance() is called. advance() can produce more
// work (the leader's own persist may commit and broadcast): check hasReady() again afterwards.
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
