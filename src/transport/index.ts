// The transport layer's public surface: what cluster/ and membership/ import.
//
// API
// - Transport.start({ nodeId, listen: { host, port }, secret, tls?: { certFile, keyFile, caFile },
//   logger, limits?: Partial<TransportLimits> }): Promise<Transport>  binds the cluster port
//   (port 0: pick one, read `t.port`). tls: mutual TLS, every node's certificate signed by caFile.
// - t.connect(peerId, 'host:port') keeps a stream to the peer, redialing with capped, jittered
//   exponential backoff; t.disconnect(peerId) stops. A peer that dialed us is usable without connect.
// - t.send(peerId, lane, payload): boolean. Queued and written at the end of the turn with every
//   other item for that peer as one frame (up to frameItemsMax / frameBytesMax). false = dropped:
//   the peer is down, or its queue is at peerQueueItemsMax / peerQueueBytesMax. Nothing is queued
//   for a down peer, and a queue is emptied when its peer goes down: layers above retransmit.
//   Order is kept per peer across lanes while a stream lives. The payload is not copied.
// - t.onMessage((from, lane, payload) => ...): payload is a view into the received frame.
// - t.onPeerState((peer, 'up' | 'down') => ...): up = at least one authenticated stream.
// - t.identify('host:port', timeoutMs): the id of the node there, for a holder of the secret that
//   does not know it (ctl, --join); a unary call of its own (identify.ts), logged only when refused.
// - t.isUp(peer), t.stats(): Map<NodeId, PeerStats & { up, queuedItems, queuedBytes }>, t.close().
//
// Streams: each node dials the peers it connects to, and sends on the stream the PEER dialed when
// there is one (server -> client, where the dialing client's large receive window applies); so two
// nodes that connect to each other hold two streams, one per direction of bulk data. Handshake:
// client hello proof in metadata -> server proof + server nonce in initial metadata -> the
// client's first frame proves the server nonce (auth.ts). A refused peer gets UNAUTHENTICATED and
// both sides log a line naming the wrong cluster secret.

export { Transport, transientPeerPrefix } from './transport.js';
export type { TransportOptions, TlsFiles, PeerState, MessageHandler, PeerStateHandler } from './transport.js';
export { Lane, laneNames, isLane } from './frame.js';
export type { PeerStats } from './peer-queue.js';
export { defaultTransportLimits } from './limits.js';
export type { TransportLimits } from './limits.js';
export { ProtoWriter, ProtoReader, ProtoDecodeError, decodeString, uintFieldSize, bytesFieldSize, stringFieldSize } from './proto-wire.js';
export { protoCodec, protoType, type ProtoCodec } from './proto-schema.js';
