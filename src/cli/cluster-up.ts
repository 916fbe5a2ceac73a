// `espresso cluster up --nodes N`: a local cluster on loopback for development. Starts n1..nN as
// child `espresso server` processes from one --seeds list (AMQP base+i-1, HTTP base+10000+i-1, cluster
// port base+20000+i-1, data dir <data-dir>/nK, log in <data-dir>/nK.log), prints the URLs once every node is ready,
// and stops them all (SIGTERM, then SIGKILL after a grace period) on Ctrl-C or SIGTERM.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, ExitCode } from './config-loader.js';
import { clusterSecretOf } from './node-cluster.js';
import { defaultClusterSettings, defaultObserveSettings } from './options.js';
import { clusterPortOffset, httpPortOffset } from './ports.js';
import { defaultBrokerConfig } from '../broker/config.js';
import { intFlag, parseSmallFlags } from './small-flags.js';

export const clusterUpHelp = `Usage: espresso cluster up [flags]

Starts a local cluster of N nodes on 127.0.0.1 (node K: AMQP port base+K-1, HTTP (/metrics)
base+10000+K-1, cluster port base+20000+K-1, data in <data-dir>/nK, log in <data-dir>/nK.log),
prints the URLs when all are ready, and stops every node on Ctrl-C.

Flags:
  --nodes <int>            how many nodes [3]
  --base-port <int>        AMQP port of n1 [5672]
  --data-dir <dir>         parent of the nodes' data directories [./data]
  --cluster-secret <s>     shared secret [ESPRESSO_CLUSTER_SECRET; else kept in <data-dir>/cluster-secret]
  --help                   show this help
`;

const readyTimeoutMs = 60_000;
const stopGraceMs = 10_000;

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<number | null>;
}

export async function runClusterUp(argv: readonly string[], env: Record<string, string | undefined>): Promise<number> {
  const args = parseSmallFlags('cluster up', argv, ['--nodes', '--base-port', '--data-dir', '--cluster-secret']);
  if (args.help) {
    process.stdout.write(clusterUpHelp);
    return ExitCode.Ok;
  }
  if (args.words.length > 0) throw new ConfigError(`unexpected argument '${args.words[0]!}' for 'espresso cluster up'`, ExitCode.Usage);
  const n = intFlag(args, '--nodes', 3, 1, 50);
  const base = intFlag(args, '--base-port', 5672, 1, 65535 - clusterPortOffset - 50);
  const dataDir = args.flags.get('--data-dir') ?? './data';
  mkdirSync(dataDir, { recursive: true });
  const secret = clusterSecretOf({
    ...defaultBrokerConfig, ...defaultClusterSettings, ...defaultObserveSettings, dataDir, clusterSecret: args.flags.get('--cluster-secret') ?? env['ESPRESSO_CLUSTER_SECRET'] ?? '',
  });
  const names = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const seeds = names.map((name, i) => `${name}@127.0.0.1:${base + clusterPortOffset + i}`).join(',');
  const children = names.map((name, i) => startChild(name, base + i, base + clusterPortOffset + i, seeds, dataDir, secret, env));
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    stopping = true;
    for (const c of children) c.process.kill('SIGTERM');
    const timer = setTimeout(() => { for (const c of children) c.process.kill('SIGKILL'); }, stopGraceMs);
    await Promise.all(children.map((c) => c.exited));
    clearTimeout(timer);
  };
  // Ctrl-C reaches the children too (same process group); a second one kills them at once.
  let signals = 0;
  const signalled = new Promise<string>((done) => {
    const on = (signal: string): void => {
      if (++signals > 1) for (const c of children) c.process.kill('SIGKILL');
      done(signal);
    };
    process.on('SIGINT', () => on('SIGINT'));
    process.on('SIGTERM', () => on('SIGTERM'));
  });
  const died = Promise.race(children.map((c) => c.exited.then((code) => ({ c, code }))));
  const ready = await Promise.race([allReady(children), died, signalled]);
  if (typeof ready === 'object' && ready !== null && 'c' in ready) {
    process.stderr.write(`espresso cluster up: ${ready.c.name} exited with ${String(ready.code)} before it was ready; see ${join(dataDir, `${ready.c.name}.log`)}\n`);
    await stopAll();
    return ExitCode.Failure;
  }
  if (ready === true) {
    process.stdout.write(`espresso cluster of ${n} nodes is up (data in ${resolve(dataDir)}):\n`);
    names.forEach((name, i) => process.stdout.write(
      `  ${name}  amqp://guest:guest@127.0.0.1:${base + i}  http://127.0.0.1:${base + httpPortOffset + i}/metrics  (cluster port ${base + clusterPortOffset + i})\n`,
    ));
    process.stdout.write(`status: espresso ctl --cluster-address 127.0.0.1:${base + clusterPortOffset} --data-dir ${dataDir} cluster-status\nCtrl-C stops all nodes.\n`);
  }
  if (ready === false) process.stderr.write(`espresso cluster up: not every node was ready within ${readyTimeoutMs} ms; see the logs in ${resolve(dataDir)}\n`);
  const outcome = ready === true ? await Promise.race([died, signalled]) : ready;
  if (typeof outcome === 'object' && !stopping) process.stderr.write(`espresso cluster up: ${outcome.c.name} exited with ${String(outcome.code)}; stopping the others\n`);
  await stopAll();
  process.stdout.write('all nodes stopped\n');
  return typeof outcome === 'string' ? ExitCode.Ok : ExitCode.Failure;
}

function startChild(name: string, port: number, clusterPort: number, seeds: string, dataDir: string, secret: string, env: Record<string, string | undefined>): Child & { ready: Promise<boolean> } {
  const script = process.argv[1]!;
  const args = [
    ...process.execArgv, script, 'server', '--node-id', name, '--node-name', `espresso@${name}`, '--port', String(port),
    '--cluster-port', String(clusterPort), '--data-dir', join(dataDir, name), '--seeds', seeds,
  ];
  // The secret goes by environment, not argv (ps shows argv to every user).
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, ESPRESSO_CLUSTER_SECRET: secret } });
  const log = createWriteStream(join(dataDir, `${name}.log`), { flags: 'a' });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const ready = new Promise<boolean>((done) => {
    let seen = '';
    const timer = setTimeout(() => done(false), readyTimeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      if (seen.length > 1_000_000) seen = seen.slice(-10_000);
      seen += chunk.toString('utf8');
      if (!seen.includes('"node started"')) return;
      clearTimeout(timer);
      done(true);
    });
    void exited.then(() => { clearTimeout(timer); done(false); });
  });
  return { name, process: child, exited, ready };
}

async function allReady(children: ReadonlyArray<{ ready: Promise<boolean> }>): Promise<boolean> {
  const all = await Promise.all(children.map((c) => c.ready));
  return all.every((r) => r);
}
