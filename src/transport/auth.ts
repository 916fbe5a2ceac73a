// Cluster-secret authentication: HMAC proofs bound to both node ids and fresh nonces, so the secret
// never crosses the wire and a recorded handshake cannot be replayed (each side picks a nonce).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const authHeader = {
  from: 'x-espresso-from',
  to: 'x-espresso-to',
  nonce: 'x-espresso-nonce',
  proof: 'x-espresso-proof',
} as const;

const nonceBytes = 16;

export function newNonce(): string {
  return randomBytes(nonceBytes).toString('hex');
}

function hmac(secret: string, parts: readonly string[]): Buffer {
  const h = createHmac('sha256', secret);
  // A NUL between parts: node ids cannot contain one, so ("a","bc") and ("ab","c") differ.
  h.update(parts.join('\0'));
  return h.digest();
}

/** The dialer's opening proof: it knows the secret, for this (from, to) and its own nonce. */
export function clientHelloProof(secret: string, from: string, to: string, clientNonce: string): Buffer {
  return hmac(secret, ['espresso-cluster-v1', 'client-hello', from, to, clientNonce]);
}

/** The server's answer: it knows the secret too, bound to both nonces. */
export function serverHelloProof(
  secret: string, server: string, client: string, clientNonce: string, serverNonce: string,
): Buffer {
  return hmac(secret, ['espresso-cluster-v1', 'server-hello', server, client, clientNonce, serverNonce]);
}

/** The dialer's first frame: proves the server's fresh nonce, which defeats replay. */
export function clientFinishProof(secret: string, from: string, to: string, serverNonce: string): Buffer {
  return hmac(secret, ['espresso-cluster-v1', 'client-finish', from, to, serverNonce]);
}

export function proofsEqual(expected: Uint8Array, got: Uint8Array | undefined): boolean {
  if (got === undefined || got.length !== expected.length) return false;
  return timingSafeEqual(expected, got);
}

export function hexToBytes(hex: string | undefined): Buffer | undefined {
  if (hex === undefined || !/^[0-9a-f]*$/.test(hex) || hex.length % 2 !== 0) return undefined;
  return Buffer.from(hex, 'hex');
}

/** Identify: the asker proves the secret for its own id and nonce. */
export function identifyRequestProof(secret: string, from: string, nonce: string): Buffer {
  return hmac(secret, ['espresso-cluster-v1', 'identify', from, nonce]);
}

/** Identify: the node's answer (its id) proven for the asker's nonce, so only a holder of the secret can name itself. */
export function identifyAnswerProof(secret: string, node: string, from: string, nonce: string): Buffer {
  return hmac(secret, ['espresso-cluster-v1', 'identify-answer', node, from, nonce]);
}
