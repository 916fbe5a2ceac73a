// Seeded simulation of the SWIM core: virtual time, a network with delays, drops, partitions,
// killed and paused nodes. No sleeping: time is a number. A failing case prints its seed.
import { describe, expect, it } from 'vitest';
import { nodeId, type NodeId } from '../../src/lib/ids.js';
import { SeededRandom } from '../../src/lib/random.js';
import { defaultSwimConfig, type SwimConfig } from '../../src/membership/limits.js';
import { Swim, type GossipMessage, type MemberMeta, type MemberStatus } from '../../src/membership/swim.js';

interface InFlight { at: number; to: NodeId; msg: GossipMessage }

const meta = (id: string): MemberMeta => ({
  amqpAddress: `127.0.0.1:${5672}`, clusterAddress: `127.0.0.1:${id}`, load: 0, version: '0.1.0', leaders: {},
});

class Sim {
  nowMs = 0;
  readonly nodes = new Map<NodeId, Swim>();
  readonly killed = new Set<NodeId>();
  readonly paused = new Set<NodeId>();
  private readonly cut = new Set<string>();
  private inFlight: InFlight[] = [];
  readonly rng: SeededRandom;
  readonly trace: string[] = [];

  constructor(readonly seed: number, ids: string[], readonly dropRate: number, config: SwimConfig = defaultSwimConfig) {
    this.rng = new SeededRandom(seed);
    for (const id of ids) this.nodes.set(nodeId(id), new Swim(nodeId(id), meta(id), config, this.rng.fork(), 0));
    const [first, ...rest] = [...this.nodes.values()];
    for (const n of rest) this.send(n.self, n.join([first!.self]));
  }

  private send(from: NodeId, out: Array<{ to: NodeId; message: GossipMessage }>): void {
    for (const o of out) {
      if (this.killed.has(from)) continue;
      if (this.cut.has(`${from}|${o.to}`) || this.rng.chance(this.dropRate)) continue;
      this.inFlight.push({ at: this.nowMs + 1 + this.rng.int(15), to: o.to, msg: o.message });
    }
  }

