// The pure SWIM core: probes (direct, then indirect through k members), suspicion with a timeout,
// incarnation numbers to refute, and piggybacked dissemination with bounded retransmits. No I/O,
// clock or randomness of its own: `tick(nowMs)` and `receive(msg, nowMs)` return messages to send.

import { assert } from '../lib/assert.js';
import type { NodeId } from '../lib/ids.js';
import type { Random } from '../lib/random.js';
import type { SwimConfig } from './limits.js';

/** A sync with this seq asks for the receiver's full state back (push-pull). */
const syncWantsReply = 1;

export type MemberStatus = 'alive' | 'suspect' | 'dead';
const statusRank: Record<MemberStatus, number> = { alive: 0, suspect: 1, dead: 2 };

/** What a node says about itself: routing and placement hints only. */
export interface MemberMeta {
  amqpAddress: string;
  clusterAddress: string;
  load: number;
  version: string;
  /** group id -> node id of that group's leader, as this node knows it (cluster/ fills it). */
  leaders: Readonly<Record<string, string>>;
}

export interface MemberUpdate {
  nodeId: NodeId;
  status: MemberStatus;
  incarnation: number;
  meta: MemberMeta | undefined;
}

export type GossipKind = 'ping' | 'ack' | 'ping-req' | 'sync';

export interface GossipMessage {
  kind: GossipKind;
  seq: number;
  from: NodeId;
  fromIncarnation: number;
  /** ping-req: the member to probe. */
  target: NodeId | undefined;
  updates: MemberUpdate[];
}

export interface Outgoing {
  to: NodeId;
  message: GossipMessage;
}

export interface MemberView {
  nodeId: NodeId;
  status: MemberStatus;
  incarnation: number;
  meta: MemberMeta | undefined;
}

export interface MemberChange extends MemberView {
  previous: MemberStatus | undefined;
}

interface Member extends MemberView {
  suspectSinceMs: number;
}

interface Probe {
  target: NodeId;
  seq: number;
  startedMs: number;
  indirectSent: boolean;
  acked: boolean;
}

interface Relay {
  requester: NodeId;
  requesterSeq: number;
}

export class Swim {
  private incarnation = 0;
  private readonly members = new Map<NodeId, Member>();
  /** One pending update per member; newer facts replace older ones. */
  private readonly broadcasts = new Map<NodeId, { update: MemberUpdate; transmits: number }>();
  private readonly relays = new Map<number, Relay>();
  private changes: MemberChange[] = [];
  private probeOrder: NodeId[] = [];
  private probe: Probe | undefined;
  private nextProbeMs: number;
  private periods = 0;
  private seq = 0;
  private seeds: readonly NodeId[] = [];
  private lastTickMs: number;

  constructor(
    readonly self: NodeId,
    private meta: MemberMeta,
    private readonly config: SwimConfig,
    private readonly random: Random,
    nowMs: number,
  ) {
    assert(config.probeTimeoutMs < config.probeIntervalMs, 'probe timeout must end before the period');
    this.nextProbeMs = nowMs;
    this.lastTickMs = nowMs;
    this.queueSelf();
  }

  get selfIncarnation(): number {
    return this.incarnation;
  }

  /** New metadata about this node: a higher incarnation carries it to everyone. */
  setMeta(meta: MemberMeta): void {
    this.meta = meta;
    this.incarnation++;
    this.queueSelf();
  }

  /** Contacts seed nodes (ids known from configuration); they answer with their full view. */
  join(seeds: readonly NodeId[]): Outgoing[] {
    this.seeds = seeds.filter((s) => s !== this.self);
    const out: Outgoing[] = [];
    for (const seed of this.seeds) out.push(this.message(seed, 'sync', syncWantsReply, undefined, this.fullState()));
    return out;
  }

