// Wall-clock timers for queue effects (TTL, expiry, consumer timeout), shared by the local and the
// replicated queue. Tests hand in their own to drive time by hand.

/** The timer functions a queue uses (real ones by default; tests may drive their own). */
export interface QueueTimers {
  set(fn: () => void, delayMs: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: QueueTimers = {
  set: (fn, delayMs) => {
    const t = setTimeout(fn, delayMs);
    t.unref(); // a pending expiry must not keep the process alive
    return t;
  },
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
