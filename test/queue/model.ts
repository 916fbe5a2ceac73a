// A simple model of a FIFO queue with at-least-once delivery, and a driver that runs an
// operation script through the real state machine while the model checks every effect:
// each message has at most one holder, nothing is lost, acked messages never come back, a
// consumer never exceeds its prefetch, and first deliveries respect priority and FIFO order.
import { expect } from 'vitest';
import { counters, liveMsgIds, recount, type Command, type Effect, type QueueConfig } from '../../src/queue/index.js';
import { channels, connectionOf, type Op } from './gen.js';
import { Harness, owner } from './harness.js';

interface ModelConsumer {
  readonly channel: string;
  readonly prefetch: number;
  readonly noAck: boolean;
  readonly granted: boolean;
  live: boolean;
}

/** Who holds a message: a consumer key, or the basic.get of a channel (key null). */
interface Held {
  readonly key: number | null;
  readonly channel: string;
  readonly atMs: number;
}

export class QueueModel {
  readonly h: Harness;
  readonly ready = new Set<number>();
  readonly held = new Map<number, Held>();
  readonly acked = new Set<number>();
  readonly delivered = new Set<number>();
  readonly level = new Map<number, number>();
  readonly consumers = new Map<number, ModelConsumer>();
  /** Ids this command must remove (acked or discarded); each must show up as dropped/dead-lettered. */
  private leaving = new Set<number>();
  private noAckInFlight = new Set<number>();
  deliveredCount = 0;

  constructor(readonly config: QueueConfig) {
    this.h = new Harness(config);
  }

  step(op: Op): void {
    const command = this.toCommand(op);
    if (command === null) return;
    if (op.t === 'tick') this.h.timeMs += op.advanceMs;
    this.expectBefore(command);
    const effects = this.h.run(command);
    this.check(command, effects);
  }

  /**
   * Ends every channel, then one fresh unlimited consumer must receive every message left and
   * its acks must empty the queue (nothing stuck, nothing lost).
   */
  drain(): void {
    for (let ch = 0; ch < channels.length; ch++) this.step({ t: 'down', scope: 'channel', ch });
    this.step({ t: 'register', ch: 0, prefetch: 0, priority: 0, noAck: false, granted: false });
    const held = [...this.held.keys()];
    if (held.length > 0) this.step({ t: 'settle', ch: 0, picks: held.map((_, i) => i), bogus: false });
  }

  private liveKeys(): number[] {
    return [...this.consumers].filter(([, c]) => c.live).map(([k]) => k);
  }

  private toCommand(op: Op): Command | null {
    const channel = (ch: number): string => channels[ch] ?? 'ch0';
    switch (op.t) {
      case 'enqueue': return { type: 'enqueue', sizeBytes: 10 + op.priority, priority: op.priority, ttlMs: op.ttlMs };
      case 'register':
        return {
          type: 'register', owner: owner(channel(op.ch), connectionOf(op.ch)), tag: `t${this.h.index + 1}`,
          creditMode: op.granted ? 'granted' : 'auto', prefetch: op.prefetch, priority: op.priority, noAck: op.noAck,
        };
      case 'cancel':
      case 'credit': {
        const keys = this.liveKeys();
        const key = keys[op.pick % Math.max(1, keys.length)];
        if (key === undefined) return null;
        return op.t === 'cancel' ? { type: 'cancel', consumerKey: key } : { type: 'credit', consumerKey: key, credit: op.n, mode: 'add' };
      }
      case 'settle':
      case 'return':
      case 'discard': {
        const mine = [...this.held].filter(([, h]) => h.channel === channel(op.ch)).map(([id]) => id).sort((a, b) => a - b);
        const ids = [...new Set(op.picks.map((p) => mine[p % Math.max(1, mine.length)]).filter((x): x is number => x !== undefined))];
        // A bogus id: held by someone else or already acked; the machine must ignore it.
        const other = [...this.held.keys(), ...this.acked][0];
        if (op.bogus && other !== undefined && !ids.includes(other)) ids.push(other);
        if (ids.length === 0) return null;
        return { type: op.t, channel: channel(op.ch), msgIds: ids };
      }
      case 'down': return { type: 'down', scope: op.scope, id: op.scope === 'channel' ? channel(op.ch) : connectionOf(op.ch) };
      case 'purge': return { type: 'purge' };
      case 'get': return { type: 'get', owner: owner(channel(op.ch), connectionOf(op.ch)), noAck: op.noAck };
      case 'tick': return { type: 'tick' };
    }
  }

