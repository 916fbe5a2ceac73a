// The bytes of mesh routing between nodes: a queue call forwarded to the leader's node, its answer
// (with the queue's counters, so nodes without a replica can answer queue.declare-ok), deliveries
// and server-side cancels streamed back to the consumer's node, a node's incarnation hello, and
// direct reply-to replies for a requester channel on another node.
//
// Commands travel as replicated-queue log entries (the same codec, header unused), so a forwarded
// call is exactly what the leader would log. Strings are u16 length + UTF-8, numbers f64. A sampled
// message's stage trace (src/lib/trace.ts) rides at the end of a call, its answer and its delivery:
// older decoders stop before it, newer ones read it when bytes are left.

import { ByteReader as In, ByteWriter as Out } from '../lib/bytes.js';
import { readTrace, writeTrace, type MessageTrace } from '../lib/trace.js';
import type { GetResponse, QueueStats, StoredMessage } from '../broker/queue-backend.js';
import { decodeEntry, encodeEntry, type LogCommand } from './replicated-queue-codec.js';

export const meshMethods = {
  call: 'q.call',
  deliver: 'q.deliver',
  cancelled: 'q.cancelled',
  hello: 'q.hello',
  listQueues: 'ctl.list-queues',
} as const;

export interface QueueCall {
  readonly vhost: string;
  readonly queue: string;
  /** The calling node's incarnation (consumers and gets are held under it). */
  readonly incarnation: string;
  readonly command: LogCommand;
  /** A sampled enqueue's trace so far (received, routed, forwarded). */
  readonly trace?: MessageTrace | undefined;
}

export type CallResult =
  | { readonly kind: 'void' }
  | { readonly kind: 'enqueue'; readonly outcome: 'ok' | 'rejected' }
  | { readonly kind: 'get'; readonly response: GetResponse | null }
  | { readonly kind: 'count'; readonly count: number };

export interface CallAnswer {
  readonly result: CallResult;
  readonly stats: QueueStats;
  /** The call's trace with the leader's stamps (proposed ... applied). */
  readonly trace?: MessageTrace | undefined;
}

export interface MeshDelivery {
  readonly vhost: string;
  readonly queue: string;
  /** The consumer's incarnation: a restarted node drops deliveries meant for its previous life. */
  readonly incarnation: string;
  readonly channel: string;
  readonly consumerTag: string;
  readonly msgId: number;
  readonly redelivered: boolean;
  readonly deliveryCount: number;
  readonly message: StoredMessage;
  readonly trace?: MessageTrace | undefined;
}

export interface MeshCancel {
  readonly vhost: string;
  readonly queue: string;
  readonly incarnation: string;
  readonly channel: string;
  readonly consumerTag: string;
  readonly reason: 'timeout' | 'deleted' | 'limit';
}

const reasons = ['timeout', 'deleted', 'limit'] as const;
const noHeader = { timeMs: 0, proposer: 0, seq: 0 };

/** Length-prefixed bytes of a mesh payload: f64 length. */
function writeBytes(o: Out, b: Uint8Array): Out {
  return o.f64(b.length).raw(b);
}

/** A malformed mesh payload from an authenticated peer is a bug on one side: WireError, not a crash. */
export class MeshWireError extends Error {
  override readonly name = 'MeshWireError';
}

const truncatedPayload = (): Error => new MeshWireError('mesh payload truncated');

/** A view into the payload. */
function readBytes(i: In): Uint8Array {
  const n = i.f64();
  if (!Number.isSafeInteger(n) || n < 0) throw new MeshWireError('mesh payload: bad length');
  return i.take(n);
}

function writeMessage(o: Out, m: StoredMessage): void {
  writeBytes(o, encodeEntry({ type: 'enqueue', priority: 0, ttlMs: null, message: m }, noHeader));
}

function readMessage(i: In): StoredMessage {
  const { command } = decodeEntry(readBytes(i));
  if (command.type !== 'enqueue') throw new MeshWireError('mesh payload: expected a message');
  return command.message;
}

/** The optional trace section at the end of a payload. */
function writeTraceSection(o: Out, t: MessageTrace | undefined): Out {
  if (t !== undefined) writeTrace(o, t);
  return o;
}

function readTraceSection(i: In): MessageTrace | undefined {
  return i.remaining > 0 ? readTrace(i) : undefined;
}

export function encodeCall(c: QueueCall): Buffer {
  const cmd = encodeEntry(c.command, noHeader);
  return writeTraceSection(writeBytes(new Out(cmd.length + 64).str(c.vhost).str(c.queue).str(c.incarnation), cmd), c.trace).done();
}

export function decodeCall(data: Uint8Array): QueueCall {
  const i = new In(data, truncatedPayload);
  const vhost = i.str();
  const queue = i.str();
  const incarnation = i.str();
  const command = decodeEntry(readBytes(i)).command;
  const trace = readTraceSection(i);
  return trace === undefined ? { vhost, queue, incarnation, command } : { vhost, queue, incarnation, command, trace };
}

