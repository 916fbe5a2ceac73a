// The compact binary form of a replicated queue's log entries (one queue command each, stamped with
// the leader's time and the proposer's id) and of its snapshots (queue state plus the bodies that are in no log).
//
// Entry: op u8 | timeMs f64 | proposer u32 | seq u32 | op-specific fields. Op numbers are persisted:
// they only grow at the end. Strings are u16 length + UTF-8; ids are f64 (exact up to 2^53).
// An enqueue with a caller identity (enqueueDedup) has the same layout as a plain one plus origin
// str | seq f64 | floor f64 after the message, so the message sits at the same offset in both.

import { AssertionError, assert } from '../lib/assert.js';
import { ByteReader as In, ByteWriter as Out } from '../lib/bytes.js';
import { encodeBasicProperties } from '../amqp/content.js';
import { readBasicProperties, type BasicProperties } from '../amqp/generated-methods.js';
import { Reader } from '../amqp/wire.js';
import type { MessageProperties, StoredMessage } from '../broker/queue-backend.js';
import type { Command, DownScope, EnqueueIdentity, MsgId, Overflow, Owner, QueueConfig, QueueSnapshot } from '../queue/index.js';

export enum QueueOp {
  enqueue = 1,
  register = 2,
  cancel = 3,
  credit = 4,
  settle = 5,
  return = 6,
  discard = 7,
  down = 8,
  purge = 9,
  get = 10,
  tick = 11,
  touch = 12,
  delete = 13,
  /** A node's queue edge (re)started as leader: holders of its earlier incarnations go down. */
  leaderStart = 14,
  /** An enqueue that may be retried: carries its caller's identity (origin, seq, floor). */
  enqueueDedup = 15,
  /** New effective settings (a policy changed): every replica switches at this entry. */
  config = 16,
}

/**
 * Commands as the log carries them. cancel and credit name the consumer by channel and tag (the
 * key is only known once the register is applied); leaderStart carries the node and incarnation.
 */
export type LogCommand =
  | { readonly type: 'enqueue'; readonly priority: number; readonly ttlMs: number | null; readonly message: StoredMessage; readonly dedup?: EnqueueIdentity }
  | Exclude<Command, { type: 'enqueue' } | { type: 'cancel' } | { type: 'credit' } | { type: 'config' }>
  | { readonly type: 'cancel'; readonly channel: string; readonly tag: string }
  | { readonly type: 'credit'; readonly channel: string; readonly tag: string; readonly credit: number; readonly mode: 'add' | 'set' }
  | { readonly type: 'leaderStart'; readonly node: string; readonly incarnation: string };

/**
 * New effective settings, dead-letter target included: proposed by the queue's leader only (never
 * forwarded between nodes, so not a LogCommand), so every replica switches at the same index.
 */
export interface ConfigCommand {
  readonly type: 'config';
  readonly config: QueueConfig;
  readonly deadLetterExchange: string | null;
  readonly deadLetterRoutingKey: string | null;
  /**
   * The metadata index these settings are as of: a leader whose metadata lags behind the last
   * applied config entry's does not revert it (it proposes once it caught up, if still different).
   */
  readonly asOf: number;
}

/** Every command a queue's log holds. */
export type EntryCommand = LogCommand | ConfigCommand;

export interface EntryHeader {
  readonly timeMs: number;
  readonly proposer: number;
  readonly seq: number;
}

const headerBytes = 17;
const scopes: readonly DownScope[] = ['channel', 'connection', 'node'];

/** A bad entry is a bug (it passed our own encoder and a CRC). */
const truncatedEntry = (): Error => new AssertionError('queue log entry truncated');

/** Length-prefixed bytes of an entry: u32 length. */
function writeBytes(o: Out, b: Uint8Array): void {
  o.u32(b.length).raw(b);
}

/** A copy: the entry buffer may be a view into a larger WAL read that must not stay pinned. */
function readBytes(i: In): Buffer {
  return Buffer.from(i.take(i.u32()));
}

function writeOwner(o: Out, owner: Owner): void {
  o.str(owner.node);
  o.str(owner.connection);
  o.str(owner.channel);
}

function readOwner(i: In): Owner {
  return { node: i.str(), connection: i.str(), channel: i.str() };
}

function writeMessage(o: Out, m: StoredMessage): void {
  o.str(m.exchange);
  o.str(m.routingKey);
  writeBytes(o, m.rawProperties ?? encodeBasicProperties(m.properties as BasicProperties));
  writeBytes(o, m.body);
}

/** Properties are decoded from the raw bytes once, and the raw bytes kept for byte-exact relay. */
function readMessage(i: In): StoredMessage {
  const exchange = i.str();
  const routingKey = i.str();
  const rawProperties = readBytes(i);
  const r = new Reader(rawProperties, 0, rawProperties.length);
  const properties = readBasicProperties(r.short(), r) as MessageProperties;
  return { exchange, routingKey, properties, rawProperties, body: readBytes(i) };
}

