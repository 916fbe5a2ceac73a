// The transport envelope (proto/cluster.proto Frame and Item): lanes, and the encoder that writes
// one turn's items for a peer into a single exactly-sized Buffer.

import { assert } from '../lib/assert.js';
import { ProtoDecodeError, ProtoReader, WireType, varintSize } from './proto-wire.js';

/** What an item carries (wire values: only grow at the end). */
export const Lane = { raft: 1, forward: 2, delivery: 3, gossip: 4, control: 5 } as const;
export type Lane = (typeof Lane)[keyof typeof Lane];
export const laneNames: Record<Lane, string> = {
  1: 'raft', 2: 'forward', 3: 'delivery', 4: 'gossip', 5: 'control',
};

export function isLane(n: number): n is Lane {
  return Number.isInteger(n) && n >= 1 && n <= 5;
}

export interface Item {
  lane: Lane;
  payload: Uint8Array;
}

export interface Frame {
  items: Item[];
  auth: Uint8Array | undefined;
  /** Items of lanes this version does not know (a newer peer's), left out of `items`. */
  unknownLaneItems: number;
}

const itemsField = 1;
const authField = 2;

function itemBodySize(item: Item): number {
  const n = item.payload.length;
  return 1 + varintSize(item.lane) + (n > 0 ? 1 + varintSize(n) + n : 0);
}

/** Encodes a frame: one allocation, one memcpy per payload. */
export function encodeFrame(items: readonly Item[], auth?: Uint8Array): Buffer {
  let size = 0;
  for (const item of items) {
    const body = itemBodySize(item);
    size += 1 + varintSize(body) + body;
  }
  if (auth !== undefined) size += 1 + varintSize(auth.length) + auth.length;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  const varint = (n: number): void => {
    while (n >= 0x80) {
      out[pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[pos++] = n;
  };
  for (const item of items) {
    varint((itemsField << 3) | WireType.bytes);
    varint(itemBodySize(item));
    varint((1 << 3) | WireType.varint);
    varint(item.lane);
    if (item.payload.length > 0) {
      varint((2 << 3) | WireType.bytes);
      varint(item.payload.length);
      out.set(item.payload, pos);
      pos += item.payload.length;
    }
  }
  if (auth !== undefined) {
    varint((authField << 3) | WireType.bytes);
    varint(auth.length);
    out.set(auth, pos);
    pos += auth.length;
  }
  assert(pos === size, 'frame size computed and written must agree');
  return out;
}

/**
 * Decodes a frame; payloads are views into `buf`. An item of a lane this version does not know is
 * skipped and counted (lanes only grow at the end: a newer peer's must not cost the others); an
 * item without a lane is a decode error.
 */
export function decodeFrame(buf: Uint8Array): Frame {
  const reader = new ProtoReader(buf);
  const items: Item[] = [];
  let auth: Uint8Array | undefined;
  let unknownLaneItems = 0;
  while (!reader.done()) {
    const f = reader.next();
    if (f.field === itemsField && f.wire === WireType.bytes) {
      const item = decodeItem(f.value);
      if (item === undefined) unknownLaneItems++;
      else items.push(item);
    } else if (f.field === authField && f.wire === WireType.bytes) {
      auth = f.value;
    }
  }
  return { items, auth, unknownLaneItems };
}

/** The item, or undefined for a lane this version does not know. */
function decodeItem(buf: Uint8Array): Item | undefined {
  const reader = new ProtoReader(buf);
  let lane = 0;
  let payload: Uint8Array = new Uint8Array(0);
  while (!reader.done()) {
    const f = reader.next();
    if (f.field === 1 && f.wire === WireType.varint) lane = f.value;
    else if (f.field === 2 && f.wire === WireType.bytes) payload = f.value;
  }
  if (lane === 0) throw new ProtoDecodeError('item without a lane');
  return isLane(lane) ? { lane, payload } : undefined;
}
