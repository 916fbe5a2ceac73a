// `espresso ctl`: asks a running node, through its cluster port and the cluster secret, for the
// cluster's status or to add or forget a node. Any node answers; changes go to the meta leader.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withRemoteNode } from '../cluster/control-client.js';
import { CtlMethod, type ClusterStatus, type PolicyChangeAnswer, type SetPolicyRequest } from '../cluster/control-service.js';
import type { PolicyRecord } from '../model/index.js';
import type { QueueListing } from '../cluster/queue-listing.js';
import { MembershipMethod, type MembershipReport } from '../cluster/queue-membership.js';
import { decodeJson, encodeJson } from '../cluster/metadata-entries.js';
import { isOperatingError, OperatingErrorCode } from '../lib/errors.js';
import { ConfigError, ExitCode } from './config-loader.js';
import { clusterTlsOf, parseNodeAddress } from './node-cluster.js';
import { readinessMethods, type DrainAnswer, type Readiness } from '../cluster/node-readiness.js';
import { intFlag, parseSmallFlags, type SmallArgs } from './small-flags.js';
import { accessFlags, accessHelp, accessRequest, formatAccess } from './ctl-access.js';
import { AccessMethod } from '../cluster/access-service.js';
import { definitionsFlags, definitionsHelp, definitionsRequest, printDefinitions } from './ctl-definitions.js';
import { DefinitionsMethod } from '../http/api-definitions.js';
import { isObserveCommand, observeCtlHelp, runObserveCtl } from './ctl-observe.js';

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
  set-vhost-limits DEFINITION   a vhost's limits, replacing all of them (JSON: max-connections,
                              max-queues; negative = none; '{}' clears) [--vhost /]
  set-user-limits USER DEFINITION  a user's limits, replacing all of them (JSON: max-connections,
                              max-channels); in force on every node when answered
  reload-tls                  the node asked re-reads its client TLS certificate, key and CA
                              files (as SIGHUP does): new connections get them
  set-policy NAME PATTERN DEFINITION   set a policy (DEFINITION: JSON, e.g. '{"max-length":5}'; keys
                              message-ttl, expires, max-length, max-length-bytes, overflow,
                              dead-letter-exchange, dead-letter-routing-key, delivery-limit,
                              consumer-timeout, alternate-exchange); running queues take it at once
                              [--vhost /] [--priority 0] [--apply-to queues|exchanges|all]
  clear-policy NAME           remove a policy [--vhost /]
  list-policies               the policies of every vhost, or of --vhost
  grow NODE                   add NODE to the replica set of every replicated queue not on it (a
                              learner that catches up, then a voter) [--vhost-pattern RE]
                              [--queue-pattern RE]; per queue what happened, exit 1 if any failed
  shrink NODE                 remove NODE from every queue's replica set (a queue keeps at least
                              one replica) [--vhost-pattern RE] [--queue-pattern RE]
  ready                       is the node asked ready: metadata and each of its queues has a leader,
                              its follower replicas hold the leader's commits (exit 0; 1 with the
                              reasons when not: a readiness probe)
${accessHelp}${definitionsHelp}  drain [NODE]                NODE (default: the node asked) hands every queue and the metadata
                              group it leads to another node, before it is stopped for an upgrade
                              (exit 1 if it still leads some after --drain-timeout ms [60000])
${observeCtlHelp}
Flags:
  --cluster-address <[id@]host:port>  cluster port of any node [127.0.0.1:25672]
  --cluster-secret <secret>       the cluster secret [ESPRESSO_CLUSTER_SECRET]
  --data-dir <dir>                read the secret from <dir>/cluster-secret instead
  --cluster-tls-cert/-key/-ca <file>  mutual TLS files, when the cluster port uses TLS [ESPRESSO_CLUSTER_TLS_*]
  --timeout <ms>                  per step [5000]
  --json                          print the answer as JSON
  --help                          show this help