function opOf(c: EntryCommand): QueueOp {
  return c.type === 'enqueue' && c.dedup !== undefined ? QueueOp.enqueueDedup : QueueOp[c.type];
}

export function encodeEntry(c: EntryCommand, h: EntryHeader): Buffer {
  const o = new Out(c.type === 'enqueue' ? headerBytes + 64 + c.message.body.length + (c.message.rawProperties?.length ?? 64) : 128);
  o.u8(opOf(c));
  o.f64(h.timeMs);
  o.u32(h.proposer);
  o.u32(h.seq);
  switch (c.type) {
    case 'enqueue':
      o.u8(c.priority);
      o.f64(c.ttlMs ?? -1);
      writeMessage(o, c.message);
      if (c.dedup !== undefined) {
        o.str(c.dedup.origin);
        o.f64(c.dedup.seq);
        o.f64(c.dedup.floor);
      }
      break;
    case 'register':
      writeOwner(o, c.owner);
      o.str(c.tag);
      o.u8(c.creditMode === 'auto' ? 0 : 1);
      o.u32(c.prefetch);
      o.i32(c.priority);
      o.u8(c.noAck ? 1 : 0);
      break;
    case 'cancel': o.str(c.channel); o.str(c.tag); break;
    case 'credit': o.str(c.channel); o.str(c.tag); o.u32(c.credit); o.u8(c.mode === 'add' ? 0 : 1); break;
    case 'settle': case 'return': case 'discard':
      o.str(c.channel);
      o.u32(c.msgIds.length);
      for (const id of c.msgIds) o.f64(id);
      break;
    case 'down': o.u8(scopes.indexOf(c.scope)); o.str(c.id); break;
    case 'get': writeOwner(o, c.owner); o.u8(c.noAck ? 1 : 0); break;
    case 'leaderStart': o.str(c.node); o.str(c.incarnation); break;
    case 'config': writeConfig(o, c); break;
    case 'purge': case 'tick': case 'touch': case 'delete': break;
  }
  return o.done();
}

const overflows: readonly Overflow[] = ['drop-head', 'reject-publish', 'reject-publish-dlx'];

// config: 6 optional numbers (f64, -1 = none), overflow u8, maxPriority u8, singleActiveConsumer u8,
// then the dead-letter exchange and routing key, each u8 present + str, then asOf f64. deadLetter
// follows the exchange.
function writeConfig(o: Out, c: ConfigCommand): void {
  const k = c.config;
  for (const n of [k.messageTtlMs, k.expiresMs, k.maxLength, k.maxLengthBytes, k.deliveryLimit, k.consumerTimeoutMs]) {
    assert(n === null || n >= 0, 'queue config numbers are not negative');
    o.f64(n ?? -1);
  }
  o.u8(overflows.indexOf(k.overflow));
  o.u8(k.maxPriority);
  o.u8(k.singleActiveConsumer ? 1 : 0);
  for (const s of [c.deadLetterExchange, c.deadLetterRoutingKey]) {
    o.u8(s === null ? 0 : 1);
    if (s !== null) o.str(s);
  }
  o.f64(c.asOf);
}

function readConfig(i: In): ConfigCommand {
  const n = (): number | null => {
    const v = i.f64();
    return v < 0 ? null : v;
  };
  const [messageTtlMs, expiresMs, maxLength, maxLengthBytes, deliveryLimit, consumerTimeoutMs] = [n(), n(), n(), n(), n(), n()];
  const overflow = overflows[i.u8()];
  assert(overflow !== undefined, 'overflow is known');
  const maxPriority = i.u8();
  const singleActiveConsumer = i.u8() === 1;
  const optStr = (): string | null => (i.u8() === 1 ? i.str() : null);
  const deadLetterExchange = optStr();
  const deadLetterRoutingKey = optStr();
  const config: QueueConfig = {
    messageTtlMs: messageTtlMs ?? null, expiresMs: expiresMs ?? null, maxLength: maxLength ?? null, maxLengthBytes: maxLengthBytes ?? null,
    overflow, deadLetter: deadLetterExchange !== null, maxPriority, singleActiveConsumer, deliveryLimit: deliveryLimit ?? null,
    consumerTimeoutMs: consumerTimeoutMs ?? null,
  };
  return { type: 'config', config, deadLetterExchange, deadLetterRoutingKey, asOf: i.f64() };
}

function readIds(i: In): MsgId[] {
  const n = i.u32();
  const ids: MsgId[] = [];
  for (let k = 0; k < n; k++) ids.push(i.f64());
  return ids;
}

/** A forwarded command (queue-wire.ts): never a config entry. */
export function decodeEntry(data: Uint8Array): { header: EntryHeader; command: LogCommand } {
  const { header, command } = decodeLogEntry(data);
  assert(command.type !== 'config', 'a config command is not forwarded');
  return { header, command };
}

