// The two ends of a peer stream: dialing (client hello, check the server's proof, finish) and
// accepting (check the client's proof, answer, wait for its finish). Both log a refusal plainly.

import * as grpc from '@grpc/grpc-js';
import { nodeId } from '../lib/ids.js';
import {
  authHeader, clientFinishProof, clientHelloProof, hexToBytes, newNonce, proofsEqual, serverHelloProof,
} from './auth.js';
import { decodeFrame, encodeFrame } from './frame.js';
import type { Peer, Transport } from './transport.js';

export type ClientStream = grpc.ClientDuplexStream<Buffer, Buffer>;
export type ServerStream = grpc.ServerDuplexStream<Buffer, Buffer>;

function header(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

/** Checks the server's proof; on success the call becomes the peer's outbound stream. */
function onServerHello(t: Transport, peer: Peer, call: ClientStream, serverMd: grpc.Metadata, clientNonce: string): boolean {
  const serverNonce = header(serverMd, authHeader.nonce);
  const proof = hexToBytes(header(serverMd, authHeader.proof));
  const expected = serverNonce === undefined
    ? undefined : serverHelloProof(t.secret, peer.id, t.nodeId, clientNonce, serverNonce);
  if (serverNonce === undefined || expected === undefined || !proofsEqual(expected, proof)) {
    t.logger.error('refusing cluster peer: it did not prove the cluster secret (wrong cluster secret?)', {
      peer: peer.id, address: peer.address,
    });
    call.cancel();
    return false;
  }
  call.write(encodeFrame([], clientFinishProof(t.secret, t.nodeId, peer.id, serverNonce)));
  peer.dialing = undefined;
  peer.outbound = call;
  peer.attempt = 0;
  peer.queue.stats.streamsOpened++;
  t.refresh(peer);
  t.markDirty(peer);
  return true;
}

/** Opens our stream to `peer` and authenticates it; on any failure schedules a redial. */
export function dialPeer(t: Transport, peer: Peer): void {
  if (peer.address === undefined || peer.dialing !== undefined || peer.outbound !== undefined) return;
  peer.client ??= t.newClient(peer.address);
  const clientNonce = newNonce();
  const md = new grpc.Metadata();
  md.set(authHeader.from, t.nodeId);
  md.set(authHeader.to, peer.id);
  md.set(authHeader.nonce, clientNonce);
  md.set(authHeader.proof, clientHelloProof(t.secret, t.nodeId, peer.id, clientNonce).toString('hex'));
  const call = (peer.client as unknown as { link(md: grpc.Metadata): ClientStream }).link(md);
  peer.dialing = call;
  let finished = false;
  const timer = setTimeout(() => {
    if (peer.dialing !== call) return;
    t.logger.warn('peer handshake timed out', { peer: peer.id, address: peer.address });
    call.cancel();
  }, t.limits.connectTimeoutMs);
  call.on('metadata', (serverMd: grpc.Metadata) => {
    if (peer.dialing === call && onServerHello(t, peer, call, serverMd, clientNonce)) clearTimeout(timer);
  });
  call.on('data', (buf: Buffer) => {
    if (peer.outbound === call) t.receive(peer, buf, call);
  });
  const finish = (err?: grpc.ServiceError): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (err?.code === grpc.status.UNAUTHENTICATED) {
      t.logger.error('refused by cluster peer: it rejected our cluster secret proof (wrong cluster secret?)', {
        peer: peer.id, address: peer.address, details: err.details,
      });
    } else if (err !== undefined && err.code !== grpc.status.CANCELLED) {
      t.logger.debug('peer stream failed', { peer: peer.id, address: peer.address, code: err.code, details: err.details });
    }
    if (peer.dialing === call) peer.dialing = undefined;
    if (peer.outbound === call) {
      peer.outbound = undefined;
      if (peer.blockedOn === call) peer.blockedOn = undefined;
      t.refresh(peer);
      t.streamLost(peer);
      t.markDirty(peer);
    }
    t.scheduleRedial(peer);
  };
  call.on('error', finish);
  call.on('end', () => finish());
  call.on('close', () => finish());
}

function refuse(t: Transport, call: ServerStream, why: string, fields: Record<string, string>): void {
  t.logger.warn(`refused cluster peer: ${why}`, { ...fields, remote: call.getPeer() });
  call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: `espresso: ${why}` });
}

/** Serves a stream a peer dialed: authenticate, then it becomes the peer's inbound stream. */
export function acceptInbound(t: Transport, call: ServerStream): void {
  const from = header(call.metadata, authHeader.from);
  const to = header(call.metadata, authHeader.to);
  const clientNonce = header(call.metadata, authHeader.nonce);
  const proof = hexToBytes(header(call.metadata, authHeader.proof));
  if (from === undefined || to === undefined || clientNonce === undefined || from.includes('\0')) {
    refuse(t, call, 'missing cluster authentication headers', {});
    return;
  }
  if (!proofsEqual(clientHelloProof(t.secret, from, to, clientNonce), proof)) {
    refuse(t, call, 'wrong cluster secret', { peer: from });
    return;
  }
  if (to !== t.nodeId || from === t.nodeId) {
    refuse(t, call, `dialed node id ${to} but this is ${t.nodeId}`, { peer: from });
    return;
  }
  if (t.inboundStreams >= t.limits.inboundStreamsMax || t.isClosed) {
    call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'espresso: too many inbound streams' });
    return;
  }
  t.inboundStreams++;
  const serverNonce = newNonce();
  const md = new grpc.Metadata();
  md.set(authHeader.nonce, serverNonce);
  md.set(authHeader.proof, serverHelloProof(t.secret, t.nodeId, from, clientNonce, serverNonce).toString('hex'));
  call.sendMetadata(md);
  serveAuthenticating(t, call, nodeId(from), serverNonce);
}

function serveAuthenticating(t: Transport, call: ServerStream, from: ReturnType<typeof nodeId>, serverNonce: string): void {
  const peer = t.peer(from);
  let authenticated = false;
  let finished = false;
  const timer = setTimeout(() => {
    if (!authenticated) refuse(t, call, 'handshake not finished in time', { peer: from });
  }, t.limits.connectTimeoutMs);
  call.on('data', (buf: Buffer) => {
    if (authenticated) {
      if (peer.inbound === call) t.receive(peer, buf, call);
      return;
    }
    let auth: Uint8Array | undefined;
    try {
      auth = decodeFrame(buf).auth;
    } catch {
      auth = undefined;
    }
    if (!proofsEqual(clientFinishProof(t.secret, from, t.nodeId, serverNonce), auth)) {
      clearTimeout(timer);
      refuse(t, call, 'wrong cluster secret (handshake finish)', { peer: from });
      return;
    }
    clearTimeout(timer);
    authenticated = true;
    const previous = peer.inbound;
    peer.inbound = call;
    peer.queue.stats.streamsOpened++;
    if (previous !== undefined) previous.end();
    t.refresh(peer);
    if (previous !== undefined) t.streamLost(peer);
    t.markDirty(peer);
  });
  const finish = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    t.inboundStreams--;
    if (peer.inbound === call) {
      peer.inbound = undefined;
      if (peer.blockedOn === call) peer.blockedOn = undefined;
      t.refresh(peer);
      t.streamLost(peer);
      t.markDirty(peer);
    }
    if (!call.writableEnded) call.end();
  };
  call.on('end', finish);
  call.on('error', finish);
  call.on('cancelled', finish);
  call.on('close', finish);
}