  /** Drives probes and suspicion timeouts; call often (every few ms to every probe period). */
  tick(nowMs: number): Outgoing[] {
    const out: Outgoing[] = [];
    this.forgiveStall(nowMs);
    this.advanceProbe(nowMs, out);
    if (this.probe === undefined && nowMs >= this.nextProbeMs) this.startProbe(nowMs, out);
    for (const m of this.members.values()) {
      if (m.status === 'suspect' && nowMs >= m.suspectSinceMs + this.config.suspicionTimeoutMs) {
        this.apply({ nodeId: m.nodeId, status: 'dead', incarnation: m.incarnation, meta: undefined }, nowMs);
      }
    }
    return out;
  }

  receive(msg: GossipMessage, nowMs: number): Outgoing[] {
    const out: Outgoing[] = [];
    if (msg.from === this.self) return out;
    const knewSender = this.members.has(msg.from);
    for (const u of msg.updates) this.apply(u, nowMs);
    this.noteSender(msg, nowMs, knewSender, out);
    switch (msg.kind) {
      case 'ping':
        out.push(this.message(msg.from, 'ack', msg.seq));
        break;
      case 'ack':
        this.onAck(msg.seq, out);
        break;
      case 'ping-req':
        if (msg.target !== undefined && msg.target !== this.self) this.relayPing(msg, out);
        else if (msg.target === this.self) out.push(this.message(msg.from, 'ack', msg.seq));
        break;
      case 'sync':
        if (msg.seq === syncWantsReply) out.push(this.message(msg.from, 'sync', 0, undefined, this.fullState()));
        break;
    }
    return out;
  }

  /** Status changes since the last call, in the order they happened. */
  takeChanges(): MemberChange[] {
    const c = this.changes;
    this.changes = [];
    return c;
  }

