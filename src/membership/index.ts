// The membership layer's public surface: the pure SWIM core and the gossip service over transport.
// Membership informs routing and placement only; nothing safety-related may depend on it.
//
// API
// - new GossipService({ transport, meta: MemberMeta, seeds: [{ nodeId, clusterAddress }], logger,
//   config?: Partial<SwimConfig>, tickMs?, randomSeed? })  joins through the seeds once their
//   streams are up, dials members at their advertised clusterAddress, ticks the core on a timer.
//   .members(): MemberView[] (self included, sorted by id) .onChange((c: MemberChange) => ...)
//   .setMeta(meta) (new load / leaders: spread with a higher incarnation) .incarnation .stop()
// - MemberMeta { amqpAddress, clusterAddress, load, version, leaders: Record<groupId, nodeId> }
//   MemberView { nodeId, status: 'alive' | 'suspect' | 'dead', incarnation, meta }
// - The pure core, for simulations: new Swim(self, meta, config, random, nowMs); join(seeds),
//   tick(nowMs), receive(msg, nowMs) -> Outgoing[] { to, message }; takeChanges(), view(),
//   statusOf(id), setMeta(meta). encodeGossip / decodeGossip: proto/cluster.proto GossipMessage.

export { Swim } from './swim.js';
export type {
  GossipKind, GossipMessage, MemberChange, MemberMeta, MemberStatus, MemberUpdate, MemberView, Outgoing,
} from './swim.js';
export { defaultSwimConfig } from './limits.js';
export type { SwimConfig } from './limits.js';
export { encodeGossip, decodeGossip } from './gossip-codec.js';
export { GossipService } from './gossip-service.js';
export type { GossipServiceOptions, MemberChangeHandler, Seed } from './gossip-service.js';