  /** What the command must do to messages the model already knows about. */
  private expectBefore(command: Command): void {
    this.leaving = new Set();
    this.noAckInFlight = new Set();
    const back = (id: number): void => {
      this.held.delete(id);
      this.ready.add(id);
    };
    if (command.type === 'settle' || command.type === 'discard' || command.type === 'return') {
      for (const id of command.msgIds) {
        if (this.held.get(id)?.channel !== command.channel) continue;
        if (command.type === 'return') back(id);
        else {
          this.held.delete(id);
          this.leaving.add(id);
          if (command.type === 'settle') this.acked.add(id);
        }
      }
    }
    if (command.type === 'down') {
      const match = (ch: string): boolean => (command.scope === 'channel' ? ch === command.id : connectionOf(channels.indexOf(ch)) === command.id);
      for (const [id, h] of [...this.held]) if (match(h.channel)) back(id);
      for (const c of this.consumers.values()) if (match(c.channel)) c.live = false;
    }
    if (command.type === 'register') {
      // Its key is the index the command is about to get; deliveries may follow at once.
      const c = { channel: command.owner.channel, prefetch: command.prefetch, noAck: command.noAck, granted: command.creditMode === 'granted', live: true };
      this.consumers.set(this.h.index + 1, c);
    }
    if (command.type === 'cancel') {
      const c = this.consumers.get(command.consumerKey);
      if (c !== undefined) c.live = false;
    }
    if (command.type === 'tick' && this.config.consumerTimeoutMs !== null) this.timeOut(this.config.consumerTimeoutMs, back);
  }

  /** Holders whose oldest message is older than the timeout lose all their messages. */
  private timeOut(timeoutMs: number, back: (id: number) => void): void {
    const oldest = new Map<string, number>();
    const holderId = (h: Held): string => (h.key === null ? `get:${h.channel}` : `c:${h.key}`);
    for (const h of this.held.values()) oldest.set(holderId(h), Math.min(oldest.get(holderId(h)) ?? Infinity, h.atMs));
    for (const [id, h] of [...this.held]) {
      if (this.h.timeMs > (oldest.get(holderId(h)) ?? Infinity) + timeoutMs) {
        back(id);
        if (h.key !== null) {
          const c = this.consumers.get(h.key);
          if (c !== undefined) c.live = false;
        }
      }
    }
  }

  private levelOf(priority: number): number {
    return Math.min(priority, this.config.maxPriority);
  }

  private check(command: Command, effects: Effect[]): void {
    const firsts: Array<{ id: number; level: number }> = [];
    let sawFirst = false;
    for (const e of effects) {
      switch (e.type) {
        case 'enqueueResult':
          expect(command.type).toBe('enqueue');
          if (e.outcome === 'accepted') {
            this.ready.add(e.msgId);
            this.level.set(e.msgId, command.type === 'enqueue' ? this.levelOf(command.priority) : 0);
          } else if (this.config.overflow === 'reject-publish-dlx' && this.config.deadLetter) {
            this.leaving.add(e.msgId); // refused and dead-lettered
          }
          break;
        case 'deliver': {
          const c = this.consumers.get(e.consumerKey);
          expect(c?.live, `delivery to live consumer ${e.consumerKey}`).toBe(true);
          const first = this.take(e.msgId, e.redelivered, c?.noAck === true, { key: e.consumerKey, channel: c?.channel ?? '' });
          if (first) firsts.push({ id: e.msgId, level: this.level.get(e.msgId) ?? 0 });
          else expect(sawFirst, 'returned messages are served before new ones').toBe(false);
          sawFirst ||= first;
          break;
        }
        case 'getResult':
          expect(command.type).toBe('get');
          if (command.type === 'get') this.take(e.msgId, e.redelivered, command.noAck, { key: null, channel: command.owner.channel });
          break;
        case 'dropped':
        case 'deadLetter':
          for (const id of e.msgIds) this.remove(id);
          break;
        case 'consumerCancelled': {
          const c = this.consumers.get(e.consumerKey);
          if (c !== undefined) c.live = false;
          break;
        }
        default:
          break;
      }
    }
    this.checkAfter(firsts);
  }

