// The membership layer's public surface: the pure SWIM core and the gossip service over transport.

export { Swim } from './swim.js';
export type {
  GossipKind, GossipMessage, MemberChange, MemberMeta, MemberStatus, MemberUpdate, MemberView, Outgoing,
} from './swim.js';
export { defaultSwimConfig } from './limits.js';
export type { SwimConfig } from './limits.js';
export { encodeGossip, decodeGossip } from './gossip-codec.js';
export { GossipService } from './gossip-service.js';
export type { GossipServiceOptions, MemberChangeHandler, Seed } from './gossip-service.js';
