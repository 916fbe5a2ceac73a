// The metadata group: vhosts, users, permissions, exchanges, bindings, queues and policies as one
// Raft group ('meta') on the node's group host, with the applied model state kept on every member.
//
// Every change is a log entry; a member applies committed entries in order to its own copy and
// routes from it. An entry is JSON: {t:'cmd', o: origin, s: seq, c: serializableCommand} or
// {t:'start', node, user}. origin+seq let the proposing client pick the result of ITS entry at
// the index it landed (the state may have moved between the local check and the commit).
// A 'start' entry is proposed each time a node starts hosting the group: applied, it creates the
// default user the first time ever (a new group) and drops the starting node's non-durable and
// exclusive queues (their owners did not survive the restart). Passive declares read only, so
// they are answered from the local state without a log entry. Every `snapshotEveryEntries` the
// state is saved as a snapshot so the log stays bounded; a restart installs it and replays the rest.

import { randomBytes } from 'node:crypto';
import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import { assert } from '../lib/assert.js';
import { groupId, type GroupId, type LogIndex, type NodeId } from '../lib/ids.js';
import { silentLogger, type Logger } from '../lib/log.js';
import {
  applyMetadata, createMetadataState, listQueues, listVhosts, modelError, ReplyCode, restoreMetadata,
  serializableCommand, snapshotMetadata, type MetadataCommand, type MetadataResult, type MetadataSnapshot,
  type MetadataState,
} from '../model/index.js';
import type { MetadataClient } from '../broker/metadata-client.js';
import type { AppliedEntry, GroupHost } from './group-host.js';

export const metadataGroupId: GroupId = groupId('meta');

export interface DefaultUser {
  readonly name: string;
  readonly passwordHash: string;
  readonly tags: readonly string[];
}

export interface MetadataGroupOptions {
  groupHost: GroupHost;
  /** Bootstrap voters (the same list on every member); [self] on a single node. */
  members: readonly NodeId[];
  /** Created by the first 'start' entry of a new group only. */
  defaultUser: DefaultUser;
  logger?: Logger;
  /** Entries applied between snapshots. */
  snapshotEveryEntries?: number;
  /** How long start() waits for the group to elect a leader and apply the start entry. */
  startTimeoutMs?: number;
}

export const metadataGroupDefaults = { snapshotEveryEntries: 1000, startTimeoutMs: 10_000 } as const;

type Entry =
  | { t: 'cmd'; o: string; s: number; c: MetadataCommand }
  | { t: 'start'; node: NodeId; user: DefaultUser };

interface SnapshotData {
  v: 1;
  bootstrapped: boolean;
  model: MetadataSnapshot;
}

