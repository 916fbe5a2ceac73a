// Round-trip time to each peer over the cluster stream: every few seconds a ping rpc to every peer
// whose stream is up, on the lane forwarded queue calls use, so the time includes whatever waits
// in front of it there. Read by /metrics (espresso_peer_rtt_seconds) and ctl top.

import type { ClusterRpc } from '../cluster/rpc.js';
import type { NodeId } from '../lib/ids.js';
import type { Transport } from '../transport/index.js';

export const peerPingMethod = 'observe.ping';
const pingTimeoutMs = 2_000;
const empty = new Uint8Array(0);

export class PeerProbe {
  private readonly rtt = new Map<string, number>();
  private readonly timer: ReturnType<typeof setInterval>;
  private inFlight = false;

  constructor(private readonly rpc: ClusterRpc, private readonly transport: Transport, everyMs = 5_000) {
    rpc.handle(peerPingMethod, () => empty);
    this.timer = setInterval(() => void this.probe(), everyMs);
    this.timer.unref();
  }

  /** Last measured RTT (ms) per peer; a peer whose stream is down or whose ping failed is left out. */
  rttMs(): ReadonlyMap<string, number> {
    return this.rtt;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Pings every peer that is up now (one round at a time). */
  async probe(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      const peers = [...this.transport.stats()].filter(([id, s]) => s.up && !id.startsWith('ctl-')).map(([id]) => id);
      for (const id of [...this.rtt.keys()]) if (!peers.includes(id as NodeId)) this.rtt.delete(id);
      await Promise.all(peers.map(async (peer) => {
        const startedMs = performance.now();
        try {
          await this.rpc.call(peer, peerPingMethod, empty, pingTimeoutMs);
          this.rtt.set(peer, performance.now() - startedMs);
        } catch {
          this.rtt.delete(peer);
        }
      }));
    } finally {
      this.inFlight = false;
    }
  }
}