  partition(a: string[], b: string[]): void {
    for (const x of a) for (const y of b) { this.cut.add(`${x}|${y}`); this.cut.add(`${y}|${x}`); }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Advances virtual time in 5 ms steps; paused nodes keep their inbound backlog for later. */
  run(ms: number, until?: () => boolean): number {
    const end = this.nowMs + ms;
    while (this.nowMs < end) {
      this.nowMs += 5;
      const due = this.inFlight.filter((f) => f.at <= this.nowMs && !this.paused.has(f.to));
      this.inFlight = this.inFlight.filter((f) => !(f.at <= this.nowMs && !this.paused.has(f.to)));
      for (const f of due) {
        const n = this.nodes.get(f.to);
        if (n === undefined || this.killed.has(f.to)) continue;
        this.send(f.to, n.receive(f.msg, this.nowMs));
      }
      for (const n of this.nodes.values()) {
        if (this.killed.has(n.self) || this.paused.has(n.self)) continue;
        this.send(n.self, n.tick(this.nowMs));
        for (const c of n.takeChanges()) this.trace.push(`${this.nowMs} ${n.self}: ${c.nodeId} ${c.previous ?? 'new'}->${c.status}@${c.incarnation}`);
      }
      if (until?.() === true) return this.nowMs;
    }
    return this.nowMs;
  }

  /** The status of `target` at every live node other than itself. */
  statusEverywhere(target: string, except: string[] = []): Array<MemberStatus | undefined> {
    const out: Array<MemberStatus | undefined> = [];
    for (const n of this.nodes.values()) {
      if (n.self === target || this.killed.has(n.self) || this.paused.has(n.self) || except.includes(n.self)) continue;
      out.push(n.statusOf(nodeId(target)));
    }
    return out;
  }

  allSee(target: string, status: MemberStatus, except: string[] = []): boolean {
    return this.statusEverywhere(target, except).every((s) => s === status);
  }
}

const five = ['n1', 'n2', 'n3', 'n4', 'n5'];
const seeds = Array.from({ length: 12 }, (_, i) => 1000 + i);
// A killed member is probed by someone within about one round of probes (members - 1 periods),
// gossip then spreads the suspicion, and it is dead after suspicionTimeoutMs.
const c = defaultSwimConfig;
const detectBoundMs = (five.length + 1) * c.probeIntervalMs + c.suspicionTimeoutMs + 1_000;

function converged(sim: Sim): boolean {
  return five.every((t) => sim.allSee(t, 'alive'));
}

describe('SWIM core in a seeded simulation', () => {
  it('five nodes joining through one seed all see each other alive, and stay so under 5% loss', () => {
    for (const seed of seeds) {
      const sim = new Sim(seed, five, 0.05);
      sim.run(5_000, () => converged(sim));
      expect(converged(sim), `seed ${seed}`).toBe(true);
      sim.run(30_000);
      expect(sim.trace.filter((t) => t.endsWith('dead') || t.includes('->dead')), `seed ${seed}`).toEqual([]);
      expect(converged(sim), `seed ${seed}`).toBe(true);
    }
  });

  it('a killed node is marked dead at every other node within the bound', () => {
    let worst = 0;
    for (const seed of seeds) {
      const sim = new Sim(seed, five, 0.02);
      sim.run(5_000, () => converged(sim));
      sim.killed.add(nodeId('n3'));
      const killedAt = sim.nowMs;
      sim.run(detectBoundMs, () => sim.allSee('n3', 'dead'));
      expect(sim.allSee('n3', 'dead'), `seed ${seed}: ${sim.statusEverywhere('n3').join(',')}`).toBe(true);
      worst = Math.max(worst, sim.nowMs - killedAt);
      for (const other of five.filter((x) => x !== 'n3')) expect(sim.allSee(other, 'alive'), `seed ${seed}`).toBe(true);
    }
    expect(worst).toBeLessThanOrEqual(detectBoundMs);
    process.stdout.write(`[swim-sim] killed node dead everywhere: worst ${worst} ms over ${seeds.length} seeds (bound ${detectBoundMs} ms)\n`);
  });

  it('a paused node is suspected, then dead, and after resuming refutes with a higher incarnation', () => {
    for (const seed of seeds) {
      const sim = new Sim(seed, five, 0.02);
      sim.run(5_000, () => converged(sim));
      const before = sim.nodes.get(nodeId('n4'))!.selfIncarnation;
      sim.paused.add(nodeId('n4'));
      sim.run(detectBoundMs, () => sim.allSee('n4', 'dead'));
      expect(sim.trace.some((t) => t.includes('n4 alive->suspect')), `seed ${seed}`).toBe(true);
      expect(sim.allSee('n4', 'dead'), `seed ${seed}`).toBe(true);
      sim.paused.delete(nodeId('n4'));
      const resumedAt = sim.trace.length;
      sim.run(10_000, () => converged(sim));
      // Having slept, n4 accuses nobody: its missed acks were its own fault.
      expect(sim.trace.slice(resumedAt).filter((t) => / n4: .*->(suspect|dead)/.test(t)), `seed ${seed}`).toEqual([]);
      expect(converged(sim), `seed ${seed}: ${sim.statusEverywhere('n4').join(',')}`).toBe(true);
      expect(sim.nodes.get(nodeId('n4'))!.selfIncarnation).toBeGreaterThan(before);
      const views = [...sim.nodes.values()].map((n) => n.view().find((v) => v.nodeId === 'n4')!.incarnation);
      expect(new Set(views).size, `seed ${seed}`).toBe(1);
    }
  });

  it('both sides of a healed partition see everyone alive again', () => {
    for (const seed of seeds.slice(0, 6)) {
      const sim = new Sim(seed, five, 0.02);
      sim.run(5_000, () => converged(sim));
      sim.partition(['n1', 'n2'], ['n3', 'n4', 'n5']);
      sim.run(10_000);
      expect(sim.nodes.get(nodeId('n1'))!.statusOf(nodeId('n4'))).toBe('dead');
      expect(sim.nodes.get(nodeId('n5'))!.statusOf(nodeId('n2'))).toBe('dead');
      sim.heal();
      sim.run(20_000, () => converged(sim));
      expect(converged(sim), `seed ${seed}`).toBe(true);
    }
  });

  it('one broken link does not get a node suspected: indirect probes go around it', () => {
    for (const seed of seeds.slice(0, 6)) {
      const sim = new Sim(seed, five, 0);
      sim.run(5_000, () => converged(sim));
      sim.partition(['n1'], ['n3']);
      const mark = sim.trace.length;
      sim.run(30_000);
      const after = sim.trace.slice(mark);
      expect(after.filter((t) => t.includes('->suspect') || t.includes('->dead')), `seed ${seed}`).toEqual([]);
      expect(converged(sim), `seed ${seed}`).toBe(true);
    }
  });

  it('refutes a false suspicion about itself with a higher incarnation', () => {
    const a = new Swim(nodeId('a'), meta('a'), c, new SeededRandom(1), 0);
    const before = a.selfIncarnation;
    const out = a.receive({
      kind: 'ping', seq: 9, from: nodeId('b'), fromIncarnation: 0, target: undefined,
      updates: [{ nodeId: nodeId('a'), status: 'suspect', incarnation: before, meta: undefined }],
    }, 10);
    expect(a.selfIncarnation).toBe(before + 1);
    const ack = out.find((o) => o.message.kind === 'ack' && o.message.seq === 9)!;
    expect(ack.message.updates).toContainEqual(expect.objectContaining({ nodeId: 'a', status: 'alive', incarnation: before + 1 }));
    // A stale suspicion (older incarnation) changes nothing.
    a.receive({ kind: 'ping', seq: 10, from: nodeId('b'), fromIncarnation: 0, target: undefined,
      updates: [{ nodeId: nodeId('a'), status: 'dead', incarnation: before, meta: undefined }] }, 20);
    expect(a.selfIncarnation).toBe(before + 1);
  });

  it('spreads a node\'s new metadata (load, group leaders) to every member', () => {
    const sim = new Sim(7, five, 0.05);
    sim.run(5_000, () => converged(sim));
    sim.nodes.get(nodeId('n2'))!.setMeta({ ...meta('n2'), load: 42, leaders: { 'q.orders': 'n2', metadata: 'n1' } });
    const seen = (): boolean => [...sim.nodes.values()].every((n) => n.view().find((v) => v.nodeId === 'n2')?.meta?.load === 42);
    sim.run(5_000, seen);
    expect(seen()).toBe(true);
    expect(sim.nodes.get(nodeId('n5'))!.view().find((v) => v.nodeId === 'n2')!.meta!.leaders).toEqual({ 'q.orders': 'n2', metadata: 'n1' });
  });

  it('replays exactly for a seed', () => {
    const run = (): string[] => {
      const sim = new Sim(99, five, 0.1);
      sim.run(3_000);
      sim.killed.add(nodeId('n1'));
      sim.run(8_000);
      return sim.trace;
    };
    const first = run();
    expect(first.length).toBeGreaterThan(5);
    expect(run()).toEqual(first);
  });
});
