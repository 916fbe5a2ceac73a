// Small file-system helpers for the storage layer: segment naming and listing, durable file
// creation (write, fsync, rename, fsync the directory) and directory fsync.

import { closeSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

const segmentSuffix = '.wal';

export function segmentFileName(id: number): string {
  return String(id).padStart(16, '0') + segmentSuffix;
}

/** Segment ids present in `dir`, oldest first. */
export function listSegmentIds(dir: string): number[] {
  const ids: number[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(segmentSuffix)) continue;
    const id = Number(name.slice(0, -segmentSuffix.length));
    if (Number.isSafeInteger(id) && segmentFileName(id) === name) ids.push(id);
  }
  return ids.sort((a, b) => a - b);
}

/** Makes a directory's entries (created, renamed, deleted files) durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a whole file so that it either exists complete and synced under `name`, or not at all. */
export async function writeFileDurably(dir: string, name: string, data: Uint8Array): Promise<void> {
  const temp = join(dir, `${name}.tmp`);
  const handle = await open(temp, 'w');
  try {
    let written = 0;
    while (written < data.length) {
      const r = await handle.write(data, written, data.length - written, written);
      written += r.bytesWritten;
    }
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(temp, join(dir, name));
  fsyncDir(dir);
}

export async function removeQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
