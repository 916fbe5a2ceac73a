// The per-message `expiration` property as the queue machine's TTL: one reading for every queue
// implementation (local and replicated), so a message expires the same way wherever it lives.

import { durationMsMax } from './limits.js';

/** `expiration` (validated by the broker): ms, capped at durationMsMax; null if absent/invalid. */
export function parseExpiration(expiration: string | undefined): number | null {
  if (expiration === undefined || !/^\d+$/.test(expiration)) return null;
  return Math.min(Number(expiration), durationMsMax);
}
