// A scripted cluster for readable Raft scenario tests: real MultiRaft nodes over in-memory storage,
// with the test deciding which messages are delivered, dropped or held, and when nodes tick or crash.

import type { GroupId, NodeId } from '../../src/lib/ids.js';
import { groupId, logIndex, nodeId, term as toTerm } from '../../src/lib/ids.js';
import { SeededRandom } from '../../src/lib/random.js';
import { EntryType, MultiRaft, defaultRaftConfig } from '../../src/raft/index.js';
import type { Entry, GroupStatus, Membership, Message, RaftConfig, ReadState } from '../../src/raft/index.js';
import { MemStorage } from './sim/mem-storage.js';

export interface HarnessNode {
  readonly id: NodeId;
  raft: MultiRaft | null;
  readonly storage: Map<GroupId, MemStorage>;
  readonly applied: Map<GroupId, Entry[]>;
  readonly readStates: ReadState[];
  readonly failedReads: number[];
  /** (group, truncateFrom) for every Ready that overwrote durable entries. */
  readonly truncations: Array<{ group: GroupId; from: number }>;
}

export const G = groupId('g');

export class Harness {
  readonly nodes = new Map<NodeId, HarnessNode>();
  pending: Message[] = [];
  readonly blocked = new Set<string>();
  readonly cfg: RaftConfig;
  private readonly rng: SeededRandom;
  sentCount = 0;
  /** When not null, every delivered message is recorded here. */
  trace: Message[] | null = null;

  constructor(
    ids: string[],
    readonly groups: GroupId[] = [G],
    readonly membership: (g: GroupId) => Membership = () => ({ voters: ids.map(nodeId), learners: [] }),
    cfg: Partial<RaftConfig> = {},
    seed = 1,
  ) {
    this.cfg = { ...defaultRaftConfig, electionTimeoutTicks: 10, heartbeatIntervalTicks: 2, ...cfg };
    this.rng = new SeededRandom(seed);
    for (const s of ids) {
      const id = nodeId(s);
      const n: HarnessNode = {
        id, raft: null, storage: new Map(), applied: new Map(), readStates: [], failedReads: [], truncations: [],
      };
      for (const g of groups) n.storage.set(g, new MemStorage());
      this.nodes.set(id, n);
    }
  }

  node(s: string): HarnessNode {
    const n = this.nodes.get(nodeId(s));
    if (n === undefined) throw new Error(`no node ${s}`);
    return n;
  }

  raft(s: string): MultiRaft {
    const r = this.node(s).raft;
    if (r === null) throw new Error(`node ${s} is down`);
    return r;
  }

  /** Gives a stopped node a durable log with these entry terms (index 1..) and a current term. */
  setLog(s: string, terms: number[], currentTerm: number, g: GroupId = G): void {
    const st = this.node(s).storage.get(g)!;
    st.persist({
      group: g, snapshot: null, truncateFrom: null,
      entries: terms.map((t, i) => ({ index: logIndex(i + 1), term: toTerm(t), type: EntryType.Normal, data: new Uint8Array([i + 1, t]) })),
      hardState: { term: toTerm(currentTerm), vote: null, commit: logIndex(0) },
      committedEntries: [], readStates: [], failedReads: [], softState: null, membership: null,
    }, () => 0);
  }

  start(...names: string[]): void {
    for (const s of names) {
      const n = this.node(s);
      n.raft = new MultiRaft(n.id, this.cfg, this.rng.fork());
      for (const g of this.groups) {
        const st = n.storage.get(g)!;
        n.applied.set(g, []);
        n.raft.addGroup(g, { membership: this.membership(g), hardState: st.hardState, reader: st });
      }
    }
  }

  startAll(): void {
    this.start(...[...this.nodes.values()].map((n) => n.id));
  }

  crash(s: string): void {
    this.node(s).raft = null;
  }

  /** Blocks messages from -> to (one way); isolate() blocks both ways. */
  block(from: string, to: string): void {
    this.blocked.add(`${from}>${to}`);
  }

  isolate(s: string): void {
    for (const o of this.nodes.keys()) {
      if (o === s) continue;
      this.block(s, o);
      this.block(o, s);
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Persists, sends and applies everything ready on one node. */
  processReady(n: HarnessNode): void {
    const raft = n.raft;
    if (raft === null) return;
    for (let k = 0; k < 100 && raft.hasReady(); k++) {
      const r = raft.ready();
      this.pending.push(...r.messages);
      for (const gr of r.groups) {
        const problems = n.storage.get(gr.group)!.persist(gr, () => 0);
        if (problems.length > 0) throw new Error(problems.join('; '));
        if (gr.truncateFrom !== null) n.truncations.push({ group: gr.group, from: gr.truncateFrom });
        if (gr.snapshot !== null) n.applied.set(gr.group, []);
        n.applied.get(gr.group)!.push(...gr.committedEntries);
        n.readStates.push(...gr.readStates);
        n.failedReads.push(...gr.failedReads);
      }
      this.pending.push(...r.messagesAfterPersist);
      raft.advance(r);
    }
  }

  processAll(): void {
    for (const n of this.nodes.values()) this.processReady(n);
  }

  /** Delivers every pending message once (blocked links and `drop` lose them). Returns how many. */
  deliver(drop: (m: Message) => boolean = () => false): number {
    const batch = this.pending;
    this.pending = [];
    let count = 0;
    for (const m of batch) {
      this.sentCount++;
      if (this.blocked.has(`${m.from}>${m.to}`) || drop(m)) continue;
      const to = this.nodes.get(m.to);
      if (to?.raft === null || to === undefined) continue;
      this.trace?.push(m);
      to.raft.step(m);
      count++;
    }
    this.processAll();
    return count;
  }

  /** Process and deliver until the network is quiet (bounded). */
  stabilize(drop: (m: Message) => boolean = () => false): void {
    this.processAll();
    for (let round = 0; round < 200 && this.pending.length > 0; round++) this.deliver(drop);
  }

  /** Ticks every running node `count` times, stabilizing after each tick. */
  tick(count = 1, drop: (m: Message) => boolean = () => false): void {
    for (let i = 0; i < count; i++) {
      for (const n of this.nodes.values()) n.raft?.tick();
      this.stabilize(drop);
    }
  }

  campaign(s: string, g: GroupId = G): void {
    this.raft(s).campaign(g);
    this.stabilize();
  }

  status(s: string, g: GroupId = G): GroupStatus {
    const st = this.raft(s).status(g);
    if (st === null) throw new Error(`no group ${g} on ${s}`);
    return st;
  }

  /** Terms of the durable log entries of a node, index 1.. */
  logTerms(s: string, g: GroupId = G): number[] {
    const st = this.node(s).storage.get(g)!;
    const out: number[] = [];
    for (let i = st.base + 1; i <= st.lastIndex(); i++) out.push(st.term(logIndex(i))!);
    return out;
  }

  leaders(g: GroupId = G): string[] {
    const out: string[] = [];
    for (const n of this.nodes.values()) if (n.raft?.status(g)?.role === 'leader') out.push(n.id);
    return out;
  }
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (e: Entry): string => new TextDecoder().decode(e.data);
