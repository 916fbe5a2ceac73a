// A cluster of real `espresso server` processes for the fault suite, on one of two networks:
// - loopback (default): free ports, a LinkProxy per dialed link (node X's --seeds names, for every
//   other node Y, the proxy X->Y), faults made by the proxies;
// - netns: one network namespace per node on a bridge (cluster/netns.ts), each node on its own
//   address, faults made by the kernel (iptables drops and loss, tc netem where the kernel has it,
//   ip link down); clients reach the nodes from the root namespace as another host would.
// Either way: a data dir each under one temp dir, directed faults between nodes, process control
// (kill -9, restart, SIGSTOP/SIGCONT, WAL damage). A watchdog process kills the nodes if this
// process dies first.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hostPort } from '../src/cli/addresses.js';
import { TestDnsServer } from './dns-server.js';
import { startWatchdog } from './watchdog.js';
import { freePort } from './ports.js';
import { LinkProxy, passFault, type DirectionFault } from './link-proxy.js';
import { bedSupport, HostBed, type BedHost } from './netns.js';

export { freePort };

const root = new URL('../', import.meta.url).pathname;
const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

export interface HarnessOptions {
  nodes: number;
  /** Seeded uniform [0, 1) source for proxy resets and WAL damage. */
  random: () => number;
  /** Run dist/src/cli/main.js (built) instead of the sources through tsx. */
  useDist?: boolean;
  /** Log lines of each node kept in memory (all of them go to <dir>/<id>.log). */
  logLinesKept?: number;
  startTimeoutMs?: number;
  logLevel?: 'debug' | 'info' | 'warn';
  /** Keep the temp dir after close (for a chaos run's logs). */
  keepDir?: boolean;
  /** One network namespace per node instead of loopback and proxies (needs root; see netns.ts). */
  netns?: boolean;
  /** On a netns cluster: the nodes bind, seed and serve on their IPv6 addresses. */
  ipv6?: boolean;
  /**
   * On a netns cluster: the nodes find each other by DNS (--discover-dns) instead of --seeds, asking
   * a DNS server this harness runs on the bridge's address, where the name resolves to every host.
   */
  dnsDiscovery?: boolean;
}

/** The name a DNS-discovering cluster resolves to find its nodes. */
export const discoveryName = 'espresso-nodes.test';

/** The AMQP user of a netns cluster (guest may only log in from loopback, and clients are on another host there). */
export const netnsUser = { name: 'espresso', pass: 'espresso-fault' } as const;

export type NodeState = 'running' | 'stopped' | 'paused';

export interface NodeHandle {
  readonly id: string;
  readonly amqpPort: number;
  readonly clusterPort: number;
  readonly dataDir: string;
  state: NodeState;
  child: ChildProcess | undefined;
  exited: Promise<number | null> | undefined;
  /** The last log lines (JSON lines from the node, and its stderr). */
  log: string[];
  /** How many times it was started. */
  starts: number;
  /** Its host in a netns cluster. */
  host: BedHost | undefined;
  /** --join value instead of --seeds (a node added after the cluster formed). */
  join: string | undefined;
  /** --bind other than its host's address (netns: e.g. 0.0.0.0, advertising its address by default). */
  bind: string | undefined;
}

/** What marks a node ready for clients: the broker's line (issue 8 contract) or today's 'node started'. */
const readyRe = /"(?:msg|event)":"(?:broker listening|node started)"/;

export class ClusterHarness {
  readonly nodes: NodeHandle[] = [];
  /** proxies.get(`${dialer}>${target}`) */
  private readonly proxies = new Map<string, LinkProxy>();
  /** Directed faults: faults.get(`${from}>${to}`) applies to bytes from `from` to `to`. */
  private readonly faults = new Map<string, DirectionFault>();
  private readonly logs = new Map<string, WriteStream>();
  private readonly watchdog: ChildProcess;
  readonly secret = 'fault-suite-secret';
  private closed = false;
  private readonly onExit = (): void => this.killAllSync();
  /** The hosts of a netns cluster. */
  readonly bed: HostBed | undefined;
  /** The DNS server of a cluster that discovers its peers by DNS. */
  dns: TestDnsServer | undefined;