Exit codes: 0 ok, 1 refused by the cluster, 64 bad command line, 69 node unreachable or wrong secret.
`;

export async function runCtl(argv: readonly string[], env: Record<string, string | undefined>): Promise<number> {
  if (!argv.includes('--help') && !argv.includes('-h') && isObserveCommand(argv)) return runObserveCtl(argv, env, ctlSecret);
  const args = parseSmallFlags('ctl', argv, ['--cluster-address', '--cluster-secret', '--data-dir', '--timeout', '--cluster-tls-cert', '--cluster-tls-key', '--cluster-tls-ca', ...policyFlags, ...membershipFlags, ...accessFlags, '--drain-timeout'], ['--json', ...definitionsFlags]);
  if (args.help) {
    process.stdout.write(ctlHelp);
    return ExitCode.Ok;
  }
  const [command, arg, ...extra] = args.words;
  const defs = command === undefined ? undefined : definitionsRequest(command, args);
  const policy = command === undefined ? undefined : defs ?? policyRequest(command, args) ?? accessRequest(command, args);
  if (command === undefined || (policy === undefined && !command.endsWith('-limits') && extra.length > 0)) throw new ConfigError(`espresso ctl: give one command; see 'espresso ctl --help'`, ExitCode.Usage);
  const request = policy ?? limitsRequest(command, args) ?? membershipRequest(command, arg, args) ?? readinessRequest(command, arg, args) ?? ctlRequest(command, arg);
  const target = parseNodeAddress(args.flags.get('--cluster-address') ?? '127.0.0.1:25672', '--cluster-address');
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
    // grow/shrink answer when every queue is done (each bounded on the node): the call waits that
    // long, after a quick status call found the node (the long bound covers finding it too).
    const long = request.method === MembershipMethod.grow || request.method === MembershipMethod.shrink || request.method === readinessMethods.drain || request.method === DefinitionsMethod.apply;
    if (long) await withRemoteNode({ address: target.address, secret, timeoutMs, ...known }, (call) => call(CtlMethod.status, encodeJson({})));
    const callMs = request.method === readinessMethods.drain ? (request.payload as { timeoutMs: number }).timeoutMs + 15_000 : long ? Math.max(timeoutMs, membershipCallMs) : timeoutMs;
    answer = await withRemoteNode({ address: target.address, secret, timeoutMs: callMs, ...known }, (call) => call(request.method, encodeJson(request.payload)));
  } catch (e) {
    if (!isOperatingError(e)) throw e;
    const reach = e.code === OperatingErrorCode.Unreachable || e.code === OperatingErrorCode.PermissionDenied || e.code === OperatingErrorCode.Timeout;
    process.stderr.write(`espresso ctl: ${reach ? '' : 'refused: '}${e.message}\n`);
    return reach ? ExitCode.Unavailable : ExitCode.Failure;
  }
  const value = decodeJson<unknown>(answer);
  if (defs !== undefined) return printDefinitions(defs, value, command, json);
  if (request.method === MembershipMethod.grow || request.method === MembershipMethod.shrink) {
    const report = value as MembershipReport;
    process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatMembership(report));
    return report.failed > 0 ? ExitCode.Failure : ExitCode.Ok;
  }
  if (request.method === readinessMethods.ready || request.method === readinessMethods.drain) return printReadiness(request.method, value, json);
  if (!json && (request.method === AccessMethod.change || request.method === AccessMethod.list)) process.stdout.write(formatAccess(request as Parameters<typeof formatAccess>[0], value, formatTable));
  else if (json || request.method === CtlMethod.rebalance) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else if (request.method === CtlMethod.listQueues) process.stdout.write(formatQueues(value as QueueListing[]));
  else if (request.method === CtlMethod.listPolicies) process.stdout.write(formatPolicies(value as PolicyRecord[]));
  else if (request.method === CtlMethod.setVhostLimits || request.method === CtlMethod.setUserLimits) process.stdout.write('ok: in force on every node\n');
  else if (request.method === CtlMethod.reloadTls) process.stdout.write(`ok: new connections get ${(value as { subject: string }).subject} (sha256 ${(value as { fingerprint256: string }).fingerprint256}), valid to ${(value as { validTo: string }).validTo}\n`);
  else if (request.method === CtlMethod.setPolicy || request.method === CtlMethod.clearPolicy) process.stdout.write(formatPolicyChange(value as PolicyChangeAnswer));
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
    case 'reload-tls': return { method: CtlMethod.reloadTls, payload: {} };
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

const membershipFlags = ['--vhost-pattern', '--queue-pattern'] as const;
const membershipCallMs = 30 * 60_000;

/** grow NODE / shrink NODE (undefined for other commands). */
function membershipRequest(command: string, arg: string | undefined, args: SmallArgs): { method: string; payload: unknown } | undefined {
  if (command !== 'grow' && command !== 'shrink') return undefined;
  if (arg === undefined) throw new ConfigError(`espresso ctl ${command} needs a node id`, ExitCode.Usage);
  const vhostPattern = args.flags.get('--vhost-pattern');
  const queuePattern = args.flags.get('--queue-pattern');
  const payload = { node: arg, ...(vhostPattern !== undefined ? { vhostPattern } : {}), ...(queuePattern !== undefined ? { queuePattern } : {}) };
  return { method: MembershipMethod[command], payload };
}

/** grow/shrink: a line per queue, then the summary. */
export function formatMembership(r: MembershipReport): string {
  const rows = r.results.map((q) => [q.vhost, q.name, q.outcome, q.members.join(',') || '?', q.detail]);
  return formatTable(['VHOST', 'QUEUE', 'OUTCOME', 'MEMBERS', 'DETAIL'], rows) + `${r.summary}\n`;
}

const policyFlags = ['--vhost', '--priority', '--apply-to'] as const;

/**
 * set-policy, clear-policy, list-policies (undefined for other commands). A definition that is not
 * a JSON object fails here (exit 1); its keys and values are checked by the cluster, which refuses
 * an unknown key or a bad value naming it (exit 1 too).
 */
function policyRequest(command: string, args: SmallArgs): { method: string; payload: unknown } | undefined {
  const words = args.words.slice(1);
  const vhost = args.flags.get('--vhost');
  const arity = (n: number, usage: string): void => {
    if (words.length !== n) throw new ConfigError(`espresso ctl ${command} needs ${usage}`, ExitCode.Usage);
  };
  switch (command) {
    case 'list-policies':
      arity(0, 'no argument (and --vhost to show one vhost)');
      return { method: CtlMethod.listPolicies, payload: vhost === undefined ? {} : { vhost } };
    case 'clear-policy':
      arity(1, 'NAME');
      return { method: CtlMethod.clearPolicy, payload: { vhost: vhost ?? '/', name: words[0]! } };
    case 'set-policy': {
      arity(3, 'NAME PATTERN DEFINITION (DEFINITION a JSON object)');
      const applyTo = args.flags.get('--apply-to') ?? 'queues';
      if (applyTo !== 'queues' && applyTo !== 'exchanges' && applyTo !== 'all') {
        throw new ConfigError(`flag --apply-to: expected queues, exchanges or all, got '${applyTo}'`, ExitCode.Usage);
      }
      const request: SetPolicyRequest = {
        vhost: vhost ?? '/', name: words[0]!, pattern: words[1]!, definition: policyDefinition(words[2]!),
        priority: intFlag(args, '--priority', 0, 0, 1_000_000_000), applyTo,
      };
      return { method: CtlMethod.setPolicy, payload: request };
    }
    default: return undefined;
  }
}

const limitKeys = {
  vhost: { 'max-connections': 'maxConnections', 'max-queues': 'maxQueues' },
  user: { 'max-connections': 'maxConnections', 'max-channels': 'maxChannels' },
} as const;

/**
 * set-vhost-limits DEFINITION [--vhost /], set-user-limits USER DEFINITION, as rabbitmqctl: the
 * definition (a JSON object of integers, negative = no limit) replaces all of the vhost's or the
 * user's limits; '{}' clears them. Undefined for other commands.
 */
function limitsRequest(command: string, args: SmallArgs): { method: string; payload: unknown } | undefined {
  if (command !== 'set-vhost-limits' && command !== 'set-user-limits') return undefined;
  const of = command === 'set-vhost-limits' ? 'vhost' : 'user';
  const words = args.words.slice(1);
  if (words.length !== (of === 'vhost' ? 1 : 2)) {
    throw new ConfigError(`espresso ctl ${command} needs ${of === 'vhost' ? "DEFINITION (e.g. '{\"max-connections\":100}') [--vhost /]" : "USER DEFINITION (e.g. '{\"max-channels\":50}')"}`, ExitCode.Usage);
  }
  const definition = policyDefinition(words[words.length - 1]!, command);
  const keys: Record<string, string> = limitKeys[of];
  const payload: Record<string, unknown> = Object.fromEntries(Object.values(keys).map((k) => [k, null]));
  for (const [key, value] of Object.entries(definition)) {
    const field = keys[key];
    if (field === undefined) throw new ConfigError(`espresso ctl ${command}: '${key}' is not a ${of} limit; known: ${Object.keys(keys).join(', ')}`, ExitCode.Failure);
    if (!Number.isSafeInteger(value)) throw new ConfigError(`espresso ctl ${command}: '${key}' must be an integer, got ${JSON.stringify(value)}`, ExitCode.Failure);
    payload[field] = (value as number) < 0 ? null : value;
  }
  if (of === 'vhost') return { method: CtlMethod.setVhostLimits, payload: { vhost: args.flags.get('--vhost') ?? '/', ...payload } };
  return { method: CtlMethod.setUserLimits, payload: { user: words[0]!, ...payload } };
}

function policyDefinition(text: string, command = 'set-policy'): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`espresso ctl ${command}: the definition is not valid JSON (${(e as Error).message}): ${text}`, ExitCode.Failure);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`espresso ctl ${command}: the definition must be a JSON object such as '{"max-length":5}', got ${text}`, ExitCode.Failure);
  }
  return value as Record<string, unknown>;
}

export function formatPolicies(rows: readonly PolicyRecord[]): string {
  const table = rows.map((p) => [p.vhost, p.name, p.pattern, p.applyTo, String(p.priority), JSON.stringify(p.definition)]);
  return formatTable(['VHOST', 'NAME', 'PATTERN', 'APPLY-TO', 'PRIORITY', 'DEFINITION'], table) + (rows.length === 0 ? '(no policies)\n' : '');
}

function formatPolicyChange(a: PolicyChangeAnswer): string {
  return a.changedQueues.length === 0 ? 'ok (no queue changed its settings)\n' : `ok; queues with new settings: ${a.changedQueues.join(', ')}\n`;
}

/** ready / drain NODE (undefined for other commands). */
function readinessRequest(command: string, arg: string | undefined, args: SmallArgs): { method: string; payload: unknown } | undefined {
  if (command === 'ready') {
    if (arg !== undefined) throw new ConfigError('espresso ctl ready takes no argument: it asks the node at --cluster-address about itself', ExitCode.Usage);
    return { method: readinessMethods.ready, payload: {} };
  }
  if (command !== 'drain') return undefined;
  return { method: readinessMethods.drain, payload: { node: arg ?? '', timeoutMs: intFlag(args, '--drain-timeout', 60_000, 1_000, 600_000) } };
}

/** ready: exit 0 when ready, 1 with the reasons when not; drain: exit 1 when the node still leads groups. */
function printReadiness(method: string, value: unknown, json: boolean): number {
  if (method === readinessMethods.ready) {
    const r = value as Readiness;
    if (json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else if (r.ready) process.stdout.write(`ready: node ${r.node} (${r.replicas} queue replicas, leading ${r.leading})\n`);
    else process.stdout.write(`not ready: node ${r.node}\n${r.reasons.map((x) => `  ${x}\n`).join('')}`);
    return r.ready ? ExitCode.Ok : ExitCode.Failure;
  }
  const d = value as DrainAnswer;
  if (json) process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
  else {
    process.stdout.write(`${d.stillLeading.length === 0 ? 'drained' : 'not fully drained'}: node ${d.node} in ${d.durationMs} ms\n`);
    for (const m of d.moved) process.stdout.write(`  moved ${m}\n`);
    for (const g of d.stillLeading) process.stdout.write(`  still leads ${g}\n`);
  }
  return d.stillLeading.length === 0 ? ExitCode.Ok : ExitCode.Failure;
}
