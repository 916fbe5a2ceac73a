// The cluster layer's public surface (so far: the group host and the Raft wire codec).
//
// API
// - GroupHost.start({ nodeId, dataDir, listen: { host, port }, secret, logger?, raft?: Partial<RaftConfig>,
//   limits?: Partial<GroupHostLimits>, storageLimits?, random? }): Promise<GroupHost>
//   opens (recovering) the WAL in `${dataDir}/wal`, starts the transport (port 0: read `host.port`) and
//   a ticker of limits.tickMs (10 ms: with raft defaults a 100-200 ms election timeout, 20 ms heartbeats).
//   Damaged groups (wal.corruptedGroups()) are discarded (term and vote kept) and held out of Raft until
//   their leader re-adds them as learners (group-repair.ts: GroupRepairDriver, serveGroupRepair); a damaged
//   group with no other member is refused (Corrupted).
// - host.addPeer(node, 'host:port')
// - host.createGroup(id, bootstrapMembers, { apply(entry), leaderChange?(leader, term), installSnapshot?(index, term, data) })
//   same bootstrap members on every node that ever hosts the group (a later learner too). A group
//   the WAL holds resumes: installSnapshot(snapshot) first if there is one, then every committed
//   entry after it is applied again (from index 1 without a snapshot). Throws Corrupted only for a damaged group with no other member.
// - host.propose(id, data): Promise<{ index, term }> resolved once committed AND applied here;
//   rejects OperatingError NotLeader (details.leader = hint or ''), Overloaded, Closed.
//   host.proposeConfChange(id, { kind: ConfChangeKind.AddLearner|Promote|Remove, node }) likewise.
//   host.transferLeadership(id, to), host.campaign(id), host.removeGroup(id)
// - host.saveSnapshot(id, index <= applied, data, keep?): Promise<void>  lets the log before it go, except
//   the entries in `keep` (a deep queue's live bodies stay in the WAL and travel in a snapshot's trailer).
// - host.readEntry(id, index): Uint8Array | undefined  a committed entry's data, read synchronously from
//   the WAL (bodies evicted from memory); host.compactLog() runs WAL compaction now (it also runs after snapshots).
// - host.storageAlarm() / host.onStorageAlarm(fn): a failed WAL write (disk full, EACCES, EIO) being retried.
// - host.leader(id), host.status(id): GroupStatus | null, host.stats(): GroupHostStats & { wal }, host.close()
// - new ClusterRpc(host.transport, logger): call(peer, method, payload, timeoutMs?) / handle(method, fn),
//   notify(peer, method, payload, lane?) / onNotify(method, fn): named calls between nodes (src/cluster/rpc.ts).
// - encodeRaftBatch / decodeRaftBatch: proto/raft.proto RaftBatch <-> src/raft Message objects.

export { GroupHost } from './group-host.js';
export type { AppliedEntry, GroupHandlers, GroupHostOptions, GroupHostStats } from './group-host.js';
export { defaultGroupHostLimits, validateGroupHostLimits } from './limits.js';
export type { GroupHostLimits } from './limits.js';
export { decodeRaftBatch, encodeRaftBatch, encodeMembershipBlob, decodeMembership } from './raft-wire.js';
export type { RaftBatchOut } from './raft-wire.js';
export { ClusterRpc, defaultRpcLimits } from './rpc.js';
export type { RpcHandler, NotifyHandler, RpcLimits, RpcStats } from './rpc.js';
