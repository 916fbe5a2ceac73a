// The checker of a fault run: from the history the workload recorded (every publish with its
// outcome, every delivery) and the nemesis operations, it counts lost, unexpected, duplicated and
// redelivered messages, order violations per producer and queue, and the longest window without a
// confirm per operation. Pure: the same history always gives the same verdict.

/** ok = confirmed (basic.ack); nack = refused by the broker; unknown = no answer (connection lost). */
export type PublishOutcome = 'ok' | 'nack' | 'unknown';

export interface PublishRecord {
  id: string;
  producer: string;
  queue: string;
  /** Per producer and queue, from 0 in publish order. */
  seq: number;
  sentMs: number;
  outcome: PublishOutcome;
  /** When the confirm (or nack) came; undefined for unknown. */
  doneMs?: number;
}

export interface DeliveryRecord {
  id: string;
  queue: string;
  consumer: string;
  redelivered: boolean;
  atMs: number;
  /** The id read from the body; it must match the message-id property. */
  bodyId: string;
}

export interface NemesisOp {
  name: string;
  /** Which nodes it hit, for the report. */
  target: string;
  startMs: number;
  /** When the fault was healed (or the node back). */
  endMs: number;
}

export interface History {
  publishes: readonly PublishRecord[];
  deliveries: readonly DeliveryRecord[];
  ops: readonly NemesisOp[];
  startMs: number;
  endMs: number;
  /** When the producers stopped (the drain follows): availability is measured up to here. */
  loadEndMs?: number;
}

export interface OpAvailability {
  op: NemesisOp;
  /** Longest stretch without any confirm, from the op's start until the next op starts (or the run ends). */
  longestGapMs: number;
  confirms: number;
}

export interface Verdict {
  published: number;
  confirmed: number;
  nacked: number;
  unknown: number;
  delivered: number;
  distinctDelivered: number;
  /** Confirmed, never delivered. Must be 0. */
  lost: string[];
  /** Delivered, never published (or the body and message-id disagree, or the queue differs). Must be 0. */
  unexpected: string[];
  /** Exact counts (the lists above are capped). */
  lostCount: number;
  unexpectedCount: number;
  /** Deliveries of an id beyond its first. */
  duplicates: number;
  /** Deliveries flagged redelivered. */
  redelivered: number;
  /** Unknown outcomes that were delivered after all. */
  unknownDelivered: number;
  /** First deliveries that came after a later-published message of the same producer and queue. */
  orderViolations: Array<{ producer: string; queue: string; seq: number; afterSeq: number }>;
  /** Exact count (the list above is capped). */
  orderViolationCount: number;
  availability: OpAvailability[];
  /** Longest stretch without any confirm over the whole run. */
  longestGapMs: number;
  ok: boolean;
}

/** Bounds on what the verdict lists in full (the counts are always exact). */
const listedMax = 50;

export function check(history: History): Verdict {
  const byId = new Map<string, PublishRecord>();
  for (const p of history.publishes) byId.set(p.id, p);
  const lost: string[] = [];
  const unexpected: string[] = [];
  const seen = new Map<string, number>();
  let duplicates = 0;
  let redelivered = 0;
  let unexpectedCount = 0;
  for (const d of history.deliveries) {
    if (d.redelivered) redelivered += 1;
    const n = seen.get(d.id) ?? 0;
    if (n > 0) duplicates += 1;
    seen.set(d.id, n + 1);
    const p = byId.get(d.id);
    if (p === undefined || d.bodyId !== d.id || p.queue !== d.queue) {
      unexpectedCount += 1;
      if (unexpected.length < listedMax) unexpected.push(d.id);
    }
  }
  let confirmed = 0;
  let nacked = 0;
  let unknown = 0;
  let unknownDelivered = 0;
  let lostCount = 0;
  for (const p of history.publishes) {
    if (p.outcome === 'ok') {
      confirmed += 1;
      if (!seen.has(p.id)) {
        lostCount += 1;
        if (lost.length < listedMax) lost.push(p.id);
      }
    } else if (p.outcome === 'nack') nacked += 1;
    else {
      unknown += 1;
      if (seen.has(p.id)) unknownDelivered += 1;
    }
  }
  const confirmTimes = history.publishes
    .filter((p) => p.outcome === 'ok' && p.doneMs !== undefined)
    .map((p) => p.doneMs!)
    .sort((a, b) => a - b);
  const availability = opAvailability(history, confirmTimes);
  const verdict: Verdict = {
    published: history.publishes.length,
    confirmed, nacked, unknown,
    delivered: history.deliveries.length,
    distinctDelivered: seen.size,
    lost, unexpected, lostCount, unexpectedCount, duplicates, redelivered, unknownDelivered,
    ...orderViolations(history, byId),
    availability,
    longestGapMs: longestGap(confirmTimes, history.startMs, history.loadEndMs ?? history.endMs),
    ok: false,
  };
  // Duplicates and redeliveries are allowed (at-least-once); loss, strangers and reordered first deliveries are not.
  verdict.ok = lostCount === 0 && unexpectedCount === 0 && verdict.orderViolationCount === 0;
  // The lists are capped; keep the counts exact through placeholders when they overflow.
  if (lostCount > lost.length) verdict.lost.push(`... ${lostCount - lost.length} more`);
  if (unexpectedCount > unexpected.length) verdict.unexpected.push(`... ${unexpectedCount - unexpected.length} more`);
  return verdict;
}

/** First deliveries (not flagged redelivered, first time the id is seen) of one producer and queue in seq order. */
function orderViolations(history: History, byId: ReadonlyMap<string, PublishRecord>): Pick<Verdict, 'orderViolations' | 'orderViolationCount'> {
  const highest = new Map<string, number>();
  const firstSeen = new Set<string>();
  const out: Verdict['orderViolations'] = [];
  let count = 0;
  for (const d of history.deliveries) {
    if (firstSeen.has(d.id)) continue;
    firstSeen.add(d.id);
    if (d.redelivered) continue;
    const p = byId.get(d.id);
    if (p === undefined) continue;
    const key = `${p.producer}\u0000${p.queue}`;
    const top = highest.get(key);
    if (top !== undefined && p.seq < top) {
      count += 1;
      if (out.length < listedMax) out.push({ producer: p.producer, queue: p.queue, seq: p.seq, afterSeq: top });
    } else highest.set(key, p.seq);
  }
  return { orderViolations: out, orderViolationCount: count };
}

/** Longest stretch in [fromMs, toMs] with no time in `sorted` (the edges count as gaps too). */
export function longestGap(sorted: readonly number[], fromMs: number, toMs: number): number {
  let prev = fromMs;
  let longest = 0;
  for (const t of sorted) {
    if (t < fromMs) continue;
    if (t > toMs) break;
    longest = Math.max(longest, t - prev);
    prev = t;
  }
  return Math.max(longest, toMs - prev);
}

function opAvailability(history: History, confirmTimes: readonly number[]): OpAvailability[] {
  const ops = [...history.ops].sort((a, b) => a.startMs - b.startMs);
  return ops.map((op, i) => {
    const until = ops[i + 1]?.startMs ?? history.loadEndMs ?? history.endMs;
    const to = Math.max(until, op.endMs);
    const confirms = confirmTimes.filter((t) => t >= op.startMs && t <= to).length;
    return { op, longestGapMs: longestGap(confirmTimes, op.startMs, to), confirms };
  });
}