export function encodeAnswer(a: CallAnswer): Buffer {
  const s = a.stats;
  const o = new Out(128).f64(s.messagesReady).f64(s.messagesUnacked).f64(s.bytesReady).f64(s.bytesUnacked).f64(s.consumers);
  const r = a.result;
  switch (r.kind) {
    case 'void': return o.u8(0).done();
    case 'enqueue': return writeTraceSection(o.u8(1).u8(r.outcome === 'ok' ? 1 : 0), a.trace).done();
    case 'count': return o.u8(2).f64(r.count).done();
    case 'get': {
      const g = r.response;
      if (g === null) return o.u8(3).done();
      o.u8(4).f64(g.msgId).u8(g.redelivered ? 1 : 0).f64(g.deliveryCount).f64(g.messageCount);
      writeMessage(o, g.message);
      return o.done();
    }
  }
}

export function decodeAnswer(data: Uint8Array): CallAnswer {
  const i = new In(data, truncatedPayload);
  const stats: QueueStats = { messagesReady: i.f64(), messagesUnacked: i.f64(), bytesReady: i.f64(), bytesUnacked: i.f64(), consumers: i.f64() };
  const kind = i.u8();
  switch (kind) {
    case 0: return { stats, result: { kind: 'void' } };
    case 1: {
      const result = { kind: 'enqueue', outcome: i.u8() === 1 ? 'ok' : 'rejected' } as const;
      const trace = readTraceSection(i);
      return trace === undefined ? { stats, result } : { stats, result, trace };
    }
    case 2: return { stats, result: { kind: 'count', count: i.f64() } };
    case 3: return { stats, result: { kind: 'get', response: null } };
    case 4: {
      const msgId = i.f64();
      const redelivered = i.u8() === 1;
      const deliveryCount = i.f64();
      const messageCount = i.f64();
      return { stats, result: { kind: 'get', response: { msgId, redelivered, deliveryCount, messageCount, message: readMessage(i) } } };
    }
    default: throw new MeshWireError(`mesh answer of unknown kind ${kind}`);
  }
}

export function encodeDelivery(d: MeshDelivery): Buffer {
  const o = new Out(d.message.body.length + (d.message.rawProperties?.length ?? 64) + 160);
  o.str(d.vhost).str(d.queue).str(d.incarnation).str(d.channel).str(d.consumerTag);
  o.f64(d.msgId).u8(d.redelivered ? 1 : 0).f64(d.deliveryCount);
  writeMessage(o, d.message);
  return writeTraceSection(o, d.trace).done();
}

export function decodeDelivery(data: Uint8Array): MeshDelivery {
  const i = new In(data, truncatedPayload);
  const d = {
    vhost: i.str(), queue: i.str(), incarnation: i.str(), channel: i.str(), consumerTag: i.str(),
    msgId: i.f64(), redelivered: i.u8() === 1, deliveryCount: i.f64(), message: readMessage(i),
  };
  const trace = readTraceSection(i);
  return trace === undefined ? d : { ...d, trace };
}

export function encodeCancel(c: MeshCancel): Buffer {
  return new Out(128).str(c.vhost).str(c.queue).str(c.incarnation).str(c.channel).str(c.consumerTag).u8(reasons.indexOf(c.reason)).done();
}

export function decodeCancel(data: Uint8Array): MeshCancel {
  const i = new In(data, truncatedPayload);
  const c = { vhost: i.str(), queue: i.str(), incarnation: i.str(), channel: i.str(), consumerTag: i.str() };
  const reason = reasons[i.u8()];
  if (reason === undefined) throw new MeshWireError('mesh cancel of unknown reason');
  return { ...c, reason };
}

export function encodeHello(incarnation: string): Buffer {
  return new Out(64).str(incarnation).done();
}

export function decodeHello(data: Uint8Array): string {
  return new In(data, truncatedPayload).str();
}

/** A direct reply-to reply for a requester channel on the receiving node, or (message absent) the question whether it still listens. */
export interface ReplyItem {
  readonly channel: string;
  /** The key of the channel's reply consumer the reply-to name carried. */
  readonly key: string;
  readonly message?: StoredMessage;
}

export function encodeReply(r: ReplyItem): Buffer {
  const o = new Out((r.message?.body.length ?? 0) + (r.message?.rawProperties?.length ?? 64) + 96).str(r.channel).str(r.key);
  if (r.message === undefined) return o.u8(0).done();
  writeMessage(o.u8(1), r.message);
  return o.done();
}

export function decodeReply(data: Uint8Array): ReplyItem {
  const i = new In(data, truncatedPayload);
  const channel = i.str();
  const key = i.str();
  return i.u8() === 1 ? { channel, key, message: readMessage(i) } : { channel, key };
}