  private constructor(readonly dir: string, private readonly options: HarnessOptions) {
    this.watchdog = startWatchdog();
    process.once('exit', this.onExit);
    if (options.netns === true) {
      const support = bedSupport();
      if (!support.ok) throw new Error(`cannot run a netns cluster here: ${support.reason}`);
      this.bed = HostBed.create(0);
    }
  }

  /** Allocates ports, starts the proxies and every node, and waits until all are ready. */
  static async start(options: HarnessOptions): Promise<ClusterHarness> {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-fault-'));
    const h = new ClusterHarness(dir, options);
    try {
      for (let i = 1; i <= options.nodes; i++) await h.addHandle(undefined);
      if (options.dnsDiscovery === true) {
        if (h.bed === undefined) throw new Error('dnsDiscovery needs a netns cluster');
        h.dns = await TestDnsServer.start(h.bed.gatewayIp);
        h.dns.records.set(discoveryName, h.nodes.map((n) => h.addressOf(n.id)));
      }
      for (const a of h.bed === undefined ? h.nodes : []) {
        for (const b of h.nodes) {
          if (a === b) continue;
          h.proxies.set(`${a.id}>${b.id}`, await LinkProxy.start({ targetHost: '127.0.0.1', targetPort: b.clusterPort, random: options.random }));
        }
      }
      await Promise.all(h.nodes.map((n) => h.startNode(n.id)));
    } catch (e) {
      await h.close();
      throw e;
    }
    return h;
  }

  /** A new node handle (on a new host in a netns cluster), not started. */
  private async addHandle(joinVia: string | undefined, bind?: string): Promise<NodeHandle> {
    const id = `n${this.nodes.length + 1}`;
    const dataDir = join(this.dir, id);
    mkdirSync(dataDir, { recursive: true });
    const host = this.bed?.addHost();
    // In its own namespace every node has every port to itself: the defaults (5672, HTTP 15672 and
    // the cluster port 25672) are used, as on a real host.
    const n: NodeHandle = {
      id, amqpPort: host !== undefined ? 5672 : await freePort(), clusterPort: host !== undefined ? 25672 : await freePort(), dataDir,
      state: 'stopped', child: undefined, exited: undefined, log: [], starts: 0, host, join: joinVia, bind,
    };
    this.nodes.push(n);
    return n;
  }

  /** Adds a node that joins the running cluster through `via` (--join), bound to `bind` or its host's address; netns clusters only. */
  async joinNode(via: string, bind?: string): Promise<NodeHandle> {
    if (this.bed === undefined) throw new Error('joinNode needs a netns cluster');
    const n = await this.addHandle(this.clusterAddress(via), bind);
    await this.startNode(n.id);
    return n;
  }

  /** Where clients and other hosts reach the node. */
  addressOf(id: string): string {
    const host = this.node(id).host;
    if (host === undefined) return '127.0.0.1';
    return this.options.ipv6 === true ? host.ip6 : host.ip;
  }

  /** host:port of the node's cluster port, as ctl dials it. */
  clusterAddress(id: string): string {
    return hostPort(this.addressOf(id), this.node(id).clusterPort);
  }

