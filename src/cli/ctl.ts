// `espresso ctl`: asks a running node, through its cluster port and the cluster secret, for the
// cluster's status or to add or forget a node. Any node answers; changes go to the meta leader.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withRemoteNode } from '../cluster/control-client.js';
import { CtlMethod, type ClusterStatus } from '../cluster/control-service.js';
import type { QueueListing } from '../cluster/queue-listing.js';
import { decodeJson, encodeJson } from '../cluster/metadata-entries.js';
import { isOperatingError, OperatingErrorCode } from '../lib/errors.js';
import { ConfigError, ExitCode } from './config-loader.js';
import { clusterTlsOf, parseNodeAddress } from './node-cluster.js';
import { intFlag, parseSmallFlags } from './small-flags.js';

export const ctlHelp = `Usage: espresso ctl [flags] <command> [argument]

Commands:
  cluster-status              nodes (addresses, alive/suspect/dead, version, groups led), the
                              metadata leader and its voters, as the node asked sees them
  add-node ID@HOST:PORT       record a node and add it to the metadata group (it still starts
                              with 'espresso server --join')
  forget-node ID              drop a node from the registry and the metadata group
  list-queues                 replicated queues: leader, members, ready, unacked, consumers,
                              commit index and each follower's lag
  rebalance                   hand every queue back to its preferred leader (placement's first
                              replica) where that node is up

Flags:
  --cluster-address <[id@]host:port>  cluster port of any node [127.0.0.1:15672]
  --cluster-secret <secret>       the cluster secret [ESPRESSO_CLUSTER_SECRET]
  --data-dir <dir>                read the secret from <dir>/cluster-secret instead
  --cluster-tls-cert/-key/-ca <file>  mutual TLS files, when the cluster port uses TLS [ESPRESSO_CLUSTER_TLS_*]
  --timeout <ms>                  per step [5000]
  --json                          print the answer as JSON
  --help                          show this help
Exit codes: 0 ok, 1 refused by the cluster, 64 bad command line, 69 node unreachable or wrong secret.
`;

export async function runCtl(argv: readonly string[], env: Record<string, string | undefined>): Promise<number> {
  const args = parseSmallFlags('ctl', argv, ['--cluster-address', '--cluster-secret', '--data-dir', '--timeout', '--cluster-tls-cert', '--cluster-tls-key', '--cluster-tls-ca'], ['--json']);
  if (args.help) {
    process.stdout.write(ctlHelp);
    return ExitCode.Ok;
  }
  const [command, arg, ...extra] = args.words;
  if (command === undefined || extra.length > 0) throw new ConfigError(`espresso ctl: give one command; see 'espresso ctl --help'`, ExitCode.Usage);
  const request = ctlRequest(command, arg);
  const target = parseNodeAddress(args.flags.get('--cluster-address') ?? '127.0.0.1:15672', '--cluster-address');
  const secret = ctlSecret(args.flags.get('--cluster-secret') ?? env['ESPRESSO_CLUSTER_SECRET'], args.flags.get('--data-dir'));
  const timeoutMs = intFlag(args, '--timeout', 5_000, 100, 600_000);
  const json = args.flags.get('--json') === 'true';
  let answer: Uint8Array;
  try {
    const tls = clusterTlsOf({
      clusterTlsCert: args.flags.get('--cluster-tls-cert') ?? env['ESPRESSO_CLUSTER_TLS_CERT'] ?? '',
      clusterTlsKey: args.flags.get('--cluster-tls-key') ?? env['ESPRESSO_CLUSTER_TLS_KEY'] ?? '',
      clusterTlsCa: args.flags.get('--cluster-tls-ca') ?? env['ESPRESSO_CLUSTER_TLS_CA'] ?? '',
    });
    const known = { ...(target.id !== undefined ? { nodeId: target.id } : {}), ...(tls !== undefined ? { tls } : {}) };
    answer = await withRemoteNode({ address: target.address, secret, timeoutMs, ...known }, (call) => call(request.method, encodeJson(request.payload)));
  } catch (e) {
    if (!isOperatingError(e)) throw e;
    const reach = e.code === OperatingErrorCode.Unreachable || e.code === OperatingErrorCode.PermissionDenied || e.code === OperatingErrorCode.Timeout;
    process.stderr.write(`espresso ctl: ${reach ? '' : 'refused: '}${e.message}\n`);
    return reach ? ExitCode.Unavailable : ExitCode.Failure;
  }
  const value = decodeJson<unknown>(answer);
  if (json || request.method === CtlMethod.rebalance) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else if (request.method === CtlMethod.listQueues) process.stdout.write(formatQueues(value as QueueListing[]));
  else process.stdout.write(formatStatus(value as ClusterStatus));
  return ExitCode.Ok;
}

