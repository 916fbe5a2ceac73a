// The nemesis: fault operations on a ClusterHarness, each of which injects one fault, holds it, heals
// it and returns a record of what it did and when (for the checker's availability and the chart).
// Leaders are preferred as targets when `espresso ctl cluster-status` names one; else a node at random.

import { execFile } from 'node:child_process';
import { closeSync, openSync, readSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { NemesisOp } from './checker.js';
import type { ClusterHarness } from './harness.js';
import { passFault } from './link-proxy.js';

const root = new URL('../', import.meta.url).pathname;
const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

export type NemesisName =
  | 'kill-leader' | 'pause' | 'partition-majority' | 'isolate-leader' | 'one-way'
  | 'flaky-links' | 'rolling-restart' | 'disk-truncate' | 'disk-bitflip' | 'membership' | 'link-down';

export const allNemeses: readonly NemesisName[] = [
  'kill-leader', 'pause', 'partition-majority', 'isolate-leader', 'one-way',
  'flaky-links', 'rolling-restart', 'disk-truncate', 'disk-bitflip', 'membership', 'link-down',
];

/** Operations that need a netns cluster (the kernel's network of hosts). */
export const netnsOnlyNemeses: readonly NemesisName[] = ['link-down'];

export interface NemesisContext {
  harness: ClusterHarness;
  random: () => number;
  /** How long a fault is held before it heals. */
  holdMs: number;
  log: (line: string) => void;
}

export interface NemesisResult extends NemesisOp {
  /** Set when the operation could not run as meant (what happened instead, and why). */
  skipped?: string;
  /** Problems the operation saw (a node that did not come back, ...). */
  problems: string[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function pick<T>(items: readonly T[], random: () => number): T {
  if (items.length === 0) throw new Error('pick from nothing');
  return items[Math.floor(random() * items.length)]!;
}

/** Runs `espresso ctl ...` against a node's cluster port; resolves with stdout (or rejects with stderr). */
export function ctl(h: ClusterHarness, via: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  const argv = [
    '--import', tsxLoader, join(root, 'src/cli/main.ts'), 'ctl',
    '--cluster-address', h.clusterAddress(via), '--cluster-secret', h.secret, ...args,
  ];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, argv, { timeout: timeoutMs, cwd: h.dir }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`ctl ${args.join(' ')} via ${via}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

interface StatusJson {
  metaLeader?: string | null;
  nodes?: Array<{ id: string; groupsLed?: number | null }>;
}

/**
 * The leader to hit, from `ctl cluster-status --json` on a running node: the node leading the most
 * Raft groups (queues and meta), the metadata leader on a tie. Undefined when no node answers.
 */
export async function findLeader(h: ClusterHarness): Promise<string | undefined> {
  const running = h.nodes.filter((n) => n.state === 'running');
  for (const n of running.slice(0, 3)) {
    try {
      const status = JSON.parse(await ctl(h, n.id, ['--timeout', '5000', '--json', 'cluster-status'], 12_000)) as StatusJson;
      const known = (id: string | null | undefined): id is string => typeof id === 'string' && h.nodes.some((x) => x.id === id);
      const led = (status.nodes ?? []).filter((x) => known(x.id) && typeof x.groupsLed === 'number');
      const top = Math.max(0, ...led.map((x) => x.groupsLed!));
      const tops = led.filter((x) => x.groupsLed === top && top > 0).map((x) => x.id);
      if (known(status.metaLeader) && (tops.length === 0 || tops.includes(status.metaLeader))) return status.metaLeader;
      if (tops[0] !== undefined) return tops[0];
    } catch {
      // That node is unwell (or ctl is missing): try the next one, then fall back to chance.
    }
  }
  return undefined;
}

async function leaderOrRandom(c: NemesisContext): Promise<{ id: string; how: string }> {
  const leader = await findLeader(c.harness);
  if (leader !== undefined && c.harness.node(leader).state === 'running') return { id: leader, how: 'leader' };
  const running = c.harness.nodes.filter((n) => n.state === 'running').map((n) => n.id);
  return { id: pick(running, c.random), how: 'random (no leader known)' };
}

/** The first line of an error, and the node's last complaint when there is one. */
function describeFailure(c: NemesisContext, id: string, e: unknown): string {
  const first = (e as Error).message.split('\n')[0] ?? '';
  const complaint = [...c.harness.node(id).log].reverse().find((l) => /"level":"error"|internal error|OperatingError/.test(l));
  return complaint === undefined ? first : `${first} ${complaint.slice(0, 240)}`;
}

/** Starts a node again; a node that does not come back is a finding, not a crash of the run. */
async function restart(c: NemesisContext, id: string, problems: string[]): Promise<boolean> {
  try {
    await c.harness.startNode(id);
    return true;
  } catch (e) {
    problems.push(`${id} did not come back: ${describeFailure(c, id, e)}`);
    c.log(`${id} did not come back: ${(e as Error).message}`);
    return false;
  }
}

/** Starts the nodes left stopped (resuming paused ones); returns those that stay down. */
async function startStopped(c: NemesisContext, problems: string[]): Promise<string[]> {
  const down: string[] = [];
  for (const n of c.harness.nodes) {
    if (n.state === 'paused') c.harness.resume(n.id);
    if (n.state === 'stopped' && !(await restart(c, n.id, problems))) down.push(n.id);
  }
  return down;
}

/** How long a node restarted on damaged data may take to rebuild its damaged groups from its peers. */
const repairWaitMs = 90_000;

/** Groups a node's log says it started rebuilding more often than it finished (see cluster/group-repair.ts). */
function repairsOf(lines: readonly string[]): { started: number; pending: string[] } {
  const count = new Map<string, number>();
  let started = 0;
  for (const l of lines) {
    const start = l.includes('"group repair started: damaged log discarded, rebuilding from peers"');
    if (!start && !l.includes('"group repair finished: voter again"')) continue;
    const group = /"group":"([^"]*)"/.exec(l)?.[1] ?? '?';
    count.set(group, (count.get(group) ?? 0) + (start ? 1 : -1));
    if (start) started++;
  }
  return { started, pending: [...count].filter(([, n]) => n > 0).map(([g]) => g) };
}

/**
 * After a disk fault the node must come back by itself: a cut tail is dropped as a torn write, and
 * a group whose log is damaged mid-way is discarded and rebuilt from its peers (removed, re-added as
 * a learner, caught up, promoted) with no operator step. A node that does not start, or a rebuild
 * that does not finish in time, is a problem.
 */
async function restartDamaged(c: NemesisContext, id: string, problems: string[]): Promise<string> {
  const t0 = Date.now();
  try {
    await c.harness.startNode(id);
  } catch (e) {
    problems.push(`${id} did not recover by itself after a disk fault: ${describeFailure(c, id, e)}`);
    return 'did not come back';
  }
  const deadline = Date.now() + repairWaitMs;
  let r = repairsOf(c.harness.node(id).log);
  for (; r.pending.length > 0 && Date.now() < deadline; r = repairsOf(c.harness.node(id).log)) await sleep(200);
  if (r.pending.length > 0) {
    problems.push(`${id} did not finish rebuilding ${r.pending.join(',')} from its peers within ${repairWaitMs / 1000} s`);
    return `came back, but rebuilding ${r.pending.join(',')} did not finish`;
  }
  if (r.started === 0) return 'came back by itself (no damaged group found: a cut tail is dropped as a torn write)';
  c.log(`${id} rebuilt ${r.started} damaged group(s) from its peers`);
  return `came back by itself; rebuilt ${r.started} damaged group(s) from its peers in ${Date.now() - t0} ms`;
}

/** Damages a stopped node's newest WAL segment: cut its tail, or flip bits in its second half. */
export function damageWal(h: ClusterHarness, id: string, how: 'truncate' | 'bitflip', random: () => number): string {
  const segments = h.walSegments(id);
  const file = segments[segments.length - 1];
  if (file === undefined) return 'no WAL segment to damage';
  const size = statSync(file).size;
  if (how === 'truncate') {
    const keep = Math.floor(size * (0.5 + 0.45 * random()));
    truncateSync(file, keep);
    return `truncated ${file.split('/').pop()} from ${size} to ${keep} bytes`;
  }
  const fd = openSync(file, 'r+');
  const flips: number[] = [];
  try {
    for (let i = 0; i < 8; i++) {
      const at = Math.floor(size / 2 + random() * (size / 2 - 1));
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, at);
      b[0] = b[0]! ^ (1 << Math.floor(random() * 8));
      writeSync(fd, b, 0, 1, at);
      flips.push(at);
    }
  } finally {
    closeSync(fd);
  }
  return `flipped 8 bits of ${file.split('/').pop()} (${size} bytes) at ${flips.sort((a, b) => a - b).join(',')}`;
}

/** What one operation did: its target, or why it could not run as meant. */
interface Done {
  target: string;
  skipped?: string;
}

/** Runs one operation: inject, hold, heal. Always heals, whatever happened in between. */
export async function runNemesis(name: NemesisName, c: NemesisContext): Promise<NemesisResult> {
  const startMs = Date.now();
  const problems: string[] = [];
  const ids = c.harness.nodes.map((n) => n.id);
  // Every operation starts from a whole cluster: a node left down by an earlier one is started
  // first; if it will not start, nothing else is taken down (that could cost the majority).
  const down = await startStopped(c, problems);
  let done: Done;
  if (down.length > 0 && name !== 'pause' && ids.length > 1) {
    done = { target: '-', skipped: `${down.join(',')} still down from an earlier fault; taking another node away could cost the majority` };
  } else if (name === 'link-down') {
    done = c.harness.bed === undefined ? { target: '-', skipped: 'link-down needs a netns cluster (--netns)' } : await linkDown(c);
  } else if (name === 'partition-majority' || name === 'isolate-leader' || name === 'one-way' || name === 'flaky-links') {
    done = ids.length < 2 ? { target: '-', skipped: 'one node: no links to cut' } : await networkFault(name, c, ids);
  } else if (name === 'membership') {
    done = await membership(c, ids, problems);
  } else {
    done = await processFault(name, c, ids, problems);
  }
  return { name, startMs, endMs: Date.now(), problems, ...done };
}

/** `ip link set eth0 down` on the leader's host for the hold time, then up again. */
async function linkDown(c: NemesisContext): Promise<Done> {
  const t = await leaderOrRandom(c);
  c.harness.linkDown(t.id);
  await sleep(c.holdMs);
  c.harness.heal();
  return { target: `${t.id} link down (${t.how})` };
}

async function networkFault(name: NemesisName, c: NemesisContext, ids: readonly string[]): Promise<Done> {
  const h = c.harness;
  let target: string;
  if (name === 'partition-majority') {
    const shuffled = [...ids].sort(() => c.random() - 0.5);
    const minority = shuffled.slice(0, Math.max(1, Math.floor((ids.length - 1) / 2)));
    const majority = shuffled.filter((x) => !minority.includes(x));
    h.partition(minority, majority);
    target = `${minority.join(',')} | ${majority.join(',')}`;
  } else if (name === 'isolate-leader') {
    const t = await leaderOrRandom(c);
    h.partition([t.id], ids.filter((x) => x !== t.id));
    target = `${t.id} (${t.how})`;
  } else if (name === 'one-way') {
    // The target hears everyone but nobody hears it (a leader that cannot reach its followers).
    const t = await leaderOrRandom(c);
    for (const o of ids) if (o !== t.id) h.setLinkFault(t.id, o, { ...passFault, stall: true });
    target = `${t.id} -/-> others (${t.how})`;
  } else {
    // Every link delayed 20-60 ms and resetting on 1 chunk in 200: lossy, slow, but connected.
    for (const a of ids) {
      for (const b of ids) {
        if (a !== b) h.setLinkFault(a, b, { stall: false, delayMs: 20 + Math.floor(c.random() * 40), resetProbability: 0.005 });
      }
    }
    target = 'all links';
  }
  await sleep(c.holdMs);
  h.heal();
  return { target };
}

async function processFault(name: NemesisName, c: NemesisContext, ids: readonly string[], problems: string[]): Promise<Done> {
  const h = c.harness;
  if (name === 'kill-leader' || name === 'pause') {
    const t = await leaderOrRandom(c);
    if (name === 'kill-leader') await h.kill(t.id);
    else h.pause(t.id);
    await sleep(c.holdMs);
    if (name === 'kill-leader') await restart(c, t.id, problems);
    else h.resume(t.id);
    return { target: `${t.id} (${t.how})` };
  }
  if (name === 'rolling-restart') {
    for (const id of ids) {
      await h.kill(id);
      await restart(c, id, problems);
    }
    return { target: ids.join(',') };
  }
  // disk-truncate, disk-bitflip
  if (ids.length < 3) return { target: '-', skipped: 'disk faults need a majority of healthy nodes (3+ nodes)' };
  const leader = await findLeader(h);
  const t = pick(ids.filter((x) => x !== leader && h.node(x).state === 'running'), c.random);
  await h.kill(t);
  const what = damageWal(h, t, name === 'disk-truncate' ? 'truncate' : 'bitflip', c.random);
  c.log(`${t}: ${what}`);
  const outcome = await restartDamaged(c, t, problems);
  await sleep(c.holdMs);
  return { target: `${t}: ${what}; ${outcome}` };
}

/** forget-node then add-node of a follower while the load runs (needs `espresso ctl`). */
async function membership(c: NemesisContext, ids: readonly string[], problems: string[]): Promise<Done> {
  const h = c.harness;
  if (ids.length < 3) return { target: '-', skipped: 'membership changes need 3+ nodes' };
  const leader = await findLeader(h);
  const t = pick(ids.filter((x) => x !== leader), c.random);
  const via = ids.find((x) => x !== t && h.node(x).state === 'running') ?? ids[0]!;
  try {
    await ctl(h, via, ['forget-node', t]);
    await h.kill(t);
    await sleep(c.holdMs);
    await ctl(h, via, ['add-node', `${t}@${h.clusterAddress(t)}`]);
    await restart(c, t, problems);
    return { target: `${t} forgotten and added back via ${via}` };
  } catch (e) {
    if (h.node(t).state === 'stopped') await restart(c, t, problems);
    return { target: t, skipped: `ctl failed: ${(e as Error).message.split('\n')[0]}` };
  }
}
