// `espresso ctl profile cpu|heap|stages` and `espresso ctl top`: asked of any node over its
// cluster port with the cluster secret, like every ctl command; the node asked reaches the node
// named (--node) or every node. Profiles arrive gzipped in chunks and are written to --out.

import { writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { withRemoteNode, type RemoteCall } from '../cluster/control-client.js';
import { decodeJson, encodeJson } from '../cluster/metadata-entries.js';
import { isOperatingError, OperatingErrorCode } from '../lib/errors.js';
import { ObserveMethod, type ClusterTop, type NodeTop, type ProfileKind, type ProfileTicket } from '../observe/observe-service.js';
import { formatCpuSummary } from '../observe/profiler.js';
import { formatBreakdown, type StageBreakdown } from '../observe/stage-summary.js';
import { ConfigError, ExitCode } from './config-loader.js';
import { clusterTlsOf, parseNodeAddress } from './node-cluster.js';
import { intFlag, parseSmallFlags, type SmallArgs } from './small-flags.js';

export const observeCtlHelp = `  profile cpu [--node N] [--seconds 10] [--out FILE]
                              a CPU profile of node N (default: the node asked), written as a
                              Chrome .cpuprofile; prints the top functions and the GC share
  profile heap [--node N] [--out FILE]
                              a heap snapshot of node N (.heapsnapshot; the node pauses meanwhile)
  profile stages [--queue Q] [--seconds 10]
                              where sampled messages' time went over the next N seconds, every
                              node: count, mean, p50 and p99 per stage (--trace-sample on the nodes)
  top [--interval 2] [--iterations N] [--once]
                              live view per node: publish/deliver/ack rates, connections, queues,
                              depth, leaders, follower lag, memory, event loop, peers' RTT
`;

const connectionFlags = ['--cluster-address', '--cluster-secret', '--data-dir', '--timeout', '--cluster-tls-cert', '--cluster-tls-key', '--cluster-tls-ca'];
const observeFlags = ['--node', '--seconds', '--out', '--queue', '--interval', '--iterations'];

/** True when argv names an observe command: its first word (flags and their values skipped) is profile or top. */
export function isObserveCommand(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) return a === 'profile' || a === 'top';
    if (!a.includes('=') && a !== '--json' && a !== '--once') i++;
  }
  return false;
}

/** `secretOf` reads the cluster secret as every ctl command does (flag, env, or a node's data dir). */
export async function runObserveCtl(
  argv: readonly string[], env: Record<string, string | undefined>, secretOf: (given: string | undefined, dataDir: string | undefined) => string,
): Promise<number> {
  const args = parseSmallFlags('ctl', argv, [...connectionFlags, ...observeFlags], ['--json', '--once']);
  const [command, what, ...extra] = args.words;
  if (extra.length > 0 || (command === 'profile' && what === undefined) || (command === 'top' && what !== undefined)) {
    throw new ConfigError(`espresso ctl: give one command; see 'espresso ctl --help'`, ExitCode.Usage);
  }
  if (command === 'profile' && what !== 'cpu' && what !== 'heap' && what !== 'stages') {
    throw new ConfigError(`espresso ctl profile: expected cpu, heap or stages, got '${what ?? ''}'`, ExitCode.Usage);
  }
  const timeoutMs = intFlag(args, '--timeout', 5_000, 100, 600_000);
  const target = parseNodeAddress(args.flags.get('--cluster-address') ?? '127.0.0.1:25672', '--cluster-address');
  const secret = secretOf(args.flags.get('--cluster-secret') ?? env['ESPRESSO_CLUSTER_SECRET'], args.flags.get('--data-dir'));
  const tls = clusterTlsOf({
    clusterTlsCert: args.flags.get('--cluster-tls-cert') ?? env['ESPRESSO_CLUSTER_TLS_CERT'] ?? '',
    clusterTlsKey: args.flags.get('--cluster-tls-key') ?? env['ESPRESSO_CLUSTER_TLS_KEY'] ?? '',
    clusterTlsCa: args.flags.get('--cluster-tls-ca') ?? env['ESPRESSO_CLUSTER_TLS_CA'] ?? '',
  });
  const seconds = intFlag(args, '--seconds', 10, what === 'stages' ? 0 : 1, 300);
  // The session lasts as long as the longest call in it: a profile, a stages window, or top's loop.
  const sessionMs = timeoutMs + seconds * 1000 + 120_000;
  const known = { ...(target.id !== undefined ? { nodeId: target.id } : {}), ...(tls !== undefined ? { tls } : {}) };
  try {
    return await withRemoteNode({ address: target.address, secret, timeoutMs: sessionMs, ...known }, (call) => {
      if (command === 'top') return top(call, args);
      if (what === 'stages') return stages(call, args, seconds);
      return profile(call, args, what as ProfileKind, seconds);
    });
  } catch (e) {
    if (!isOperatingError(e)) throw e;
    const reach = e.code === OperatingErrorCode.Unreachable || e.code === OperatingErrorCode.PermissionDenied || e.code === OperatingErrorCode.Timeout;
    process.stderr.write(`espresso ctl: ${reach ? '' : 'refused: '}${e.message}\n`);
    return reach ? ExitCode.Unavailable : ExitCode.Failure;
  }
}