  /** Every known member and this node, sorted by id. */
  view(): MemberView[] {
    const all: MemberView[] = [{ nodeId: this.self, status: 'alive', incarnation: this.incarnation, meta: this.meta }];
    for (const m of this.members.values()) all.push({ nodeId: m.nodeId, status: m.status, incarnation: m.incarnation, meta: m.meta });
    return all.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  statusOf(id: NodeId): MemberStatus | undefined {
    return id === this.self ? 'alive' : this.members.get(id)?.status;
  }

  // ---- probing ----

  private startProbe(nowMs: number, out: Outgoing[]): void {
    this.periods++;
    this.nextProbeMs = nowMs + this.config.probeIntervalMs;
    if (this.periods % this.config.deadProbeEveryPeriods === 0) this.pingOneDead(out);
    if (this.periods % this.config.syncEveryPeriods === 0) this.pushPull(out);
    const target = this.nextTarget();
    if (target === undefined) {
      // Alone (a lost join, or everyone else dead): knock on the seeds again.
      for (const seed of this.seeds) out.push(this.message(seed, 'sync', syncWantsReply, undefined, this.fullState()));
      return;
    }
    const seq = this.nextSeq();
    this.probe = { target, seq, startedMs: nowMs, indirectSent: false, acked: false };
    out.push(this.message(target, 'ping', seq));
  }

  private advanceProbe(nowMs: number, out: Outgoing[]): void {
    const p = this.probe;
    if (p === undefined) return;
    assert(p.startedMs <= nowMs, 'time does not go back');
    if (!p.acked && !p.indirectSent && nowMs >= p.startedMs + this.config.probeTimeoutMs) {
      p.indirectSent = true;
      for (const helper of this.pickHelpers(p.target)) {
        out.push(this.message(helper, 'ping-req', p.seq, p.target));
      }
    }
    if (nowMs < p.startedMs + this.config.probeIntervalMs) return;
    this.probe = undefined;
    const m = this.members.get(p.target);
    if (!p.acked && m !== undefined && m.status === 'alive') {
      this.apply({ nodeId: m.nodeId, status: 'suspect', incarnation: m.incarnation, meta: undefined }, nowMs);
    }
  }

  /**
   * A long gap between ticks means this process was stopped or starved: the acks and refutations
   * it missed are its own fault. Shift running deadlines by the gap so it does not accuse others
   * before it has read what arrived meanwhile (in the spirit of Lifeguard's local health).
   */
  private forgiveStall(nowMs: number): void {
    const gapMs = nowMs - this.lastTickMs;
    this.lastTickMs = nowMs;
    if (gapMs <= this.config.probeTimeoutMs) return;
    if (this.probe !== undefined) this.probe.startedMs = Math.min(nowMs, this.probe.startedMs + gapMs);
    for (const m of this.members.values()) {
      if (m.status === 'suspect') m.suspectSinceMs = Math.min(nowMs, m.suspectSinceMs + gapMs);
    }
  }

  /** Round-robin over a shuffled list of live members, reshuffled each round (SWIM 4.3). */
  private nextTarget(): NodeId | undefined {
    for (let attempts = 0; attempts < 2; attempts++) {
      while (this.probeOrder.length > 0) {
        const id = this.probeOrder.pop()!;
        const m = this.members.get(id);
        if (m !== undefined && m.status !== 'dead') return id;
      }
      this.probeOrder = this.shuffled([...this.members.values()].filter((m) => m.status !== 'dead').map((m) => m.nodeId));
    }
    return undefined;
  }

  private pingOneDead(out: Outgoing[]): void {
    const dead = [...this.members.values()].filter((m) => m.status === 'dead');
    if (dead.length === 0) return;
    const m = dead[this.random.int(dead.length)]!;
    out.push(this.message(m.nodeId, 'ping', this.nextSeq()));
  }

  /** Full state exchange with one live member: repairs views that piggybacking missed. */
  private pushPull(out: Outgoing[]): void {
    const alive = [...this.members.values()].filter((m) => m.status === 'alive');
    if (alive.length === 0) return;
    const m = alive[this.random.int(alive.length)]!;
    out.push(this.message(m.nodeId, 'sync', syncWantsReply, undefined, this.fullState()));
  }

  private pickHelpers(target: NodeId): NodeId[] {
    const candidates = [...this.members.values()]
      .filter((m) => m.status === 'alive' && m.nodeId !== target).map((m) => m.nodeId);
    return this.shuffled(candidates).slice(0, this.config.indirectProbes);
  }

  private onAck(seq: number, out: Outgoing[]): void {
    if (seq === 0) return;
    if (this.probe !== undefined && this.probe.seq === seq) this.probe.acked = true;
    const relay = this.relays.get(seq);
    if (relay !== undefined) {
      this.relays.delete(seq);
      out.push(this.message(relay.requester, 'ack', relay.requesterSeq));
    }
  }

  private relayPing(msg: GossipMessage, out: Outgoing[]): void {
    assert(msg.target !== undefined, 'ping-req names a target');
    const seq = this.nextSeq();
    if (this.relays.size >= this.config.relaysMax) {
      const oldest = this.relays.keys().next().value;
      if (oldest !== undefined) this.relays.delete(oldest);
    }
    this.relays.set(seq, { requester: msg.from, requesterSeq: msg.seq });
    out.push(this.message(msg.target, 'ping', seq));
  }

  // ---- facts about members ----

  /**
   * The sender is alive by the incarnation it claims. A sender we hold suspect or dead at that
   * incarnation is told so directly (even after the broadcast budget ran out), so it refutes.
   * A sender seen for the first time gets our full view.
   */
  private noteSender(msg: GossipMessage, nowMs: number, knewSender: boolean, out: Outgoing[]): void {
    const m = this.members.get(msg.from);
    if (m === undefined) {
      this.apply({ nodeId: msg.from, status: 'alive', incarnation: msg.fromIncarnation, meta: undefined }, nowMs);
    } else if (msg.fromIncarnation > m.incarnation) {
      this.apply({ nodeId: msg.from, status: 'alive', incarnation: msg.fromIncarnation, meta: undefined }, nowMs);
    } else if (m.status !== 'alive') {
      const fact: MemberUpdate = { nodeId: m.nodeId, status: m.status, incarnation: m.incarnation, meta: undefined };
      out.push(this.message(msg.from, 'ack', 0, undefined, [fact]));
    }
    if (!knewSender && this.members.has(msg.from) && msg.kind !== 'sync') {
      out.push(this.message(msg.from, 'sync', 0, undefined, this.fullState()));
    }
  }

  /** Applies one fact if it is newer than what we hold (higher incarnation, or worse status). */
  private apply(u: MemberUpdate, nowMs: number): void {
    if (u.nodeId === this.self) {
      if (u.status !== 'alive' && u.incarnation >= this.incarnation) {
        this.incarnation = u.incarnation + 1; // refute: we are alive, at a higher incarnation
        assert(Number.isSafeInteger(this.incarnation), 'incarnation stays a safe integer');
        this.queueSelf();
      }
      return;
    }
    const cur = this.members.get(u.nodeId);
    if (cur === undefined) {
      if (this.members.size >= this.config.membersMax) return;
      const m: Member = { nodeId: u.nodeId, status: u.status, incarnation: u.incarnation, meta: u.meta, suspectSinceMs: nowMs };
      this.members.set(u.nodeId, m);
      this.changed(m, undefined);
      return;
    }
    const newer = u.incarnation > cur.incarnation ||
      (u.incarnation === cur.incarnation && statusRank[u.status] > statusRank[cur.status]);
    if (!newer) {
      if (cur.meta === undefined && u.meta !== undefined && u.incarnation === cur.incarnation) cur.meta = u.meta;
      return;
    }
    const previous = cur.status;
    assert(u.incarnation >= cur.incarnation, 'a member\'s incarnation never goes back');
    cur.incarnation = u.incarnation;
    cur.status = u.status;
    if (u.meta !== undefined) cur.meta = u.meta;
    if (u.status === 'suspect' && previous !== 'suspect') cur.suspectSinceMs = nowMs;
    this.changed(cur, previous);
  }

  private changed(m: Member, previous: MemberStatus | undefined): void {
    this.broadcasts.set(m.nodeId, {
      update: { nodeId: m.nodeId, status: m.status, incarnation: m.incarnation, meta: m.status === 'alive' ? m.meta : undefined },
      transmits: 0,
    });
    if (previous !== m.status) {
      this.changes.push({ nodeId: m.nodeId, status: m.status, incarnation: m.incarnation, meta: m.meta, previous });
    }
  }

  private queueSelf(): void {
    this.broadcasts.set(this.self, {
      update: { nodeId: this.self, status: 'alive', incarnation: this.incarnation, meta: this.meta },
      transmits: 0,
    });
  }

  private fullState(): MemberUpdate[] {
    return this.view().map((v) => ({ ...v, meta: v.status === 'alive' ? v.meta : undefined }));
  }

  // ---- messages ----

  /** Builds a message and piggybacks the least-sent pending updates on it. */
  private message(to: NodeId, kind: GossipKind, seq: number, target?: NodeId, extra: MemberUpdate[] = []): Outgoing {
    const updates = [...extra];
    const budget = this.config.retransmitMult * Math.ceil(Math.log2(this.members.size + 2));
    const pending = [...this.broadcasts.values()].sort((a, b) => a.transmits - b.transmits);
    const included = new Set(extra.map((u) => u.nodeId));
    for (const b of pending) {
      if (updates.length >= this.config.updatesPerMessageMax + extra.length) break;
      if (included.has(b.update.nodeId)) continue;
      if (b.update.nodeId === to && b.update.status === 'alive' && b.update.nodeId !== this.self) continue;
      updates.push(b.update);
      b.transmits++;
      if (b.transmits >= budget) this.broadcasts.delete(b.update.nodeId);
    }
    assert(updates.length <= this.config.updatesPerMessageMax + extra.length, 'piggyback bounded');
    assert(to !== this.self, 'never a message to itself');
    return { to, message: { kind, seq, from: this.self, fromIncarnation: this.incarnation, target, updates } };
  }

  private nextSeq(): number {
    this.seq = this.seq >= 0x7fffffff ? 1 : this.seq + 1;
    return this.seq;
  }

  private shuffled<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t;
    }
    return items;
  }
}
