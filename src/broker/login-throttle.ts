// Failed-login throttling per source address and user name: after `failuresMax` failures within
// `lockoutMs` the pair is locked out for `lockoutMs`: every login of
// that user from that address is refused, even with the right password, and the lockout is logged
// once. A successful login forgets the pair's failures. Time comes from the caller's clock; the
// table is bounded (the oldest pair is forgotten first).

export interface ThrottleSettings {
  /** Failures of one address and user within lockoutMs that lock the pair out for lockoutMs (0 = never). */
  readonly failuresMax: number;
  readonly lockoutMs: number;
  /** Pairs remembered at once. */
  readonly entriesMax: number;
}

interface Entry {
  failures: number;
  firstFailureAtMs: number;
  lockedUntilMs: number;
}

export type LoginVerdict =
  | { readonly kind: 'try' }
  /** Locked out until untilMs: refuse without checking the password. */
  | { readonly kind: 'locked'; readonly untilMs: number };

export class LoginThrottle {
  private readonly entries = new Map<string, Entry>();

  /** `settings` is read on every call: a reload changes them for the next login. */
  constructor(private readonly settings: () => ThrottleSettings) {}

  private static key(address: string, user: string): string {
    return `${address}\u0000${user}`;
  }

  /** Before checking a password: may this address try this user now? */
  check(address: string, user: string, nowMs: number): LoginVerdict {
    const e = this.entries.get(LoginThrottle.key(address, user));
    if (e !== undefined && e.lockedUntilMs > nowMs) return { kind: 'locked', untilMs: e.lockedUntilMs };
    return { kind: 'try' };
  }

  /**
   * A failed login: returns the lockout's end when this failure starts one (log it then), else
   * null. Failures older than the window start a new count.
   */
  failed(address: string, user: string, nowMs: number): number | null {
    const { failuresMax, lockoutMs, entriesMax } = this.settings();
    if (failuresMax === 0) return null;
    const key = LoginThrottle.key(address, user);
    let e = this.entries.get(key);
    if (e === undefined || nowMs - e.firstFailureAtMs > lockoutMs) {
      if (e === undefined && this.entries.size >= entriesMax) {
        const oldest = this.entries.keys().next();
        if (oldest.done !== true) this.entries.delete(oldest.value);
      }
      e = { failures: 0, firstFailureAtMs: nowMs, lockedUntilMs: e?.lockedUntilMs ?? 0 };
    }
    // Re-inserted so the map's order stays oldest-touched first.
    this.entries.delete(key);
    this.entries.set(key, e);
    e.failures++;
    if (e.failures < failuresMax || e.lockedUntilMs > nowMs) return null;
    e.lockedUntilMs = nowMs + lockoutMs;
    e.failures = 0;
    e.firstFailureAtMs = nowMs;
    return e.lockedUntilMs;
  }

  /** A successful login forgets the pair's failures. */
  succeeded(address: string, user: string): void {
    this.entries.delete(LoginThrottle.key(address, user));
  }

  get size(): number {
    return this.entries.size;
  }
}
