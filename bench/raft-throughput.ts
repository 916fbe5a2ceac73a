// Raft core throughput in the simulator: 3 nodes in one process, a zero-latency in-memory network
// and in-memory logs; every turn each node runs one Ready cycle (persist, send, apply, advance).
// Prints proposals/s through 1 group and through 1,000 groups, and CPU microseconds per entry.
// Run: npx tsx bench/raft-throughput.ts

import type { GroupId, LogIndex, NodeId, Term } from '../src/lib/ids.js';
import { groupId, logIndex, nodeId, term as toTerm } from '../src/lib/ids.js';
import { SeededRandom } from '../src/lib/random.js';
import { MultiRaft, defaultRaftConfig } from '../src/raft/index.js';
import type { Entry, GroupReady, HardState, LogReader, Message, SnapshotMeta } from '../src/raft/index.js';

/** Just enough durable log for the benchmark: an array, no hashing, no snapshots. */
class ArrayLog implements LogReader {
  hardState: HardState = { term: toTerm(0), vote: null, commit: logIndex(0) };
  private log: Entry[] = [];
  firstIndex(): LogIndex { return logIndex(1); }
  lastIndex(): LogIndex { return logIndex(this.log.length); }
  term(i: LogIndex): Term | undefined { return i === 0 ? toTerm(0) : this.log[i - 1]?.term; }
  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.log[i - 1]!;
      if (out.length > 0 && bytes + e.data.length > maxBytes) break;
      out.push(e);
      bytes += e.data.length;
    }
    return out;
  }
  snapshot(): SnapshotMeta | null { return null; }
  snapshotChunk(): null { return null; }
  persist(gr: GroupReady): void {
    if (gr.entries.length > 0) {
      this.log.length = gr.entries[0]!.index - 1;
      for (const e of gr.entries) this.log.push(e);
    }
    if (gr.hardState !== null) this.hardState = gr.hardState;
  }
}

interface BenchNode { id: NodeId; raft: MultiRaft; logs: Map<GroupId, ArrayLog>; applied: number }

function cluster(groups: GroupId[]): BenchNode[] {
  const ids = ['n1', 'n2', 'n3'].map(nodeId);
  const rng = new SeededRandom(7);
  const cfg = { ...defaultRaftConfig, maxInflightAppends: 16, maxEntriesPerAppend: 1024 };
  return ids.map((id) => {
    const raft = new MultiRaft(id, cfg, rng.fork());
    const logs = new Map<GroupId, ArrayLog>();
    for (const g of groups) {
      const log = new ArrayLog();
      logs.set(g, log);
      raft.addGroup(g, { membership: { voters: ids, learners: [] }, hardState: log.hardState, reader: log });
    }
    return { id, raft, logs, applied: 0 };
  });
}

/** One event-loop turn for every node: deliver, tick now and then, one Ready cycle. */
function turn(nodes: BenchNode[], inbox: Message[], turnNo: number): Message[] {
  const out: Message[] = [];
  for (const m of inbox) nodes.find((n) => n.id === m.to)!.raft.step(m);
  for (const n of nodes) {
    if (turnNo % 10 === 0) n.raft.tick();
    if (!n.raft.hasReady()) continue;
    const r = n.raft.ready();
    for (const m of r.messages) out.push(m);
    for (const gr of r.groups) {
      n.logs.get(gr.group)!.persist(gr);
      n.applied += gr.committedEntries.length;
    }
    for (const m of r.messagesAfterPersist) out.push(m);
    n.raft.advance(r);
  }
  return out;
}

function run(groupCount: number, totalProposals: number, batchPerGroup: number): void {
  const groups = Array.from({ length: groupCount }, (_, i) => groupId(`q${i}`));
  const nodes = cluster(groups);
  const leader = nodes[0]!;
  for (const g of groups) leader.raft.campaign(g);
  let inbox: Message[] = [];
  let t = 0;
  for (; t < 50; t++) inbox = turn(nodes, inbox, t);
  const payload = new Uint8Array(100);
  const startApplied = leader.applied;
  let proposed = 0;
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  for (let guard = 0; guard < 10_000_000 && leader.applied - startApplied < totalProposals; guard++, t++) {
    for (const g of groups) {
      if (proposed >= totalProposals) break;
      const s = leader.raft.status(g)!;
      if (s.lastIndex - s.commit > 4 * batchPerGroup) continue; // clients wait for confirms
      for (let k = 0; k < batchPerGroup; k++) if (leader.raft.propose(g, payload).ok) proposed++;
    }
    inbox = turn(nodes, inbox, t);
  }
  const wallS = Number(process.hrtime.bigint() - wall0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const committed = leader.applied - startApplied;
  const perSec = committed / wallS;
  const cpuUsPerEntry = (cpu.user + cpu.system) / committed;
  console.log(
    `${String(groupCount).padStart(5)} group(s): ${committed} entries committed on 3 nodes in ${wallS.toFixed(2)} s = ` +
      `${Math.round(perSec).toLocaleString('en-US')} proposals/s, ${cpuUsPerEntry.toFixed(2)} CPU us per committed entry ` +
      `(all 3 nodes, one process, ${batchPerGroup} proposals per group per turn, ${t} turns)`,
  );
}

run(1, 200_000, 256);
run(1000, 200_000, 4);