async function profile(call: RemoteCall, args: SmallArgs, kind: ProfileKind, seconds: number): Promise<number> {
  const node = args.flags.get('--node');
  const ticket = decodeJson<ProfileTicket>(await call(ObserveMethod.profile, encodeJson({ kind, seconds, ...(node !== undefined ? { node } : {}) })));
  const parts: Uint8Array[] = [];
  for (let offset = 0; offset < ticket.bytes;) {
    const chunk = await call(ObserveMethod.profileFetch, encodeJson({ node: ticket.node, id: ticket.id, offset }));
    if (chunk.length === 0) throw new ConfigError(`espresso ctl: the profile on ${ticket.node} ended early at byte ${offset} of ${ticket.bytes}`, ExitCode.Failure);
    parts.push(chunk);
    offset += chunk.length;
  }
  const bytes = gunzipSync(Buffer.concat(parts));
  const stampText = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const out = args.flags.get('--out') ?? `${ticket.node}-${stampText}.${kind === 'cpu' ? 'cpuprofile' : 'heapsnapshot'}`;
  writeFileSync(out, bytes);
  if (args.flags.get('--json') === 'true') {
    process.stdout.write(`${JSON.stringify({ ...ticket, out, fileBytes: bytes.length }, null, 2)}\n`);
    return ExitCode.Ok;
  }
  process.stdout.write(`${kind === 'cpu' ? 'CPU profile' : 'heap snapshot'} of ${ticket.node} written to ${out} (${(bytes.length / 1e6).toFixed(1)} MB)\n`);
  if (ticket.summary !== null) process.stdout.write(formatCpuSummary(ticket.summary));
  return ExitCode.Ok;
}

async function stages(call: RemoteCall, args: SmallArgs, seconds: number): Promise<number> {
  const queue = args.flags.get('--queue');
  if (args.flags.get('--json') !== 'true') process.stderr.write(`collecting traced messages for ${seconds} s...\n`);
  const b = decodeJson<StageBreakdown>(await call(ObserveMethod.stages, encodeJson({ seconds, ...(queue !== undefined ? { queue } : {}) })));
  process.stdout.write(args.flags.get('--json') === 'true' ? `${JSON.stringify(b, null, 2)}\n` : formatBreakdown(b));
  return ExitCode.Ok;
}

async function top(call: RemoteCall, args: SmallArgs): Promise<number> {
  const once = args.flags.get('--once') === 'true';
  const intervalS = intFlag(args, '--interval', once ? 1 : 2, 1, 3600);
  const iterations = once ? 1 : intFlag(args, '--iterations', 1_000_000, 1, 1_000_000);
  const tty = process.stdout.isTTY === true && !once;
  let stopped = false;
  const stop = (): void => { stopped = true; };
  process.once('SIGINT', stop);
  try {
    let before = decodeJson<ClusterTop>(await call(ObserveMethod.top, encodeJson({})));
    for (let i = 0; i < iterations && !stopped; i++) {
      await new Promise((resolve) => setTimeout(resolve, intervalS * 1000));
      if (stopped) break;
      const now = decodeJson<ClusterTop>(await call(ObserveMethod.top, encodeJson({})));
      const frame = formatTop(before, now, intervalS);
      process.stdout.write(tty ? `\x1b[2J\x1b[H${frame}` : args.flags.get('--json') === 'true' ? `${JSON.stringify(now)}\n` : frame);
      before = now;
    }
  } finally {
    process.off('SIGINT', stop);
  }
  return ExitCode.Ok;
}

