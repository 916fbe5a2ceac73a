// The node's data directory as `espresso server` takes it: created if missing, checked to be a
// writable directory, and held by one node at a time (a lock file naming the holder's pid), each
// failure a sentence naming the directory and what to do, with its exit code.

import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, ExitCode } from './config-loader.js';

/** Holds the pid of the node using the directory; a leftover of a killed node is taken over. */
export const lockFileName = 'node.lock';

/** Creates `dir` if missing and checks it is a directory this process can write. */
export function prepareDataDir(dir: string): void {
  const abs = resolve(dir);
  const fileInTheWay = existingFile(abs);
  if (fileInTheWay !== undefined) {
    throw new ConfigError(`data directory '${abs}' cannot be used: '${fileInTheWay}' is a file, not a directory; give --data-dir a directory (it is created if missing)`, ExitCode.CantCreate);
  }
  try {
    mkdirSync(abs, { recursive: true });
    accessSync(abs, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`cannot use data directory '${abs}' (${code}); choose a writable one with --data-dir`, ExitCode.CantCreate);
  }
}

/** `abs` or the first of its parents that exists as something other than a directory. */
function existingFile(abs: string): string | undefined {
  for (let p = abs; ; p = resolve(p, '..')) {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      isDir = undefined; // missing (created below) or unreadable (reported by mkdir/access)
    }
    if (isDir === false) return p;
    if (isDir === true || p === resolve(p, '..')) return undefined;
  }
}

/**
 * Takes the directory for this process: a lock file with our pid, created exclusively. One that
 * names a live process means another node runs on this directory (exit 69); one whose process is
 * gone (kill -9, a crash) is taken over. Returns the release, which removes the file.
 */
export function lockDataDir(dir: string): () => void {
  const path = join(resolve(dir), lockFileName);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        if (holderOf(path) === process.pid) unlinkQuietly(path);
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new ConfigError(`cannot create '${path}' (${(e as NodeJS.ErrnoException).code ?? 'error'}); choose a writable --data-dir`, ExitCode.CantCreate);
      }
    }
    const holder = holderOf(path);
    if (holder !== undefined && holder !== process.pid && isRunning(holder)) throw inUse(dir, holder);
    unlinkQuietly(path); // left by a node that did not stop cleanly
  }
  throw new ConfigError(`cannot take '${path}': another process keeps creating it; is another node starting on '${resolve(dir)}'?`, ExitCode.Unavailable);
}

/** The error for a directory another node holds (also when its store's own lock says so). */
export function inUse(dir: string, pid: number | undefined): ConfigError {
  const who = pid === undefined ? 'another node' : `another node (pid ${pid})`;
  return new ConfigError(`data directory '${resolve(dir)}' is in use by ${who}; stop it, or give this node its own --data-dir`, ExitCode.Unavailable);
}

/** The pid in the directory's lock file, if any. */
export function lockHolder(dir: string): number | undefined {
  return holderOf(join(resolve(dir), lockFileName));
}

function holderOf(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}
