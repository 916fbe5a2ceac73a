// The edge of membership: runs the SWIM core over the transport's gossip lane with a real timer,
// connects the transport to members as they are learned, and reports member changes.

import { assert } from '../lib/assert.js';
import { nodeId, type NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import { SeededRandom } from '../lib/random.js';
import { Lane, ProtoDecodeError, type Transport } from '../transport/index.js';
import { decodeGossip, encodeGossip } from './gossip-codec.js';
import { defaultSwimConfig, type SwimConfig } from './limits.js';
import { Swim, type MemberChange, type MemberMeta, type MemberView, type Outgoing } from './swim.js';

export interface Seed {
  nodeId: NodeId;
  /** host:port of the seed's cluster transport. */
  clusterAddress: string;
}

export interface GossipServiceOptions {
  transport: Transport;
  meta: MemberMeta;
  seeds: readonly Seed[];
  logger: Logger;
  config?: Partial<SwimConfig>;
  /** How often the core is ticked; well below probeTimeoutMs. */
  tickMs?: number;
  /** Seed of the core's random choices (default: from the clock). */
  randomSeed?: number;
}

export type MemberChangeHandler = (change: MemberChange) => void;

export class GossipService {
  private readonly swim: Swim;
  private readonly transport: Transport;
  private readonly logger: Logger;
  private readonly handlers: MemberChangeHandler[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly addresses = new Map<NodeId, string>();
  /** Seeds are dialed at the address configured for them, never at one learned from gossip. */
  private readonly pinned = new Set<NodeId>();

  constructor(options: GossipServiceOptions) {
    this.transport = options.transport;
    this.logger = options.logger;
    const config = { ...defaultSwimConfig, ...options.config };
    const random = new SeededRandom(options.randomSeed ?? (Date.now() ^ (process.pid << 8)));
    this.swim = new Swim(options.transport.nodeId, options.meta, config, random, Date.now());
    this.transport.onMessage((from, lane, payload) => {
      if (lane === Lane.gossip) this.onGossip(from, payload);
    });
    for (const s of options.seeds) {
      if (s.nodeId === this.transport.nodeId) continue;
      this.addresses.set(s.nodeId, s.clusterAddress);
      this.pinned.add(s.nodeId);
      this.transport.connect(s.nodeId, s.clusterAddress);
    }
    const seeds = options.seeds.map((s) => s.nodeId);
    // Join once a seed's stream is up (sends to a down peer are dropped); the core also
    // retries the seeds every period while it knows no live member.
    this.transport.onPeerState((peer, state) => {
      if (state === 'up' && seeds.includes(peer)) this.send(this.swim.join(seeds));
    });
    const tickMs = options.tickMs ?? Math.max(10, Math.floor(config.probeTimeoutMs / 5));
    this.swim.join(seeds);
    this.timer = setInterval(() => this.tick(), tickMs);
  }

  onChange(handler: MemberChangeHandler): void {
    this.handlers.push(handler);
  }

  /** This node's new metadata (load, leaders): spread with a higher incarnation. */
  setMeta(meta: MemberMeta): void {
    this.swim.setMeta(meta);
  }

  members(): MemberView[] {
    return this.swim.view();
  }

  get incarnation(): number {
    return this.swim.selfIncarnation;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    this.send(this.swim.tick(Date.now()));
    this.publishChanges();
  }

  private onGossip(from: NodeId, payload: Uint8Array): void {
    let msg;
    try {
      msg = decodeGossip(payload);
    } catch (e) {
      if (!(e instanceof ProtoDecodeError)) throw e;
      this.logger.warn('malformed gossip message dropped', { peer: from, error: e.message });
      return;
    }
    if (msg.from !== from) {
      this.logger.warn('gossip message claims another sender; dropped', { peer: from, claimed: msg.from });
      return;
    }
    this.send(this.swim.receive(msg, Date.now()));
    this.publishChanges();
  }

  private send(out: Outgoing[]): void {
    for (const o of out) {
      assert(o.to !== this.transport.nodeId, 'the core never messages itself');
      this.transport.send(o.to, Lane.gossip, encodeGossip(o.message));
    }
  }

  /** Keeps the transport dialing live members at their advertised address; reports changes. */
  private publishChanges(): void {
    for (const c of this.swim.takeChanges()) {
      const address = c.meta?.clusterAddress;
      const learnable = !this.pinned.has(c.nodeId) && this.addresses.get(c.nodeId) !== address;
      if (c.status !== 'dead' && address !== undefined && address !== '' && learnable) {
        this.addresses.set(c.nodeId, address);
        this.transport.connect(c.nodeId, address);
      }
      this.logger.info('member status', { member: c.nodeId, status: c.status, previous: c.previous ?? 'unknown', incarnation: c.incarnation });
      for (const h of this.handlers) h(c);
    }
    this.connectMetaLate();
  }

  // A member first learned without metadata (from its sender id) gets its address later.
  private connectMetaLate(): void {
    for (const m of this.swim.view()) {
      const address = m.meta?.clusterAddress;
      if (m.nodeId === this.transport.nodeId || address === undefined || address === '') continue;
      if (this.addresses.get(m.nodeId) === address || this.pinned.has(nodeId(m.nodeId))) continue;
      this.addresses.set(m.nodeId, address);
      this.transport.connect(nodeId(m.nodeId), address);
    }
  }
}