export interface MetadataGroupStats {
  appliedIndex: number;
  snapshotIndex: number;
  snapshots: number;
  /** Entries in the group's log now (last - first + 1). */
  logEntries: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class ReplicatedMetadataClient implements MetadataClient {
  private current: MetadataState = createMetadataState();
  private bootstrapped = false;
  private appliedIndex = 0;
  private snapshotIndex = 0;
  private snapshots = 0;
  private snapshotting: Promise<void> | undefined;
  private closed = false;
  /** Unique per process: results of entries proposed here, by seq, until their proposer takes them. */
  private readonly origin = randomBytes(8).toString('hex');
  private seq = 0;
  private readonly waiting = new Set<number>();
  private readonly results = new Map<number, MetadataResult>();
  private readonly leaderWatchers = new Set<() => void>();

  private constructor(
    private readonly host: GroupHost,
    private readonly logger: Logger,
    private readonly snapshotEveryEntries: number,
  ) {}

  /** Hosts (or resumes) the group, waits for a leader here and commits this node's start entry. */
  static async start(o: MetadataGroupOptions): Promise<ReplicatedMetadataClient> {
    const every = o.snapshotEveryEntries ?? metadataGroupDefaults.snapshotEveryEntries;
    assert(Number.isInteger(every) && every >= 1, 'snapshotEveryEntries must be a positive integer');
    const client = new ReplicatedMetadataClient(o.groupHost, (o.logger ?? silentLogger).child('metadata'), every);
    o.groupHost.createGroup(metadataGroupId, o.members, {
      apply: (e) => client.onApply(e),
      installSnapshot: (index, _term, data) => client.onInstallSnapshot(index, data),
      leaderChange: () => {
        for (const w of client.leaderWatchers) w();
      },
    });
    if (o.members.length === 1 && o.members[0] === o.groupHost.nodeId) o.groupHost.campaign(metadataGroupId);
    await client.waitForLeader(o.startTimeoutMs ?? metadataGroupDefaults.startTimeoutMs);
    await client.host.propose(metadataGroupId, encodeEntry({ t: 'start', node: o.groupHost.nodeId, user: o.defaultUser }));
    client.logger.info('metadata group started', { index: client.appliedIndex, snapshotIndex: client.snapshotIndex });
    return client;
  }

  /** The applied state (replaced wholesale when a snapshot is installed: read it each time). */
  get state(): MetadataState {
    return this.current;
  }

  async apply(command: MetadataCommand): Promise<MetadataResult> {
    if (isReadOnly(command)) return applyMetadata(this.current, command);
    if (this.closed) return unavailable('the node is shutting down');
    const seq = ++this.seq;
    this.waiting.add(seq);
    try {
      await this.host.propose(metadataGroupId, encodeEntry({ t: 'cmd', o: this.origin, s: seq, c: serializableCommand(command) }));
    } catch (e) {
      this.waiting.delete(seq);
      this.results.delete(seq);
      this.logger.warn('metadata change not committed', { kind: command.kind, error: e instanceof Error ? e.message : String(e) });
      return unavailable('the metadata change was not committed; retry');
    }
    // propose resolves only after the entry was applied here, so its result is waiting.
    const result = this.results.get(seq);
    this.waiting.delete(seq);
    this.results.delete(seq);
    assert(result !== undefined, `metadata entry ${seq} resolved without being applied`);
    return result;
  }

  stats(): MetadataGroupStats {
    const s = this.host.status(metadataGroupId);
    return {
      appliedIndex: this.appliedIndex,
      snapshotIndex: this.snapshotIndex,
      snapshots: this.snapshots,
      logEntries: s === null ? 0 : s.lastIndex - s.firstIndex + 1,
    };
  }

  /** Stops proposing and waits for a snapshot in flight (the group host is closed by its owner). */
  async close(): Promise<void> {
    this.closed = true;
    await this.snapshotting;
  }

  // ---- the state machine (called by the group host in its apply phase) ----

  private onApply(e: AppliedEntry): void {
    assert(e.index > this.appliedIndex, `metadata entry ${e.index} applied after ${this.appliedIndex}`);
    const entry = decodeEntry(e.data);
    if (entry.t === 'cmd') {
      const result = applyMetadata(this.current, entry.c);
      if (entry.o === this.origin && this.waiting.has(entry.s)) this.results.set(entry.s, result);
    } else {
      this.applyStart(entry.node, entry.user);
    }
    this.appliedIndex = e.index;
    if (this.appliedIndex - this.snapshotIndex >= this.snapshotEveryEntries) this.snapshotSoon();
  }

  private applyStart(node: NodeId, user: DefaultUser): void {
    if (!this.bootstrapped) {
      this.bootstrapped = true;
      applyMetadata(this.current, { kind: 'addUser', name: user.name, passwordHash: user.passwordHash, tags: user.tags });
      for (const vhost of listVhosts(this.current)) {
        applyMetadata(this.current, { kind: 'setPermissions', user: user.name, vhost, configure: '.*', write: '.*', read: '.*' });
      }
    }
    for (const vhost of listVhosts(this.current)) {
      for (const q of listQueues(this.current, vhost)) {
        if (q.homeNode !== node || (q.durable && q.exclusiveOwner === null)) continue;
        applyMetadata(this.current, {
          kind: 'deleteQueue', vhost: q.vhost, name: q.name, ifUnused: false, ifEmpty: false,
          consumerCount: 0, messageCount: 0, connection: null,
        });
      }
    }
  }

  private onInstallSnapshot(index: LogIndex, data: Uint8Array): void {
    const snap = JSON.parse(decoder.decode(data)) as SnapshotData;
    assert(snap.v === 1, `metadata snapshot version ${String(snap.v)} is not known`);
    this.current = restoreMetadata(snap.model);
    this.bootstrapped = snap.bootstrapped;
    this.appliedIndex = index;
    this.snapshotIndex = index;
  }

  /** After this apply phase (the host's applied index catches up at advance), save a snapshot. */
  private snapshotSoon(): void {
    if (this.snapshotting !== undefined || this.closed) return;
    this.snapshotting = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.saveSnapshot())
      .finally(() => {
        this.snapshotting = undefined;
      });
  }

  private async saveSnapshot(): Promise<void> {
    const status = this.host.status(metadataGroupId);
    const index = this.appliedIndex as LogIndex;
    if (this.closed || status === null || status.applied < index) return; // next apply tries again
    const data: SnapshotData = { v: 1, bootstrapped: this.bootstrapped, model: snapshotMetadata(this.current) };
    try {
      await this.host.saveSnapshot(metadataGroupId, index, encoder.encode(JSON.stringify(data)));
      this.snapshotIndex = index;
      this.snapshots++;
    } catch (e) {
      // Overloaded (a membership change or the log's end at restart is above index) or Closed: later.
      if (!(e instanceof OperatingError)) throw e;
      this.logger.debug('metadata snapshot deferred', { index, error: e.message });
    }
  }

  private waitForLeader(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.host.leader(metadataGroupId) === null) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new OperatingError(OperatingErrorCode.NotLeader, `metadata group: no leader within ${timeoutMs} ms`, { leader: '' }));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.leaderWatchers.delete(check);
      };
      this.leaderWatchers.add(check);
      check();
    });
  }
}

function isReadOnly(c: MetadataCommand): boolean {
  return (c.kind === 'declareQueue' || c.kind === 'declareExchange') && c.passive;
}

function unavailable(why: string): MetadataResult {
  return modelError(ReplyCode.InternalError, why);
}

function encodeEntry(e: Entry): Uint8Array {
  return encoder.encode(JSON.stringify(e));
}

function decodeEntry(data: Uint8Array): Entry {
  const e = JSON.parse(decoder.decode(data)) as Entry;
  assert(e.t === 'cmd' || e.t === 'start', 'metadata log entry of unknown type');
  return e;
}
