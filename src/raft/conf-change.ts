// Single-server membership changes: the change kinds, their byte encoding inside a ConfChange
// entry, and applying one to a membership. A change takes effect when appended, not committed.

import type { NodeId } from '../lib/ids.js';
import { nodeId } from '../lib/ids.js';
import type { Membership } from './types.js';

/** Persisted enum: explicit numbers, only grows at the end. */
export const ConfChangeKind = { AddLearner: 1, Promote: 2, Remove: 3 } as const;
export type ConfChangeKind = (typeof ConfChangeKind)[keyof typeof ConfChangeKind];

export interface ConfChange {
  readonly kind: ConfChangeKind;
  readonly node: NodeId;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

export function encodeConfChange(c: ConfChange): Uint8Array {
  const name = utf8Encoder.encode(c.node);
  const out = new Uint8Array(1 + name.length);
  out[0] = c.kind;
  out.set(name, 1);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange | null {
  const kind = data[0];
  if (kind !== ConfChangeKind.AddLearner && kind !== ConfChangeKind.Promote && kind !== ConfChangeKind.Remove) return null;
  if (data.length < 2) return null;
  return { kind, node: nodeId(utf8Decoder.decode(data.subarray(1))) };
}

/** Why a change is not allowed against `m`, or null when it is. */
export function checkConfChange(m: Membership, c: ConfChange): string | null {
  const isVoter = m.voters.includes(c.node);
  const isLearner = m.learners.includes(c.node);
  switch (c.kind) {
    case ConfChangeKind.AddLearner:
      return isVoter || isLearner ? `${c.node} is already a member` : null;
    case ConfChangeKind.Promote:
      return isLearner ? null : `${c.node} is not a learner`;
    case ConfChangeKind.Remove:
      if (!isVoter && !isLearner) return `${c.node} is not a member`;
      return isVoter && m.voters.length === 1 ? 'cannot remove the last voter' : null;
  }
}

/** The membership after the change; an invalid change (from a log written elsewhere) is a no-op. */
export function applyConfChange(m: Membership, c: ConfChange): Membership {
  if (checkConfChange(m, c) !== null) return m;
  const voters = m.voters.filter((n) => n !== c.node);
  const learners = m.learners.filter((n) => n !== c.node);
  if (c.kind === ConfChangeKind.AddLearner) learners.push(c.node);
  if (c.kind === ConfChangeKind.Promote) voters.push(c.node);
  voters.sort();
  learners.sort();
  return { voters, learners };
}

export function sameMembership(a: Membership, b: Membership): boolean {
  const eq = (x: readonly NodeId[], y: readonly NodeId[]): boolean =>
    x.length === y.length && x.every((v, i) => v === y[i]);
  return eq(a.voters, b.voters) && eq(a.learners, b.learners);
}
