// A test bed of hosts on one machine: one Linux network namespace per host, each with a veth whose
// other end sits on a bridge in the root namespace (10.201.S.1 there, hosts 10.201.S.11, .12, ...),
// so processes started in a host see only their own address and reach the others over a real (if
// virtual) network, and clients in the root namespace reach them all. Faults are made by the kernel
// inside the namespaces: `ip link set down`, iptables drops (one-way or both ways), packet loss by
// iptables' statistic match, and tc netem delay/loss/reordering where the kernel has netem.
//
// Needs root and iproute2; iptables is installed from Debian when missing. Every namespace, veth
// and bridge is named after this process's pid, removed on destroy() and, should this process die
// first, by a detached watchdog; ones left by dead processes are removed on the next create().

import { execFile, execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { startWatchdog } from './watchdog.js';

export interface BedHost {
  /** h1, h2, ... */
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
  /** Its IPv6 address (fd00:201:S::<10+k>, on the same link). */
  readonly ip6: string;
  /** The veth end on the bridge (root namespace); the host's own end is eth0. */
  readonly veth: string;
}

export interface BedSupport {
  ok: boolean;
  /** Why the bed cannot run here (when !ok). */
  reason: string;
  /** tc netem exists in this kernel (delay, reordering). */
  netem: boolean;
}

export interface NetemSpec {
  delayMs: number;
  jitterMs?: number;
  lossPercent?: number;
  reorderPercent?: number;
}

const prefix = 'esp';
const commandTimeoutMs = 10_000;
let bedsMade = 0;

function run(cmd: string, args: readonly string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: commandTimeoutMs });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error !== undefined ? String(r.error) : ''}`.trim() };
}

function must(cmd: string, args: readonly string[]): string {
  const r = run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.out}`);
  return r.out;
}

/** Installs a Debian package for a command that is missing (bounded; apt-get update once if needed); why not when it cannot. */
function ensureCommand(command: string, versionArg: string, pkg: string): string | undefined {
  if (run(command, [versionArg]).ok) return undefined;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): boolean => spawnSync('apt-get', ['install', '-y', '-q', pkg], { env, timeout: 180_000, stdio: 'ignore' }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update', '-q'], { env, timeout: 180_000, stdio: 'ignore' });
    if (!install()) return `${command} is missing and apt-get could not install ${pkg}`;
  }
  return run(command, [versionArg]).ok ? undefined : `${command} is missing after installing ${pkg}`;
}

let supportSeen: BedSupport | undefined;

