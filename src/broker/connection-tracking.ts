// What the node's connection limits count: open connections per vhost and per user, open channels
// per user, and connections opened in the current second (--max-connection-rate). Counts are this
// node's: RabbitMQ counts vhost and user limits across the cluster (see SECURITY.md).

export class ConnectionTracking {
  private readonly byVhost = new Map<string, number>();
  private readonly byUser = new Map<string, number>();
  private readonly channelsByUser = new Map<string, number>();
  private rateSecond = -1;
  private rateCount = 0;

  private static add(map: Map<string, number>, key: string, delta: number): void {
    const n = (map.get(key) ?? 0) + delta;
    if (n <= 0) map.delete(key);
    else map.set(key, n);
  }

  connectionsIn(vhost: string): number {
    return this.byVhost.get(vhost) ?? 0;
  }

  connectionsOf(user: string): number {
    return this.byUser.get(user) ?? 0;
  }

  channelsOf(user: string): number {
    return this.channelsByUser.get(user) ?? 0;
  }

  connectionOpened(vhost: string, user: string): void {
    ConnectionTracking.add(this.byVhost, vhost, 1);
    ConnectionTracking.add(this.byUser, user, 1);
  }

  connectionClosed(vhost: string, user: string): void {
    ConnectionTracking.add(this.byVhost, vhost, -1);
    ConnectionTracking.add(this.byUser, user, -1);
  }

  channelOpened(user: string): void {
    ConnectionTracking.add(this.channelsByUser, user, 1);
  }

  channelClosed(user: string): void {
    ConnectionTracking.add(this.channelsByUser, user, -1);
  }

  /**
   * Counts one connection.open at nowMs against `perSecond` (0 = no limit): false when this
   * second already had that many.
   */
  admitOpen(nowMs: number, perSecond: number): boolean {
    const second = Math.floor(nowMs / 1000);
    if (second !== this.rateSecond) {
      this.rateSecond = second;
      this.rateCount = 0;
    }
    if (perSecond > 0 && this.rateCount >= perSecond) return false;
    this.rateCount++;
    return true;
  }
}
