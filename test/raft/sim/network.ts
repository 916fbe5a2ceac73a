// The simulated network: per-message delay (so reordering), drops, duplicates, and partitions
// (symmetric and one-way) as a set of blocked directed links. All choices come from one stream.

import type { NodeId } from '../../../src/lib/ids.js';
import type { SeededRandom } from '../../../src/lib/random.js';
import type { Message } from '../../../src/raft/index.js';

export interface NetworkFaults {
  dropP: number;
  dupP: number;
  maxDelayTicks: number;
}

export class Network {
  private readonly queue = new Map<number, Message[]>();
  private readonly blocked = new Set<string>();
  /** Nodes cut off from every other node, apart from the partitions in `blocked`. */
  private readonly isolated = new Set<NodeId>();
  sent = 0;
  delivered = 0;

  constructor(private readonly rng: SeededRandom, public faults: NetworkFaults) {}

  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    if (this.isolated.size > 0 && (this.isolated.has(from) || this.isolated.has(to))) return true;
    return this.blocked.size > 0 && this.blocked.has(`${from}>${to}`);
  }

  /** Cuts `node` off from everyone until `rejoin` (partitions come and go independently). */
  isolate(node: NodeId): void {
    this.isolated.add(node);
  }

  rejoin(node: NodeId): void {
    this.isolated.delete(node);
  }

  /** Partitions only; isolated nodes stay isolated. */
  healPartitions(): void {
    this.blocked.clear();
  }

  heal(): void {
    this.blocked.clear();
    this.isolated.clear();
  }

  send(now: number, m: Message): void {
    this.sent++;
    if (this.isBlocked(m.from, m.to)) return;
    if (this.faults.dropP > 0 && this.rng.chance(this.faults.dropP)) return;
    const copies = this.faults.dupP > 0 && this.rng.chance(this.faults.dupP) ? 2 : 1;
    for (let k = 0; k < copies; k++) {
      const at = now + 1 + this.rng.int(this.faults.maxDelayTicks);
      let slot = this.queue.get(at);
      if (slot === undefined) this.queue.set(at, (slot = []));
      slot.push(m);
    }
  }

  /** Messages due at `now`, minus those whose link got blocked while in flight. */
  due(now: number): Message[] {
    const slot = this.queue.get(now);
    if (slot === undefined) return [];
    this.queue.delete(now);
    const out = slot.filter((m) => !this.isBlocked(m.from, m.to));
    this.delivered += out.length;
    return out;
  }
}