/** Whether this machine can run the bed: root, iproute2, namespaces, a bridge; and whether it has netem. */
export function bedSupport(): BedSupport {
  if (supportSeen !== undefined) return supportSeen;
  const no = (reason: string): BedSupport => (supportSeen = { ok: false, reason, netem: false });
  if (process.platform !== 'linux') return no('network namespaces need Linux');
  if (process.getuid?.() !== 0) return no('network namespaces need root');
  const missing = ensureCommand('ip', '-V', 'iproute2') ?? ensureCommand('iptables', '--version', 'iptables');
  if (missing !== undefined) return no(missing);
  const probe = `${prefix}${process.pid}probe`;
  const made = run('ip', ['netns', 'add', probe]);
  if (!made.ok) return no(`cannot create a network namespace: ${made.out}`);
  try {
    const lo = run('ip', ['-n', probe, 'link', 'set', 'lo', 'up']);
    if (!lo.ok) return no(`cannot configure a network namespace: ${lo.out}`);
    const netem = run('ip', ['netns', 'exec', probe, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']).ok;
    const ipt = run('ip', ['netns', 'exec', probe, 'iptables', '-A', 'INPUT', '-m', 'statistic', '--mode', 'random', '--probability', '0.5', '-j', 'DROP']);
    if (!ipt.ok) return no(`iptables does not work in a namespace: ${ipt.out}`);
    const ip6t = run('ip', ['netns', 'exec', probe, 'ip6tables', '-A', 'INPUT', '-m', 'statistic', '--mode', 'random', '--probability', '0.5', '-j', 'DROP']);
    if (!ip6t.ok) return no(`ip6tables does not work in a namespace: ${ip6t.out}`);
    return (supportSeen = { ok: true, reason: '', netem });
  } finally {
    run('ip', ['netns', 'del', probe]);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces and links left by beds whose process is gone. */
function removeStale(): void {
  const own = new RegExp(`^${prefix}(\\d+)`);
  for (const line of run('ip', ['netns', 'list']).out.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = own.exec(name);
    if (m !== null && !alive(Number(m[1]))) run('ip', ['netns', 'del', name]);
  }
  for (const line of run('ip', ['-o', 'link', 'show']).out.split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1] ?? '';
    const m = /^e[bv](\d+)k/.exec(name);
    if (m !== null && !alive(Number(m[1]))) run('ip', ['link', 'del', name]);
  }
}

/** A /24 under 10.201.0.0/16 that no address of the root namespace is in yet. */
function freeSubnet(): number {
  const used = run('ip', ['-o', '-4', 'addr', 'show']).out;
  for (let s = 1; s < 255; s++) if (!used.includes(` 10.201.${s}.`)) return s;
  throw new Error('no free 10.201.x.0/24 subnet for the test bed');
}

export class HostBed {
  readonly hosts: BedHost[] = [];
  /** The bridge's address: what the hosts see the root namespace (the clients) as. */
  readonly gatewayIp: string;
  readonly bridge: string;
  private readonly watchdog = startWatchdog();
  private readonly rules = new Set<string>();
  private readonly shaped = new Set<string>();
  private destroyed = false;
  private readonly onExit = (): void => this.destroySync();

  private constructor(readonly subnet: number, readonly id: string) {
    this.gatewayIp = `10.201.${subnet}.1`;
    this.bridge = `eb${id}`;
    process.once('exit', this.onExit);
  }

  /** Creates `n` hosts on a new bridge. Call bedSupport() first. */
  static create(n: number): HostBed {
    removeStale();
    const bed = new HostBed(freeSubnet(), `${process.pid}k${++bedsMade}`);
    try {
      bed.watchdog.stdin?.write(`l${bed.bridge}\n`);
      must('ip', ['link', 'add', bed.bridge, 'type', 'bridge']);
      must('ip', ['addr', 'add', `${bed.gatewayIp}/24`, 'dev', bed.bridge]);
      must('ip', ['-6', 'addr', 'add', `fd00:201:${bed.subnet}::1/64`, 'dev', bed.bridge, 'nodad']);
      must('ip', ['link', 'set', bed.bridge, 'up']);
      for (let i = 1; i <= n; i++) bed.addHost();
    } catch (e) {
      bed.destroySync();
      throw e;
    }
    return bed;
  }

  /** One more host on the bridge (h<k>, 10.201.S.<10+k>). */
  addHost(): BedHost {
    const k = this.hosts.length + 1;
    const host: BedHost = {
      name: `h${k}`, ns: `${prefix}${this.id}h${k}`, ip: `10.201.${this.subnet}.${10 + k}`, ip6: `fd00:201:${this.subnet}::${10 + k}`, veth: `ev${this.id}h${k}`,
    };
    this.watchdog.stdin?.write(`n${host.ns}\n`);
    must('ip', ['netns', 'add', host.ns]);
    must('ip', ['link', 'add', host.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.ns]);
    must('ip', ['link', 'set', host.veth, 'master', this.bridge, 'up']);
    must('ip', ['-n', host.ns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0']);
    // nodad: usable at once, without duplicate address detection's second or two.
    must('ip', ['-n', host.ns, '-6', 'addr', 'add', `${host.ip6}/64`, 'dev', 'eth0', 'nodad']);
    must('ip', ['-n', host.ns, 'link', 'set', 'eth0', 'up']);
    must('ip', ['-n', host.ns, 'link', 'set', 'lo', 'up']);
    this.hosts.push(host);
    return host;
  }

  host(name: string): BedHost {
    const h = this.hosts.find((x) => x.name === name);
    if (h === undefined) throw new Error(`no host ${name}`);
    return h;
  }

  /** Starts `command args` inside the host's namespace (ip netns exec execs it: the pid is the command's). */
  spawn(host: string, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.host(host).ns, command, ...args], options);
    if (child.pid !== undefined) {
      this.watchdog.stdin?.write(`+${child.pid}\n`);
      child.once('exit', () => this.watchdog.stdin?.write(`-${child.pid}\n`));
    }
    return child;
  }

  /** Runs a command inside the host's namespace and returns its output (throws on failure). */
  exec(host: string, command: string, args: readonly string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile('ip', ['netns', 'exec', this.host(host).ns, command, ...args], { timeout: commandTimeoutMs }, (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`${host}: ${command} ${args.join(' ')}: ${stderr.trim() || err.message}`));
        else resolve(stdout);
      });
    });
  }

  /** `ip link set eth0 down` in the host: it drops off the network (its processes keep running). */
  linkDown(host: string): void {
    must('ip', ['-n', this.host(host).ns, 'link', 'set', 'eth0', 'down']);
  }

  linkUp(host: string): void {
    must('ip', ['-n', this.host(host).ns, 'link', 'set', 'eth0', 'up']);
  }

  /** Packets from `from` to `to` are dropped where they arrive (iptables INPUT in `to`, IPv4 and IPv6): a one-way cut. */
  dropOneWay(from: string, to: string): void {
    this.rule(to, ['INPUT', '-s', this.host(from).ip, '-j', 'DROP'], ['INPUT', '-s', this.host(from).ip6, '-j', 'DROP']);
  }

  /** Both directions cut between every host of `a` and every host of `b`. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.dropOneWay(x, y);
        this.dropOneWay(y, x);
      }
    }
  }

  /** Drops this share of the packets arriving at `host` (iptables statistic match): loss on its link. */
  loss(host: string, percent: number): void {
    const rule = ['INPUT', '-m', 'statistic', '--mode', 'random', '--probability', String(percent / 100), '-j', 'DROP'];
    this.rule(host, rule, rule);
  }

  /** Drops this share of the packets from `from` arriving at `to`: loss on that one link. */
  lossOnLink(from: string, to: string, percent: number): void {
    const drop = ['-m', 'statistic', '--mode', 'random', '--probability', String(percent / 100), '-j', 'DROP'];
    this.rule(to, ['INPUT', '-s', this.host(from).ip, ...drop], ['INPUT', '-s', this.host(from).ip6, ...drop]);
  }

  /** tc netem on the host's eth0 (its outgoing packets); throws where the kernel has no netem. */
  netem(host: string, spec: NetemSpec): void {
    const h = this.host(host);
    const args = ['-n', h.ns, 'qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', `${spec.delayMs}ms`];
    if (spec.jitterMs !== undefined) args.push(`${spec.jitterMs}ms`);
    if (spec.lossPercent !== undefined) args.push('loss', `${spec.lossPercent}%`);
    if (spec.reorderPercent !== undefined) args.push('reorder', `${spec.reorderPercent}%`);
    must('tc', args);
    this.shaped.add(host);
  }

  /** Removes every rule, shaping and downed link: a whole network again. */
  heal(): void {
    for (const h of this.hosts) {
      run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
      if (this.rules.has(h.name)) {
        run('ip', ['netns', 'exec', h.ns, 'iptables', '-F']);
        run('ip', ['netns', 'exec', h.ns, 'ip6tables', '-F']);
      }
      if (this.shaped.has(h.name)) run('tc', ['-n', h.ns, 'qdisc', 'del', 'dev', 'eth0', 'root']);
    }
    this.rules.clear();
    this.shaped.clear();
  }

  /** One rule for IPv4 (iptables) and its twin for IPv6 (ip6tables) in the host's namespace. */
  private rule(host: string, v4: readonly string[], v6: readonly string[]): void {
    must('ip', ['netns', 'exec', this.host(host).ns, 'iptables', '-A', ...v4]);
    must('ip', ['netns', 'exec', this.host(host).ns, 'ip6tables', '-A', ...v6]);
    this.rules.add(host);
  }

  /** Removes the namespaces (their processes must be gone or are left without a network) and the bridge. */
  destroy(): void {
    this.destroySync();
  }

  private destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.removeListener('exit', this.onExit);
    for (const h of this.hosts) run('ip', ['netns', 'del', h.ns]);
    run('ip', ['link', 'del', this.bridge]);
    this.watchdog.stdin?.end();
  }
}

/** Lists the bed's leftovers of this process (for a test that checks cleanup). */
export function bedLeftovers(bed: HostBed): string[] {
  const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '');
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  return [...bed.hosts.map((h) => h.ns).filter((n) => names.includes(n)), ...(links.includes(`${bed.bridge}:`) ? [bed.bridge] : [])];
}