  /** A message handed out: it must be ready (so nobody holds it, and it was never acked). */
  private take(id: number, redelivered: boolean, noAck: boolean, holder: { key: number | null; channel: string }): boolean {
    expect(this.ready.has(id), `message ${id} is ready when handed out`).toBe(true);
    expect(this.acked.has(id)).toBe(false);
    expect(redelivered).toBe(this.delivered.has(id));
    const first = !this.delivered.has(id);
    this.delivered.add(id);
    this.deliveredCount++;
    this.ready.delete(id);
    if (noAck) this.noAckInFlight.add(id);
    else this.held.set(id, { ...holder, atMs: this.h.timeMs });
    return first;
  }

  /** A message leaves: it must be live, or one this command was expected to remove. */
  private remove(id: number): void {
    const known = this.ready.has(id) || this.leaving.has(id) || this.noAckInFlight.has(id);
    expect(known, `message ${id} removed is known to the model`).toBe(true);
    expect(this.held.has(id), `held message ${id} is not removed by another command`).toBe(false);
    this.ready.delete(id);
    this.leaving.delete(id);
    this.noAckInFlight.delete(id);
  }

  private checkAfter(firsts: Array<{ id: number; level: number }>): void {
    expect([...this.leaving], 'acked/discarded/rejected messages left the queue').toEqual([]);
    expect([...this.noAckInFlight], 'no-ack deliveries are released').toEqual([]);
    const live = [...this.ready, ...this.held.keys()].sort((a, b) => a - b);
    expect(liveMsgIds(this.h.state)).toEqual(live);
    expect(counters(this.h.state)).toEqual(recount(this.h.state));
    expect(counters(this.h.state).ready).toBe(this.ready.size);
    expect(counters(this.h.state).unacked).toBe(this.held.size);
    expect(counters(this.h.state).consumers).toBe(this.liveKeys().length);
    for (const [key, c] of this.consumers) {
      if (c.granted || c.noAck || c.prefetch === 0) continue;
      const n = [...this.held.values()].filter((h) => h.key === key).length;
      expect(n, 'a consumer holds at most its prefetch').toBeLessThanOrEqual(c.prefetch);
    }
    this.checkOrder(firsts);
  }

  /**
   * First deliveries go highest level first and FIFO within a level: after the command, no
   * never-delivered message that should have gone before one delivered is still ready, and
   * a first delivery means no returned message was left waiting.
   */
  private checkOrder(firsts: Array<{ id: number; level: number }>): void {
    for (let i = 1; i < firsts.length; i++) {
      const [a, b] = [firsts[i - 1]!, firsts[i]!];
      expect(a.level > b.level || (a.level === b.level && a.id < b.id), `first deliveries ${a.id} then ${b.id} in order`).toBe(true);
    }
    if (firsts.length === 0) return;
    for (const x of this.ready) {
      expect(this.delivered.has(x), `returned message ${x} waits while new ones are delivered`).toBe(false);
      const lx = this.level.get(x) ?? 0;
      for (const f of firsts) expect(lx > f.level || (lx === f.level && x < f.id), `message ${x} skipped by ${f.id}`).toBe(false);
    }
  }
}
