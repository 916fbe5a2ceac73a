// The disk alarm, as RabbitMQ's disk_free_limit: the free space of the file system holding the
// data directory, checked every few seconds (one statfs, a few µs), and the node's write-ahead log
// reporting failed writes; either blocks publishers (connection.blocked "low on disk").

import { statfs } from 'node:fs/promises';

/** Bytes an unprivileged writer may still use on the file system holding `dir`. */
export async function freeBytesOf(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

export interface DiskAlarm {
  /** True while free space is below the limit (the WAL's alarm is separate: see server.ts). */
  readonly raised: boolean;
  stop(): void;
}

/**
 * Checks at once and then every `intervalMs`; `onChange` is called on crossings only. A failed
 * check (the directory vanished, statfs not allowed) leaves the state as it was and is reported
 * once through `onError`. A limit of 0 disables the check.
 */
export function startDiskAlarm(
  limitBytes: number,
  intervalMs: number,
  readFreeBytes: () => Promise<number>,
  onChange: (raised: boolean, freeBytes: number) => void,
  onError: (error: unknown) => void,
): DiskAlarm {
  const state = { raised: false, checking: false, failing: false, stopped: false };
  if (limitBytes <= 0) return { get raised() { return false; }, stop: () => {} };
  const check = async (): Promise<void> => {
    if (state.checking || state.stopped) return; // a slow statfs is not stacked up
    state.checking = true;
    try {
      const free = await readFreeBytes();
      state.failing = false;
      const below = free < limitBytes;
      if (below !== state.raised && !state.stopped) {
        state.raised = below;
        onChange(below, free);
      }
    } catch (e) {
      if (!state.failing) onError(e);
      state.failing = true;
    } finally {
      state.checking = false;
    }
  };
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  void check();
  return {
    get raised() {
      return state.raised;
    },
    stop: () => {
      state.stopped = true;
      clearInterval(timer);
    },
  };
}

/** The reason RabbitMQ's reader gives in connection.blocked for the alarms that are up. */
export function blockedReason(memory: boolean, disk: boolean): string {
  const on = [memory ? 'memory' : '', disk ? 'disk' : ''].filter((r) => r !== '');
  return `low on ${on.join(' & ')}`;
}
