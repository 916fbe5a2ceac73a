// Publisher confirms of one channel: sequence numbers from 1 after confirm.select, one outcome per
// seqno, coalesced into `multiple` acks up to the lowest still-outstanding seqno at flush time.
// Each seqno remembers when its publish arrived, so a flush records every confirm's latency.

import { assert } from '../lib/assert.js';
import type { BrokerCounters } from './counters.js';
import { limits } from './limits.js';

export interface ConfirmFrame {
  readonly kind: 'ack' | 'nack';
  readonly deliveryTag: number;
  readonly multiple: boolean;
}

/** What a flush reports to: confirm counts and the publish-to-ack latency histogram. */
export type ConfirmCounters = Pick<BrokerCounters, 'messagesConfirmed' | 'messagesNacked' | 'confirmSeconds'>;

export class ConfirmTracker {
  private nextSeq = 1;
  /** Unresolved seqnos in publish order (Map keeps insertion order, deletes keep it). */
  private readonly pending = new Map<number, { remaining: number; rejected: boolean; receivedMs: number }>();
  private resolvedAcks: number[] = [];
  private resolvedNacks: number[] = [];
  /** When each resolved ack's publish arrived, in resolvedAcks order. */
  private resolvedAckReceivedMs: number[] = [];

  constructor(private readonly counters: ConfirmCounters | null = null) {}

  get outstanding(): number {
    return this.pending.size;
  }

  /** Registers the next publish (arrived at `receivedMs`), waiting for `targets` queue outcomes; returns its seqno. */
  publish(targets: number, receivedMs = 0): number {
    assert(targets >= 0);
    assert(this.pending.size < limits.unconfirmedPerChannelMax, 'too many unconfirmed publishes');
    const seq = this.nextSeq++;
    if (targets === 0) {
      this.resolvedAcks.push(seq);
      this.resolvedAckReceivedMs.push(receivedMs);
    } else {
      this.pending.set(seq, { remaining: targets, rejected: false, receivedMs });
    }
    return seq;
  }

  /** One target queue answered for `seq`: accepted (ok) or refused by overflow. */
  settle(seq: number, ok: boolean): void {
    const entry = this.pending.get(seq);
    if (entry === undefined) return; // channel closed or seq already failed
    if (!ok) entry.rejected = true;
    entry.remaining--;
    if (entry.remaining > 0) return;
    this.pending.delete(seq);
    if (entry.rejected) return void this.resolvedNacks.push(seq);
    this.resolvedAcks.push(seq);
    this.resolvedAckReceivedMs.push(entry.receivedMs);
  }

  /** Frames to send now (at `nowMs`): nacks one by one, then acks coalesced below the lowest outstanding. */
  flush(nowMs = 0): ConfirmFrame[] {
    if (this.resolvedAcks.length === 0 && this.resolvedNacks.length === 0) return [];
    this.count(nowMs);
    const out: ConfirmFrame[] = [];
    const nacks = this.resolvedNacks.sort((a, b) => a - b);
    for (const seq of nacks) out.push({ kind: 'nack', deliveryTag: seq, multiple: false });
    const acks = this.resolvedAcks.sort((a, b) => a - b);
    let lowestPending = Number.POSITIVE_INFINITY;
    for (const seq of this.pending.keys()) {
      lowestPending = seq;
      break;
    }
    // Every seqno below lowestPending is resolved; nacks among them were sent first, so one
    // multiple ack at the highest covers the rest (clients skip already-confirmed tags).
    let i = 0;
    while (i < acks.length && acks[i]! < lowestPending) i++;
    if (i === 1) out.push({ kind: 'ack', deliveryTag: acks[0]!, multiple: false });
    else if (i > 1) out.push({ kind: 'ack', deliveryTag: acks[i - 1]!, multiple: true });
    for (let j = i; j < acks.length; j++) out.push({ kind: 'ack', deliveryTag: acks[j]!, multiple: false });
    this.resolvedAcks = [];
    this.resolvedNacks = [];
    this.resolvedAckReceivedMs.length = 0;
    return out;
  }

  private count(nowMs: number): void {
    const c = this.counters;
    if (c === null) return;
    c.messagesConfirmed += this.resolvedAcks.length;
    c.messagesNacked += this.resolvedNacks.length;
    for (const at of this.resolvedAckReceivedMs) c.confirmSeconds.record(Math.max(0, nowMs - at) / 1000);
  }
}
