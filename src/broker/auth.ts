// SASL for connection.start-ok: PLAIN and AMQPLAIN responses, salted password hashes (RabbitMQ's
// scheme: base64(salt ++ sha256(salt ++ password))) and the loopback-only rule for guest.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const saslMechanisms = 'PLAIN AMQPLAIN';

export type Credentials = { readonly user: string; readonly pass: string };

/** PLAIN: `authzid \0 user \0 pass` (authzid empty or ignored). null = malformed. */
export function parsePlain(response: Buffer): Credentials | null {
  const first = response.indexOf(0);
  if (first === -1) return null;
  const second = response.indexOf(0, first + 1);
  if (second === -1) return null;
  return {
    user: response.subarray(first + 1, second).toString('utf8'),
    pass: response.subarray(second + 1).toString('utf8'),
  };
}

/**
 * AMQPLAIN: a field table body without its 4-byte length, keys LOGIN and PASSWORD. Parsed here
 * for just those longstr entries so auth does not depend on the full table codec; anything
 * unexpected makes the response malformed (null).
 */
export function parseAmqPlain(response: Buffer): Credentials | null {
  const fields = new Map<string, string>();
  let at = 0;
  while (at < response.length) {
    const nameLen = response[at];
    if (nameLen === undefined || at + 1 + nameLen + 1 > response.length) return null;
    const name = response.subarray(at + 1, at + 1 + nameLen).toString('utf8');
    at += 1 + nameLen;
    const tag = response[at++];
    if (tag !== 0x53 /* S */ || at + 4 > response.length) return null;
    const len = response.readUInt32BE(at);
    at += 4;
    if (at + len > response.length) return null;
    fields.set(name, response.subarray(at, at + len).toString('utf8'));
    at += len;
  }
  const user = fields.get('LOGIN');
  const pass = fields.get('PASSWORD');
  return user === undefined || pass === undefined ? null : { user, pass };
}

export function hashPassword(pass: string, salt: Buffer = randomBytes(4)): string {
  const digest = createHash('sha256').update(salt).update(pass, 'utf8').digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

export function checkPassword(pass: string, stored: string): boolean {
  const raw = Buffer.from(stored, 'base64');
  if (raw.length !== 4 + 32) return false;
  const expected = Buffer.from(hashPassword(pass, raw.subarray(0, 4)), 'base64');
  return timingSafeEqual(raw, expected);
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}
