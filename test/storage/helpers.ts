// Shared helpers for storage tests: a temporary directory under os.tmpdir(), entry factories
// whose bodies can be checked later, and small readers.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupId, logIndex, term, type GroupId } from '../../src/lib/ids.js';
import type { LogEntry } from '../../src/storage/index.js';

export function tempDir(label: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `espresso-${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A body derived from (group, index, term), so any read can be checked without keeping it. */
export function bodyOf(group: string, index: number, t: number, bytes = 64): Uint8Array {
  const out = new Uint8Array(bytes);
  let x = 2166136261;
  for (const c of `${group}/${index}/${t}`) x = Math.imul(x ^ c.charCodeAt(0), 16777619) >>> 0;
  for (let i = 0; i < bytes; i++) {
    x = Math.imul(x ^ (x >>> 15), 2246822519) >>> 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function makeEntries(group: string, from: number, count: number, t: number, bytes = 64): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i < from + count; i++) out.push({ index: logIndex(i), term: term(t), data: bodyOf(group, i, t, bytes) });
  return out;
}

export const gid = (n: number): GroupId => groupId(`q${n}`);
