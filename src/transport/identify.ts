// Identify: "which node is at this cluster port?", asked by a holder of the cluster secret that
// does not know the node's id yet (ctl, a node joining through --join). A unary call beside the
// peer streams: the asker proves the secret for its nonce, the node answers with its id and a
// proof of its own; a wrong secret is refused (UNAUTHENTICATED) and logged as such, a right one
// logs nothing. Peer streams need the id first (both ends' ids are bound into their proofs).

import * as grpc from '@grpc/grpc-js';
import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import { nodeId, type NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import { authHeader, hexToBytes, identifyAnswerProof, identifyRequestProof, newNonce, proofsEqual } from './auth.js';
import { ProtoDecodeError } from './proto-wire.js';
import { protoCodec } from './proto-schema.js';

export const identifyPath = '/espresso.cluster.v1.Cluster/Identify';

/** A cold path (a call per ctl command or join): the codec loaded from proto/cluster.proto. */
const identifyAnswer = protoCodec<{ nodeId: string }>('espresso.cluster.v1.IdentifyAnswer');

/** What the server side needs of its transport. */
export interface IdentifyingNode {
  readonly nodeId: NodeId;
  readonly secret: string;
  readonly logger: Logger;
}

function header(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

/** Serves one Identify call: IdentifyAnswer (proto/cluster.proto) with the node's proof in the initial metadata. */
export function answerIdentify(node: IdentifyingNode, call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
  const from = header(call.metadata, authHeader.from);
  const nonce = header(call.metadata, authHeader.nonce);
  const proof = hexToBytes(header(call.metadata, authHeader.proof));
  if (from === undefined || nonce === undefined || from.includes('\0') || !proofsEqual(identifyRequestProof(node.secret, from, nonce), proof)) {
    node.logger.warn('refused an identify call: wrong cluster secret', { peer: from ?? '?', remote: call.getPeer() });
    callback({ code: grpc.status.UNAUTHENTICATED, details: 'espresso: wrong cluster secret' });
    return;
  }
  const md = new grpc.Metadata();
  md.set(authHeader.proof, identifyAnswerProof(node.secret, node.nodeId, from, nonce).toString('hex'));
  call.sendMetadata(md);
  callback(null, Buffer.from(identifyAnswer.encode({ nodeId: node.nodeId })));
}

/**
 * Asks the node at the other end of `client` for its id. Unreachable when nothing answers in
 * `timeoutMs`, PermissionDenied when it refuses our secret or cannot prove its own.
 */
export function askIdentity(client: grpc.Client, address: string, self: NodeId, secret: string, timeoutMs: number): Promise<NodeId> {
  const nonce = newNonce();
  const md = new grpc.Metadata();
  md.set(authHeader.from, self);
  md.set(authHeader.nonce, nonce);
  md.set(authHeader.proof, identifyRequestProof(secret, self, nonce).toString('hex'));
  return new Promise<NodeId>((resolve, reject) => {
    let answerProof: Buffer | undefined;
    const call = client.makeUnaryRequest<Buffer, Buffer>(
      identifyPath, (b) => b, (b) => b, Buffer.alloc(0), md, { deadline: Date.now() + timeoutMs },
      (err, value) => {
        if (err !== null || value === undefined) return reject(identifyError(err, address, timeoutMs));
        const id = decodeAnswer(value);
        if (id === '' || !proofsEqual(identifyAnswerProof(secret, id, self, nonce), answerProof)) {
          return reject(new OperatingError(OperatingErrorCode.PermissionDenied, `the node at ${address} could not prove the cluster secret (wrong --cluster-secret?)`, { address }));
        }
        resolve(nodeId(id));
      },
    );
    call.on('metadata', (m: grpc.Metadata) => { answerProof = hexToBytes(header(m, authHeader.proof)); });
  });
}

function identifyError(err: grpc.ServiceError | null, address: string, timeoutMs: number): OperatingError {
  if (err?.code === grpc.status.UNAUTHENTICATED) {
    return new OperatingError(OperatingErrorCode.PermissionDenied, `the node at ${address} refused our cluster secret (wrong --cluster-secret?)`, { address });
  }
  if (err?.code === grpc.status.UNIMPLEMENTED) {
    return new OperatingError(OperatingErrorCode.Unreachable, `the node at ${address} is an espresso without identify (an older version?)`, { address });
  }
  return new OperatingError(OperatingErrorCode.Unreachable, `nothing answers at ${address} within ${timeoutMs} ms (is the node running, and is that its cluster port?)`, { address });
}

/** IdentifyAnswer.node_id; '' when absent or malformed (then the proof cannot match). */
function decodeAnswer(buf: Uint8Array): string {
  try {
    return identifyAnswer.decode(buf).nodeId;
  } catch (e) {
    if (e instanceof ProtoDecodeError) return '';
    throw e;
  }
}
