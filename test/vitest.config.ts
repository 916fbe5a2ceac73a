import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// One config for the whole suite (kept under test/ so the top level stays as the README lists).
// Integration tests spawn real processes on loopback, so they get generous timeouts;
// unit and simulation tests never sleep.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