function table(head: readonly string[], rows: readonly string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

/** The event loop's busy share between two answers of a node. */
function busyShare(p: NodeTop | undefined, n: NodeTop): string {
  if (p === undefined) return '?';
  const active = n.eventLoopActiveMs - p.eventLoopActiveMs;
  const total = active + n.eventLoopIdleMs - p.eventLoopIdleMs;
  return total > 0 ? (active / total).toFixed(2) : '?';
}

const rate = (a: number, b: number, seconds: number): string => (seconds > 0 ? Math.max(0, (b - a) / seconds).toFixed(0) : '?');
const mb = (n: number): string => (n / 1048576).toFixed(0);

/** One frame of ctl top: rates from the figures of two moments. */
export function formatTop(before: ClusterTop, now: ClusterTop, intervalS: number): string {
  const prev = new Map(before.nodes.map((n) => [n.node, n]));
  const rows = now.nodes.map((n) => {
    const p = prev.get(n.node);
    const s = p === undefined ? 0 : (n.atMs - p.atMs) / 1000 || intervalS;
    const r = (f: (t: NodeTop) => number): string => (p === undefined ? '?' : rate(f(p), f(n), s));
    return [
      n.node, 'up', r((t) => t.received), r((t) => t.delivered), r((t) => t.acknowledged), String(n.connections), String(n.channels),
      String(n.consumers), String(n.queues), String(n.ready), String(n.unacked), `${n.groupsLed}/${n.groups}`, String(n.maxFollowerLag),
      mb(n.rssBytes), mb(n.heapUsedBytes), busyShare(p, n), n.eventLoopDelayP99Ms.toFixed(1), n.alarms.join(',') || '-',
    ];
  });
  for (const m of now.missing) rows.push([m, 'no answer', ...new Array<string>(16).fill('-')]);
  const peers = now.nodes.flatMap((n) => n.peers.map((p) => `${n.node}->${p.peer} ${p.up ? (p.rttMs === null ? 'up' : `${p.rttMs.toFixed(1)} ms`) : 'DOWN'}`));
  const queues = now.nodes.flatMap((n) => n.topQueues.map((q) => {
    const p = prev.get(n.node)?.topQueues.find((x) => x.vhost === q.vhost && x.name === q.name);
    const s = (n.atMs - (prev.get(n.node)?.atMs ?? n.atMs)) / 1000;
    return { n: n.node, q, pub: p === undefined || s <= 0 ? '?' : rate(p.published, q.published, s) };
  })).sort((a, b) => b.q.ready + b.q.unacked - (a.q.ready + a.q.unacked)).slice(0, 10);
  return [
    `espresso top: the cluster as ${now.answeredBy} sees it, ${new Date().toISOString().slice(0, 19)}Z, every ${intervalS} s (Ctrl-C ends)`,
    table(['NODE', 'STATUS', 'PUB/S', 'DELIV/S', 'ACK/S', 'CONN', 'CHAN', 'CONS', 'QUEUES', 'READY', 'UNACKED', 'LEADS', 'MAXLAG', 'RSS MB', 'HEAP MB', 'LOOP BUSY', 'LOOP P99 MS', 'ALARMS'], rows),
    `peers: ${peers.join('   ') || '-'}`,
    '',
    queues.length === 0 ? '(no queues)\n' : table(['VHOST', 'QUEUE', 'LEADER', 'READY', 'UNACKED', 'CONSUMERS', 'PUB/S', 'MAXLAG'],
      queues.map(({ n, q, pub }) => [q.vhost, q.name, n, String(q.ready), String(q.unacked), String(q.consumers), pub, String(q.maxLag)])),
  ].join('\n');
}
