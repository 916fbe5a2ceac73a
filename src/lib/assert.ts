// Assertions for invariants. They stay on in production: a failed one is a bug, logged at the
// top of the process, which then exits (STYLE.md: bugs are assertion failures).

export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: unknown, message?: string): asserts condition {
  if (!condition) throw new AssertionError(message ?? 'assertion failed');
}

/** Marks a branch that must never run (exhaustive switches). */
export function unreachable(value: never, message?: string): never {
  throw new AssertionError(message ?? `unreachable: ${String(value)}`);
}

/** Documents that both outcomes of a condition happen; does nothing at run time. */
export function maybe(_condition: boolean): void {}