  node(id: string): NodeHandle {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  amqpUrl(id: string): string {
    const user = this.bed !== undefined ? `${netnsUser.name}:${netnsUser.pass}` : 'guest:guest';
    return `amqp://${user}@${hostPort(this.addressOf(id), this.node(id).amqpPort)}`;
  }

  /** The --seeds value node `self` starts with: itself directly, every other node through its proxy (netns: at its host). */
  seedsFor(self: string): string {
    if (this.bed !== undefined) return this.nodes.filter((n) => n.join === undefined).map((n) => `${n.id}@${this.clusterAddress(n.id)}`).join(',');
    return this.nodes
      .map((n) => n.id === self
        ? `${n.id}@127.0.0.1:${n.clusterPort}`
        : `${n.id}@127.0.0.1:${this.proxies.get(`${self}>${n.id}`)!.port}`)
      .join(',');
  }

  private argsFor(n: NodeHandle): string[] {
    const main = this.options.useDist === true ? [join(root, 'dist/src/cli/main.js')] : ['--import', tsxLoader, join(root, 'src/cli/main.ts')];
    const args = [
      ...main, 'server', '--node-id', n.id, '--node-name', n.id,
      '--port', String(n.amqpPort), '--cluster-port', String(n.clusterPort), ...(n.host !== undefined ? [] : ['--http-port', '0']),
      '--data-dir', n.dataDir, '--cluster-secret', this.secret,
      '--log-level', this.options.logLevel ?? 'info',
    ];
    if (n.host !== undefined) args.push('--bind', n.bind ?? this.addressOf(n.id), '--default-user', netnsUser.name, '--default-pass', netnsUser.pass);
    if (n.join !== undefined) args.push('--join', n.join);
    else if (this.dns !== undefined) args.push('--discover-dns', discoveryName, '--discover-nodes', String(this.options.nodes), '--dns-server', this.dns.address);
    else if (this.nodes.length > 1) args.push('--seeds', this.seedsFor(n.id));
    return args;
  }

  /** Starts a stopped node and resolves once it logs that the broker listens. */
  async startNode(id: string): Promise<void> {
    const n = this.node(id);
    if (n.state !== 'stopped') throw new Error(`${id} is ${n.state}`);
    const logFile = this.logs.get(id) ?? createWriteStream(join(this.dir, `${id}.log`), { flags: 'a' });
    this.logs.set(id, logFile);
    const options = { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
    const child = n.host !== undefined && this.bed !== undefined
      ? this.bed.spawn(n.host.name, process.execPath, this.argsFor(n), options)
      : spawn(process.execPath, this.argsFor(n), options);
    n.child = child;
    n.state = 'running';
    n.starts += 1;
    this.watchdog.stdin?.write(`+${child.pid}\n`);
    const kept = this.options.logLinesKept ?? 400;
    let ready: () => void = () => {};
    const readyP = new Promise<void>((r) => { ready = r; });
    let partial = '';
    const onChunk = (chunk: Buffer): void => {
      logFile.write(chunk);
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        n.log.push(line);
        if (readyRe.test(line)) ready();
      }
      if (n.log.length > kept) n.log.splice(0, n.log.length - kept);
    };
    child.stdout!.on('data', onChunk);
    child.stderr!.on('data', onChunk);
    n.exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => {
      this.watchdog.stdin?.write(`-${child.pid}\n`);
      if (n.child === child) {
        n.state = 'stopped';
        n.child = undefined;
      }
      resolve(code ?? (signal !== null ? -1 : null));
    }));
    const timeoutMs = this.options.startTimeoutMs ?? 45_000;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      readyP.then(() => 'ready' as const),
      n.exited.then((code) => `exited with ${code}` as const),
      new Promise<string>((r) => { timer = setTimeout(() => r(`not ready after ${timeoutMs} ms`), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (outcome !== 'ready') {
      throw new Error(`node ${id} ${outcome}:\n${n.log.slice(-30).join('\n')}`);
    }
  }

  /** kill -9; resolves once the process is gone. */
  async kill(id: string): Promise<void> {
    const n = this.node(id);
    if (n.child === undefined) return;
    const exited = n.exited;
    n.child.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM (a clean stop), SIGKILL after graceMs. */
  async stop(id: string, graceMs = 10_000): Promise<void> {
    const n = this.node(id);
    const child = n.child;
    if (child === undefined) return;
    if (n.state === 'paused') child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await n.exited;
    clearTimeout(timer);
  }

  pause(id: string): void {
    const n = this.node(id);
    if (n.child === undefined || n.state !== 'running') return;
    n.child.kill('SIGSTOP');
    n.state = 'paused';
  }

  resume(id: string): void {
    const n = this.node(id);
    if (n.child === undefined || n.state !== 'paused') return;
    n.child.kill('SIGCONT');
    n.state = 'running';
  }

  /**
   * Sets the fault on bytes sent from `from` to `to`, on whichever connection carries them. On a netns
   * cluster the kernel does it: a stall is an iptables drop where the packets arrive, resets become
   * 1% packet loss on that link (iptables statistic), a delay is tc netem on `from`'s link (all its
   * peers; only where the kernel has netem, else no delay).
   */
  setLinkFault(from: string, to: string, fault: DirectionFault): void {
    this.faults.set(`${from}>${to}`, fault);
    if (this.bed !== undefined) {
      this.netnsFault(from, to, fault);
      return;
    }
    // from dials to: its bytes go up; to dials from: from's bytes come back down.
    this.proxies.get(`${from}>${to}`)?.setFault('up', fault);
    this.proxies.get(`${to}>${from}`)?.setFault('down', fault);
  }

  /** Cuts both directions between every node of `a` and every node of `b`. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.setLinkFault(x, y, { ...passFault, stall: true });
        this.setLinkFault(y, x, { ...passFault, stall: true });
      }
    }
  }

  private netnsFault(from: string, to: string, fault: DirectionFault): void {
    const bed = this.bed!;
    const [a, b] = [this.node(from).host!.name, this.node(to).host!.name];
    if (fault.stall) bed.dropOneWay(a, b);
    if (fault.resetProbability > 0) bed.lossOnLink(a, b, 1);
    if (fault.delayMs > 0 && bedSupport().netem && !this.delayed.has(a)) {
      bed.netem(a, { delayMs: fault.delayMs, jitterMs: Math.ceil(fault.delayMs / 4) });
      this.delayed.add(a);
    }
  }

  private readonly delayed = new Set<string>();

  /** `ip link set down` of the node's host (netns clusters): it drops off the network, its process keeps running. */
  linkDown(id: string): void {
    const host = this.node(id).host;
    if (this.bed === undefined || host === undefined) throw new Error('linkDown needs a netns cluster');
    this.bed.linkDown(host.name);
    this.faults.set(`${id}>*`, { ...passFault, stall: true });
  }

  /** Every link back to pass (held connections are reset, so nodes redial). */
  heal(): void {
    if (this.bed !== undefined) {
      this.bed.heal();
      this.delayed.clear();
      this.faults.clear();
      return;
    }
    for (const key of [...this.faults.keys()]) {
      const [from, to] = key.split('>') as [string, string];
      this.setLinkFault(from, to, passFault);
    }
    this.faults.clear();
  }

  /** Ids whose bytes to `to` are currently faulted, for the report. */
  faultedLinks(): string[] {
    return [...this.faults.entries()].filter(([, f]) => f.stall || f.delayMs > 0 || f.resetProbability > 0).map(([k]) => k);
  }

  /** The WAL segment files of a node (<data>/raft/wal/*.wal), oldest first. */
  walSegments(id: string): string[] {
    const dir = join(this.node(id).dataDir, 'raft', 'wal');
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((f) => f.endsWith('.wal')).sort();
    } catch {
      return [];
    }
    return names.map((f) => join(dir, f)).filter((p) => statSync(p).size > 0);
  }

  /** Kills every node at once (sync; used on process exit). */
  private killAllSync(): void {
    for (const n of this.nodes) {
      if (n.child === undefined) continue;
      try {
        n.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Stops every node (SIGKILL: the suite does not test clean shutdown), the proxies and the watchdog. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.nodes.map((n) => this.kill(n.id)));
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    await this.dns?.close();
    this.bed?.destroy();
    for (const s of this.logs.values()) s.end();
    this.watchdog.stdin?.end();
    process.removeListener('exit', this.onExit);
    if (this.options.keepDir !== true) rmSync(this.dir, { recursive: true, force: true });
  }
}
