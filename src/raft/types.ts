// The Raft core's data: log entries, hard state, membership, snapshots, the read-only storage
// interface the host provides, the wire messages (plain objects) and the Ready handed to the host.

import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';

/** Persisted enum: explicit numbers, only grows at the end. */
export const EntryType = { Normal: 0, ConfChange: 1 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  readonly index: LogIndex;
  readonly term: Term;
  readonly type: EntryType;
  /** Application payload; empty for the no-op a new leader appends. ConfChange: encodeConfChange. */
  readonly data: Uint8Array;
}

/** What must be durable before a vote or an ack leaves the node. */
export interface HardState {
  readonly term: Term;
  readonly vote: NodeId | null;
  readonly commit: LogIndex;
}

export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMeta {
  /** The last log index the snapshot covers, and its term. */
  readonly index: LogIndex;
  readonly term: Term;
  /** Membership as of `index` (pitfall 6: snapshots carry configuration). */
  readonly membership: Membership;
}

/**
 * Read-only, synchronous view of one group's durable log, provided by the host (the node's WAL).
 * The core never writes through it: it writes through Ready. Valid term range:
 * [firstIndex - 1, lastIndex]; firstIndex - 1 is the snapshot point (or 0 for an empty log).
 */
export interface LogReader {
  firstIndex(): LogIndex;
  lastIndex(): LogIndex;
  /** Term of the entry at `index`, or undefined outside [firstIndex - 1, lastIndex]. */
  term(index: LogIndex): Term | undefined;
  /** Entries [lo, hi), stopping once maxBytes of payload is reached (always at least one). */
  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[];
  /** The latest durable application snapshot, or null. */
  snapshot(): SnapshotMeta | null;
  /** Bytes [offset, offset + maxBytes) of the snapshot at `index`; done when it reached the end. */
  snapshotChunk(index: LogIndex, offset: number, maxBytes: number): { data: Uint8Array; done: boolean } | null;
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

// ---- messages (the transport encodes them) ----

interface GroupMessageBase {
  readonly group: GroupId;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
}

export interface AppendMessage extends GroupMessageBase {
  readonly type: 'append';
  readonly prevIndex: LogIndex;
  readonly prevTerm: Term;
  readonly entries: readonly Entry[];
  readonly commit: LogIndex;
}

export interface AppendResponseMessage extends GroupMessageBase {
  readonly type: 'append-response';
  readonly reject: boolean;
  /** Accepted: the last index this message verified. Rejected: the prevIndex that did not match. */
  readonly index: LogIndex;
  /** Rejected: a hint (index, term) for fast backtracking: the follower's last index <= index with term <= prevTerm. */
  readonly hintIndex: LogIndex;
  readonly hintTerm: Term;
}

export interface VoteMessage extends GroupMessageBase {
  readonly type: 'vote';
  /** Pre-vote: term is the term the sender would campaign in; nobody changes term for it. */
  readonly pre: boolean;
  readonly lastIndex: LogIndex;
  readonly lastTerm: Term;
  /** Sent because of a leadership transfer: bypasses leader stickiness. */
  readonly transfer: boolean;
}

export interface VoteResponseMessage extends GroupMessageBase {
  readonly type: 'vote-response';
  readonly pre: boolean;
  readonly reject: boolean;
}

export interface SnapshotMessage extends GroupMessageBase {
  readonly type: 'snapshot';
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly done: boolean;
}

export interface SnapshotResponseMessage extends GroupMessageBase {
  readonly type: 'snapshot-response';
  /** Bytes received so far of the snapshot at `index` (the next offset wanted). */
  readonly index: LogIndex;
  readonly nextOffset: number;
}

export interface TimeoutNowMessage extends GroupMessageBase {
  readonly type: 'timeout-now';
}

/** One group's line in a coalesced heartbeat. ctx > 0: a read-index round to echo back. */
export interface HeartbeatItem {
  readonly group: GroupId;
  readonly term: Term;
  readonly commit: LogIndex;
  readonly ctx: number;
}

export interface HeartbeatResponseItem {
  readonly group: GroupId;
  readonly term: Term;
  readonly ctx: number;
}

/** One message per peer per heartbeat interval for all groups the two nodes share. */
export interface HeartbeatMessage {
  readonly type: 'heartbeat';
  readonly from: NodeId;
  readonly to: NodeId;
  readonly items: readonly HeartbeatItem[];
}

export interface HeartbeatResponseMessage {
  readonly type: 'heartbeat-response';
  readonly from: NodeId;
  readonly to: NodeId;
  readonly items: readonly HeartbeatResponseItem[];
}

export type GroupMessage =
  | AppendMessage
  | AppendResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | SnapshotMessage
  | SnapshotResponseMessage
  | TimeoutNowMessage;

export type Message = GroupMessage | HeartbeatMessage | HeartbeatResponseMessage;

// ---- Ready ----

export interface ReadState {
  readonly requestId: number;
  /** Serve the read once the group's applied index reaches this. */
  readonly index: LogIndex;
}

export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly term: Term;
}

export interface GroupReady {
  readonly group: GroupId;
  /** Persist install first, before the entries: replaces the whole log and the state machine. */
  readonly snapshot: { readonly meta: SnapshotMeta; readonly data: Uint8Array } | null;
  /**
   * When not null, delete every durable entry with index >= truncateFrom before appending
   * `entries` (a conflicting suffix from an older leader). Always equals entries[0].index then.
   */
  readonly truncateFrom: LogIndex | null;
  /** Append these (indexes contiguous). */
  readonly entries: readonly Entry[];
  /** Persist when not null (with the entries, in the same synced batch). */
  readonly hardState: HardState | null;
  /** Apply these after persisting, in order. */
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  /** Read requests that will never complete (leadership lost): retry elsewhere. */
  readonly failedReads: readonly number[];
  /** Role, leader or term changed since the last Ready; null when not. */
  readonly softState: SoftState | null;
  /** The effective membership changed (a config entry was appended, truncated or a snapshot came). */
  readonly membership: Membership | null;
}

export interface Ready {
  readonly groups: readonly GroupReady[];
  /** Send now, in parallel with persisting. */
  readonly messages: readonly Message[];
  /** Send only after everything in this Ready is durable (vote and append acks, votes requests). */
  readonly messagesAfterPersist: readonly Message[];
}
