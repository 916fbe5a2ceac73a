// The transport layer's public surface: what cluster/ and membership/ import.

export { Transport } from './transport.js';
export type { TransportOptions, TlsFiles, PeerState, MessageHandler, PeerStateHandler } from './transport.js';
export { Lane, laneNames, isLane } from './frame.js';
export type { PeerStats } from './peer-queue.js';
export { defaultTransportLimits } from './limits.js';
export type { TransportLimits } from './limits.js';
export { ProtoWriter, ProtoReader, ProtoDecodeError, decodeString } from './proto-wire.js';
