// The handshake proofs and the redial schedule: pure functions, checked directly.
import { describe, expect, it } from 'vitest';
import { clientFinishProof, clientHelloProof, proofsEqual, serverHelloProof } from '../../src/transport/auth.js';
import { defaultTransportLimits } from '../../src/transport/limits.js';
import { redialDelayMs } from '../../src/transport/transport.js';

describe('cluster secret proofs', () => {
  it('bind the secret, both node ids and the nonce, so none of them can be swapped', () => {
    const base = clientHelloProof('s', 'n1', 'n2', 'aa');
    expect(proofsEqual(base, clientHelloProof('s', 'n1', 'n2', 'aa'))).toBe(true);
    expect(proofsEqual(base, clientHelloProof('t', 'n1', 'n2', 'aa'))).toBe(false);
    expect(proofsEqual(base, clientHelloProof('s', 'n2', 'n1', 'aa'))).toBe(false);
    expect(proofsEqual(base, clientHelloProof('s', 'n1', 'n3', 'aa'))).toBe(false);
    expect(proofsEqual(base, clientHelloProof('s', 'n1', 'n2', 'ab'))).toBe(false);
    expect(proofsEqual(base, clientHelloProof('s', 'n1n', '2', 'aa'))).toBe(false);
    expect(proofsEqual(base, undefined)).toBe(false);
    expect(proofsEqual(base, base.subarray(1))).toBe(false);
  });

  it('a recorded handshake does not answer a fresh server nonce', () => {
    const recorded = clientFinishProof('s', 'n1', 'n2', 'nonce-then');
    expect(proofsEqual(clientFinishProof('s', 'n1', 'n2', 'nonce-now'), recorded)).toBe(false);
    // The three proofs of one handshake are distinct even over equal inputs.
    const hello = clientHelloProof('s', 'n1', 'n2', 'x');
    expect(proofsEqual(hello, clientFinishProof('s', 'n1', 'n2', 'x'))).toBe(false);
    expect(proofsEqual(hello, serverHelloProof('s', 'n1', 'n2', 'x', 'x'))).toBe(false);
  });
});

describe('redial backoff', () => {
  const limits = { ...defaultTransportLimits, reconnectDelayMsMin: 100, reconnectDelayMsMax: 5_000, reconnectJitter: 0.5 };

  it('doubles from the minimum up to the cap, then stays there', () => {
    expect([0, 1, 2, 3, 5, 6, 50, 10_000].map((a) => redialDelayMs(a, limits, 0))).toEqual([100, 200, 400, 800, 3_200, 5_000, 5_000, 5_000]);
  });

  it('takes off at most the jitter share, so no delay is ever above the cap or below half of it', () => {
    for (const unit of [0, 0.25, 0.5, 0.999]) {
      const d = redialDelayMs(40, limits, unit);
      expect(d).toBeLessThanOrEqual(5_000);
      expect(d).toBeGreaterThanOrEqual(2_500);
    }
    expect(redialDelayMs(0, limits, 0.999)).toBe(50);
  });
});