/** Any entry of a queue's log. */
export function decodeLogEntry(data: Uint8Array): { header: EntryHeader; command: EntryCommand } {
  const i = new In(data, truncatedEntry);
  const op = i.u8() as QueueOp;
  const header = { timeMs: i.f64(), proposer: i.u32(), seq: i.u32() };
  return { header, command: readCommand(i, op) };
}

/** The message of an enqueue entry (a body read back from the log); undefined for any other entry. */
export function decodeEnqueuedMessage(data: Uint8Array): StoredMessage | undefined {
  const i = new In(data, truncatedEntry);
  const op = i.u8();
  if (op !== QueueOp.enqueue && op !== QueueOp.enqueueDedup) return undefined;
  i.seek(headerBytes + 1 + 8); // header, priority u8, ttlMs f64
  return readMessage(i);
}

function readCommand(i: In, op: QueueOp): EntryCommand {
  switch (op) {
    case QueueOp.enqueue:
    case QueueOp.enqueueDedup: {
      const priority = i.u8();
      const ttl = i.f64();
      const plain = { type: 'enqueue', priority, ttlMs: ttl < 0 ? null : ttl, message: readMessage(i) } as const;
      if (op === QueueOp.enqueue) return plain;
      return { ...plain, dedup: { origin: i.str(), seq: i.f64(), floor: i.f64() } };
    }
    case QueueOp.register:
      return {
        type: 'register', owner: readOwner(i), tag: i.str(), creditMode: i.u8() === 0 ? 'auto' : 'granted',
        prefetch: i.u32(), priority: i.i32(), noAck: i.u8() === 1,
      };
    case QueueOp.cancel: return { type: 'cancel', channel: i.str(), tag: i.str() };
    case QueueOp.credit: return { type: 'credit', channel: i.str(), tag: i.str(), credit: i.u32(), mode: i.u8() === 0 ? 'add' : 'set' };
    case QueueOp.settle: return { type: 'settle', channel: i.str(), msgIds: readIds(i) };
    case QueueOp.return: return { type: 'return', channel: i.str(), msgIds: readIds(i) };
    case QueueOp.discard: return { type: 'discard', channel: i.str(), msgIds: readIds(i) };
    case QueueOp.down: {
      const scope = scopes[i.u8()];
      assert(scope !== undefined, 'down scope is known');
      return { type: 'down', scope, id: i.str() };
    }
    case QueueOp.get: return { type: 'get', owner: readOwner(i), noAck: i.u8() === 1 };
    case QueueOp.leaderStart: return { type: 'leaderStart', node: i.str(), incarnation: i.str() };
    case QueueOp.config: return readConfig(i);
    case QueueOp.purge: return { type: 'purge' };
    case QueueOp.tick: return { type: 'tick' };
    case QueueOp.touch: return { type: 'touch' };
    case QueueOp.delete: return { type: 'delete' };
  }
  assert(false, `unknown queue log op ${String(op)}`);
}

/**
 * Snapshot: u32 JSON length | JSON of the queue state | u32 count | (f64 id, message) per carried
 * body. The state names every live id; only bodies in no log are carried (see body-store.ts), the
 * others stay in the WAL as kept entries. Bytes after the bodies are ignored (a snapshot received
 * from the leader has the WAL's trailer of kept entries there).
 */
export function encodeSnapshot(state: QueueSnapshot, bodies: ReadonlyMap<MsgId, StoredMessage>): Buffer {
  const json = Buffer.from(JSON.stringify(state));
  let size = 8 + json.length;
  for (const m of bodies.values()) size += 64 + m.body.length + (m.rawProperties?.length ?? 64);
  const o = new Out(size);
  writeBytes(o, json);
  o.u32(bodies.size);
  for (const [id, m] of bodies) {
    o.f64(id);
    writeMessage(o, m);
  }
  return o.done();
}

export function decodeSnapshot(data: Uint8Array): { state: QueueSnapshot; bodies: Map<MsgId, StoredMessage> } {
  const i = new In(data, truncatedEntry);
  const state = JSON.parse(readBytes(i).toString('utf8')) as QueueSnapshot;
  const bodies = new Map<MsgId, StoredMessage>();
  const n = i.u32();
  for (let k = 0; k < n; k++) {
    const id = i.f64();
    bodies.set(id, readMessage(i));
  }
  return { state, bodies };
}

/** Every live message id of a snapshot's state: ready (returns and levels) and checked out. */
export function liveIdsOf(state: QueueSnapshot): MsgId[] {
  const ids: MsgId[] = [];
  for (const t of state.returns) ids.push(t[0]);
  for (const level of state.levels) for (const t of level) ids.push(t[0]);
  for (const h of state.holders) for (const [t] of h.checkedOut) ids.push(t[0]);
  return ids;
}
