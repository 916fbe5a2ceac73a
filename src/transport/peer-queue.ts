// One peer's bounded send queue and its counters: items wait here until the end of the turn, then
// leave as frames of many items on whichever authenticated stream the peer has.

import { assert } from '../lib/assert.js';
import type { Item, Lane } from './frame.js';
import type { TransportLimits } from './limits.js';

export interface PeerStats {
  bytesSent: number;
  bytesReceived: number;
  itemsSent: number;
  itemsReceived: number;
  framesSent: number;
  framesReceived: number;
  /** Items refused by `send`: peer down, queue full, or lost with a broken stream. */
  itemsDropped: number;
  /** Authenticated streams opened with this peer (both directions) since start. */
  streamsOpened: number;
}

export function emptyStats(): PeerStats {
  return {
    bytesSent: 0, bytesReceived: 0, itemsSent: 0, itemsReceived: 0,
    framesSent: 0, framesReceived: 0, itemsDropped: 0, streamsOpened: 0,
  };
}

export class PeerQueue {
  private items: Item[] = [];
  private head = 0;
  private bytes = 0;
  readonly stats: PeerStats = emptyStats();

  constructor(private readonly limits: TransportLimits) {}

  get length(): number {
    return this.items.length - this.head;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  /** Queues an item; false (and counted as dropped) when the queue is at its bound. */
  push(lane: Lane, payload: Uint8Array): boolean {
    if (this.length >= this.limits.peerQueueItemsMax ||
        this.bytes + payload.length > this.limits.peerQueueBytesMax) {
      this.stats.itemsDropped++;
      return false;
    }
    this.items.push({ lane, payload });
    this.bytes += payload.length;
    return true;
  }

  /** Takes the next frame's worth of items (at least one when not empty). */
  takeFrame(): Item[] {
    const out: Item[] = [];
    let bytes = 0;
    while (this.head < this.items.length && out.length < this.limits.frameItemsMax) {
      const item = this.items[this.head]!;
      if (out.length > 0 && bytes + item.payload.length > this.limits.frameBytesMax) break;
      out.push(item);
      bytes += item.payload.length;
      this.head++;
    }
    this.bytes -= bytes;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    assert(this.bytes >= 0, 'queued bytes never negative');
    return out;
  }

  /** Drops everything queued (the peer went down); counted as dropped. */
  clear(): void {
    this.stats.itemsDropped += this.length;
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }
}
