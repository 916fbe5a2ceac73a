// The memory alarm: samples the process RSS and reports crossings of the high watermark, so the
// server can send connection.blocked / unblocked and stop reading from publishers.

export interface MemoryAlarm {
  readonly raised: boolean;
  stop(): void;
}

export function startMemoryAlarm(
  watermarkBytes: number,
  intervalMs: number,
  readRssBytes: () => number,
  onChange: (raised: boolean, rssBytes: number) => void,
): MemoryAlarm {
  const state = { raised: false };
  if (watermarkBytes <= 0) return { get raised() { return false; }, stop: () => {} };
  const check = (): void => {
    const rss = readRssBytes();
    const above = rss > watermarkBytes;
    if (above === state.raised) return;
    state.raised = above;
    onChange(above, rss);
  };
  const timer = setInterval(check, intervalMs);
  timer.unref();
  check();
  return {
    get raised() {
      return state.raised;
    },
    stop: () => clearInterval(timer),
  };
}
