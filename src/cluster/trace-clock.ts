// The clock of message traces (src/lib/trace.ts): wall-clock ms since the epoch with a sub-ms
// fraction, so stamps taken on different nodes of one machine (or of NTP-synced machines) compare.

export function traceNowMs(): number {
  return performance.timeOrigin + performance.now();
}
