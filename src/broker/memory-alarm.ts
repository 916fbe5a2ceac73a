// The memory alarm: compares the memory the node's live objects hold (V8's heap in use plus the
// buffers outside it: message bodies, socket chunks) with the high watermark and reports
// crossings, so the server can send connection.blocked / unblocked and stop reading publishers.
//
// Not RSS: memory a purged backlog freed stays in the process's RSS until the allocator returns it
// to the OS (tens of seconds, or never), which kept publishers blocked long after the node held
// nothing. Freed memory leaves V8's count at its next garbage collection; while the alarm is up
// nothing may allocate enough to cause one, so each check then asks for a full collection itself
// (bounded to a small share of the time) and the next check reads the memory that is really held.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { limits } from './limits.js';

export interface MemoryAlarm {
  readonly raised: boolean;
  stop(): void;
}

/** V8's heap in use plus its off-heap buffers (ArrayBuffers, Buffers), in bytes. */
export function liveMemoryBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

let exposedGc: (() => void) | undefined;

/** A full garbage collection on request (V8's gc(), exposed once for this process). */
export function collectGarbage(): void {
  if (exposedGc === undefined) {
    setFlagsFromString('--expose-gc');
    exposedGc = runInNewContext('gc') as () => void;
  }
  exposedGc();
}

export interface MemoryAlarmSources {
  readMemoryBytes: () => number;
  /** Runs a full collection; called only while the alarm is raised. */
  collect: () => void;
  /** For spacing the collections (Date.now by default). */
  nowMs?: () => number;
}

/** One reading of the memory in use per check(); onChange on crossings of the watermark. */
export class MemoryWatch {
  raised = false;
  private nextCollectMs = 0;
  private readonly now: () => number;

  constructor(
    private readonly watermarkBytes: number,
    private readonly sources: MemoryAlarmSources,
    private readonly onChange: (raised: boolean, memoryBytes: number) => void,
  ) {
    this.now = sources.nowMs ?? ((): number => Date.now());
  }

  check(): void {
    const bytes = this.sources.readMemoryBytes();
    const above = bytes > this.watermarkBytes;
    if (above !== this.raised) {
      this.raised = above;
      this.onChange(above, bytes);
    }
    if (!this.raised || this.now() < this.nextCollectMs) return;
    // Freed memory is counted as free only after a collection: run one for the next check,
    // spaced so that forced collections take at most 1/memoryCollectGapFactor of the time.
    const started = this.now();
    this.sources.collect();
    this.nextCollectMs = started + (this.now() - started) * limits.memoryCollectGapFactor;
  }
}

/** Checks at once and every `intervalMs`; a watermark of 0 disables the alarm. */
export function startMemoryAlarm(
  watermarkBytes: number,
  intervalMs: number,
  sources: MemoryAlarmSources,
  onChange: (raised: boolean, memoryBytes: number) => void,
): MemoryAlarm {
  if (watermarkBytes <= 0) return { get raised() { return false; }, stop: () => {} };
  const watch = new MemoryWatch(watermarkBytes, sources, onChange);
  const timer = setInterval(() => watch.check(), intervalMs);
  timer.unref();
  watch.check();
  return {
    get raised() {
      return watch.raised;
    },
    stop: () => clearInterval(timer),
  };
}