function ctlRequest(command: string, arg: string | undefined): { method: string; payload: unknown } {
  const need = (what: string): string => {
    if (arg === undefined) throw new ConfigError(`espresso ctl ${command} needs ${what}`, ExitCode.Usage);
    return arg;
  };
  switch (command) {
    case 'cluster-status': return { method: CtlMethod.status, payload: {} };
    case 'list-queues': return { method: CtlMethod.listQueues, payload: {} };
    case 'rebalance': return { method: CtlMethod.rebalance, payload: {} };
    case 'forget-node': return { method: CtlMethod.forgetNode, payload: { id: need('a node id') } };
    case 'add-node': {
      const a = parseNodeAddress(need('ID@HOST:PORT'), 'add-node');
      if (a.id === undefined) throw new ConfigError('espresso ctl add-node needs ID@HOST:PORT (the id too)', ExitCode.Usage);
      return { method: CtlMethod.addNode, payload: { id: a.id, clusterAddress: a.address } };
    }
    default: throw new ConfigError(`espresso ctl: unknown command '${command}'; see 'espresso ctl --help'`, ExitCode.Usage);
  }
}

function ctlSecret(given: string | undefined, dataDir: string | undefined): string {
  if (given !== undefined && given !== '') return given;
  if (dataDir === undefined) throw new ConfigError('espresso ctl needs the cluster secret: --cluster-secret, ESPRESSO_CLUSTER_SECRET or --data-dir of a node', ExitCode.Usage);
  const path = join(dataDir, 'cluster-secret');
  try {
    const s = readFileSync(path, 'utf8').trim();
    if (s !== '') return s;
  } catch (e) {
    throw new ConfigError(`cannot read the cluster secret '${path}' (${(e as NodeJS.ErrnoException).code ?? 'error'})`, ExitCode.NoInput);
  }
  throw new ConfigError(`the cluster secret file '${path}' is empty`, ExitCode.Config);
}

/** list-queues as a table; lag per follower in entries behind the leader's last index. */
export function formatQueues(rows: readonly QueueListing[]): string {
  const table = rows.map((q) => [
    q.vhost, q.name, q.leader ?? '(none)', q.members.join(','), String(q.ready), String(q.unacked), String(q.consumers),
    String(q.commitIndex), q.followerLag === null ? '?' : Object.entries(q.followerLag).map(([n, lag]) => `${n}:${lag}`).join(' '),
  ]);
  return formatTable(['VHOST', 'QUEUE', 'LEADER', 'MEMBERS', 'READY', 'UNACKED', 'CONSUMERS', 'COMMIT', 'FOLLOWER LAG'], table) + (rows.length === 0 ? '(no replicated queues)\n' : '');
}

function formatTable(head: readonly string[], rows: readonly string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

export function formatStatus(s: ClusterStatus): string {
  const rows = s.nodes.map((n) => [
    n.id, n.status, n.voter ? 'voter' : n.learner ? 'learner' : '-', n.groupsLed === null ? '?' : String(n.groupsLed),
    n.clusterAddress || '?', n.amqpAddress || '?', n.version || '?',
  ]);
  return [
    `cluster status, as node ${s.answeredBy} sees it`,
    ...(s.starting ? ['(still starting: waiting for the metadata group to elect a leader and take this node in)'] : []),
    `metadata leader: ${s.metaLeader ?? 'none'}   voters: ${s.voters.join(',') || '-'}   learners: ${s.learners.join(',') || '-'}`,
    formatTable(['NODE', 'STATUS', 'META', 'LEADS', 'CLUSTER', 'AMQP', 'VERSION'], rows),
  ].join('\n');
}
