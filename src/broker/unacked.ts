// Delivery tags of one channel: numbered from 1 (basic.deliver and basic.get-ok share them), with
// the queue and message id each tag stands for, so ack/nack/reject (single or multiple) find
// what to settle. Tags are kept in increasing order (Map insertion order).

import type { MessageTrace } from '../lib/trace.js';
import type { MsgId, QueueBackend } from './queue-backend.js';

export interface UnackedEntry {
  readonly queue: QueueBackend;
  readonly msgId: MsgId;
  /** Consumer tag, or null for basic.get. */
  readonly consumerTag: string | null;
  /** Counted against the channel-wide (global) prefetch. */
  readonly global: boolean;
  /** A sampled message's stage trace, waiting for its ack and settle. */
  readonly trace: MessageTrace | undefined;
}

export class UnackedTags {
  private nextTag = 1;
  private readonly entries = new Map<number, UnackedEntry>();

  get size(): number {
    return this.entries.size;
  }

  /** Next tag for a delivery; `entry` is null for no-ack deliveries (tag used, nothing held). */
  assign(entry: UnackedEntry | null): number {
    const tag = this.nextTag++;
    if (entry !== null) this.entries.set(tag, entry);
    return tag;
  }

  has(tag: number): boolean {
    return this.entries.has(tag);
  }

  /**
   * Removes and returns the entries named by an ack/nack/reject: one tag, or with `multiple` all
   * tags up to it (tag 0 + multiple = all). Returns null when a single tag is unknown (406).
   */
  take(tag: number, multiple: boolean): UnackedEntry[] | null {
    if (!multiple) {
      const e = this.entries.get(tag);
      if (e === undefined) return null;
      this.entries.delete(tag);
      return [e];
    }
    // As RabbitMQ: with multiple the named tag itself must still be outstanding (0 = everything).
    if (tag !== 0 && !this.entries.has(tag)) return null;
    const out: UnackedEntry[] = [];
    for (const [t, e] of this.entries) {
      if (tag !== 0 && t > tag) break;
      out.push(e);
      this.entries.delete(t);
    }
    return out;
  }

  /** Everything held (basic.recover, channel close). */
  takeAll(): UnackedEntry[] {
    const out = [...this.entries.values()];
    this.entries.clear();
    return out;
  }
}

/** Groups entries by queue, keeping tag order inside each group, for one backend call per queue. */
export function byQueue(entries: readonly UnackedEntry[]): Map<QueueBackend, MsgId[]> {
  const groups = new Map<QueueBackend, MsgId[]>();
  for (const e of entries) {
    const ids = groups.get(e.queue);
    if (ids === undefined) groups.set(e.queue, [e.msgId]);
    else ids.push(e.msgId);
  }
  return groups;
}
