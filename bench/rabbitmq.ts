// RabbitMQ 3.10 (Debian's rabbitmq-server) for side-by-side runs: installs it if missing, starts a
// single node or a 3-node cluster by hand on loopback ports of its own with data under a temp dir,
// waits until booted, and stops exactly the nodes it started (see shared/notes/rabbitmq-on-loopback.md).

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { register, run, terminate, alive, waitUntil, portOpen, type BrokerHandle } from './broker-process.js';

const binDir = '/usr/lib/rabbitmq/bin';
const ctl = join(binDir, 'rabbitmqctl');
const loopbackDist = '-kernel inet_dist_use_interface {127,0,0,1}';

/** AMQP and Erlang distribution ports: away from 5672 and from the ports in the shared notes. */
const singlePorts = { amqp: 5791, dist: 25791 };
const clusterPorts = [5792, 5793, 5794];

export async function ensureRabbitInstalled(log: (line: string) => void): Promise<void> {
  if (existsSync(join(binDir, 'rabbitmq-server'))) return;
  log('rabbitmq: not installed; apt-get update && apt-get install -y rabbitmq-server (up to 10 minutes)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = await run('apt-get', ['update'], { env, timeoutMs: 300_000 });
  if (update.code !== 0) throw new Error(`apt-get update failed: ${update.stderr.slice(-500)}`);
  const install = await run('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'install', '-y', 'rabbitmq-server'], { env, timeoutMs: 600_000 });
  if (install.code !== 0 || !existsSync(join(binDir, 'rabbitmq-server'))) {
    throw new Error(`apt-get install rabbitmq-server failed: ${install.stderr.slice(-500)}`);
  }
}

interface RabbitNode {
  name: string;
  dir: string;
  amqpPort: number;
  launcherPid: number;
  beamPid: number;
}

function baseEnv(base: string): NodeJS.ProcessEnv {
  // Server and rabbitmqctl both read $HOME/.erlang.cookie; the CLI's own dist port stays on loopback.
  return { ...process.env, HOME: join(base, 'home'), RABBITMQ_CTL_ERL_ARGS: loopbackDist, ERL_EPMD_ADDRESS: '127.0.0.1' };
}

function prepareBase(base: string): void {
  mkdirSync(join(base, 'home'), { recursive: true });
  const cookie = join(base, 'home', '.erlang.cookie');
  writeFileSync(cookie, randomBytes(20).toString('hex'));
  chmodSync(cookie, 0o400);
  writeFileSync(join(base, 'enabled_plugins'), '[].\n');
}

function launch(base: string, name: string, amqpPort: number, distPort: number): { dir: string; pid: number } {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  const out = openSync(join(dir, 'stdout.log'), 'a');
  const env = {
    ...baseEnv(base),
    RABBITMQ_NODENAME: `${name}@localhost`, RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1', RABBITMQ_NODE_PORT: String(amqpPort),
    RABBITMQ_DIST_PORT: String(distPort), RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'), RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'), RABBITMQ_PID_FILE: join(dir, 'rabbit.pid'),
    RABBITMQ_CONF_ENV_FILE: '/dev/null', RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: loopbackDist,
    ERL_CRASH_DUMP: join(dir, 'erl_crash.dump'),
  };
  // detached = its own session and process group, so Ctrl-C in the terminal reaches us, not it,
  // and we stop it in order.
  const child = spawn(join(binDir, 'rabbitmq-server'), [], { cwd: dir, env, detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start rabbitmq-server for ${name}`);
  return { dir, pid: child.pid };
}

async function ctlCall(base: string, node: string, args: string[], timeoutMs: number): Promise<void> {
  const r = await run(ctl, ['-n', `${node}@localhost`, ...args], { env: baseEnv(base), timeoutMs });
  if (r.code !== 0) throw new Error(`rabbitmqctl -n ${node} ${args.join(' ')} failed: ${(r.stderr || r.stdout).slice(-600)}`);
}

async function epmdRunning(): Promise<boolean> {
  return portOpen(4369);
}

/** rabbitmqctl against the single node `name` started under `workDir` (tests: users, vhosts, export_definitions); its stdout. */
export async function rabbitCtl(workDir: string, args: string[], name = 'espbench-single', timeoutMs = 60_000): Promise<string> {
  const base = join(workDir, 'rabbitmq-single');
  const r = await run(ctl, ['-n', `${name}@localhost`, ...args], { env: baseEnv(base), timeoutMs });
  if (r.code !== 0) throw new Error(`rabbitmqctl ${args.join(' ')} failed: ${(r.stderr || r.stdout).slice(-600)}`);
  return r.stdout;
}

/**
 * Starts RabbitMQ: one node, or three joined into a cluster. Every wait is bounded. `singleAt`: the
 * single node's ports and Erlang node name (tests pick free ports and a name of their own: two nodes
 * of one name on a host cannot both register with epmd, and the second never boots).
 */
export async function startRabbit(topology: 'single' | 'cluster', workDir: string, log: (line: string) => void,
  singleAt: { amqp: number; dist: number; name?: string } = singlePorts): Promise<BrokerHandle> {
  const base = join(workDir, `rabbitmq-${topology}`);
  rmSync(base, { recursive: true, force: true });
  prepareBase(base);
  const hadEpmd = await epmdRunning();
  const specs = topology === 'single'
    ? [{ name: singleAt.name ?? 'espbench-single', amqp: singleAt.amqp, dist: singleAt.dist }]
    : clusterPorts.map((p, i) => ({ name: `espbench${i + 1}`, amqp: p, dist: 20000 + p }));
  for (const s of specs) {
    if (await portOpen(s.amqp)) throw new Error(`port ${s.amqp} is already in use; is another broker running there?`);
  }
  const nodes: RabbitNode[] = [];
  const handle = register({
    broker: 'rabbitmq', topology, urls: specs.map((s) => `amqp://guest:guest@127.0.0.1:${s.amqp}`), processes: [],
    stop: () => stopNodes(base, nodes, hadEpmd, log),
  });
  for (const s of specs) {
    const { dir, pid } = launch(base, s.name, s.amqp, s.dist);
    nodes.push({ name: s.name, dir, amqpPort: s.amqp, launcherPid: pid, beamPid: 0 });
  }
  log(`rabbitmq: booting ${nodes.length} node(s) under ${base}`);
  for (const n of nodes) {
    await ctlCall(base, n.name, ['wait', '--timeout', '120', join(n.dir, 'rabbit.pid')], 150_000);
    n.beamPid = Number(readFileSync(join(n.dir, 'rabbit.pid'), 'utf8').trim());
  }
  for (const n of nodes.slice(1)) {
    await ctlCall(base, n.name, ['stop_app'], 60_000);
    await ctlCall(base, n.name, ['reset'], 60_000);
    await ctlCall(base, n.name, ['join_cluster', `${nodes[0]?.name ?? ''}@localhost`], 60_000);
    await ctlCall(base, n.name, ['start_app'], 120_000);
  }
  const ready = await waitUntil(async () => (await Promise.all(nodes.map((n) => portOpen(n.amqpPort)))).every(Boolean), 60_000);
  if (!ready) throw new Error('rabbitmq: AMQP listeners did not open within 60 s');
  handle.processes = nodes.map((n) => ({ name: `beam.smp ${n.name}`, pid: n.beamPid }));
  log(`rabbitmq: ${topology} up (beam.smp pids ${nodes.map((n) => n.beamPid).join(', ')})`);
  return handle;
}

async function stopNodes(base: string, nodes: RabbitNode[], hadEpmd: boolean, log: (line: string) => void): Promise<void> {
  for (const n of [...nodes].reverse()) {
    if (n.beamPid > 0 && alive(n.beamPid)) {
      // Returns once that beam.smp has exited; a hung node is killed below.
      await run(ctl, ['-n', `${n.name}@localhost`, 'stop', join(n.dir, 'rabbit.pid')], { env: baseEnv(base), timeoutMs: 60_000 });
      if (alive(n.beamPid)) await terminate(n.beamPid, 10_000);
    }
    await terminate(-n.launcherPid, 10_000);
  }
  if (!hadEpmd) await stopOwnEpmd(base);
  rmSync(base, { recursive: true, force: true });
  log('rabbitmq: stopped');
}

/** The epmd our first node started (none ran before): killed only if no node is registered. */
async function stopOwnEpmd(base: string): Promise<void> {
  const names = await run('epmd', ['-names'], { env: baseEnv(base), timeoutMs: 5000 });
  if (names.code === 0 && !/^name /m.test(names.stdout)) await run('epmd', ['-kill'], { env: baseEnv(base), timeoutMs: 5000 });
}
