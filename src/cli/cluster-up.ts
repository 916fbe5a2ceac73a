// `espresso cluster up --nodes N`: a local cluster on loopback for development. Starts n1..nN as
// child `espresso server` processes from one --seeds list (AMQP base+i-1, HTTP base+10000+i-1, cluster
// port base+20000+i-1, data dir <data-dir>/nK, log in <data-dir>/nK.log), prints the URLs once every node is ready,
// keeps the others running when one dies (cluster restart NODE starts it again: cluster-supervisor.ts),
// and stops them all (SIGTERM, then SIGKILL after a grace period) on Ctrl-C or SIGTERM.

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, ExitCode } from './config-loader.js';
import { clusterSecretOf } from './node-cluster.js';
import { defaultClusterSettings, defaultObserveSettings, defaultPluginSettings } from './options.js';
import { clusterPortOffset, httpPortOffset } from './ports.js';
import { defaultBrokerConfig } from '../broker/config.js';
import { intFlag, parseSmallFlags } from './small-flags.js';
import { LocalCluster, requestRestart, serveRestarts, serverCommandOf, type LocalNode } from './cluster-supervisor.js';

export const clusterUpHelp = `Usage: espresso cluster up [flags]
       espresso cluster restart NODE [--data-dir <dir>]

cluster up starts a local cluster of N nodes on 127.0.0.1 (node K: AMQP port base+K-1, HTTP
(/metrics) base+10000+K-1, cluster port base+20000+K-1, data in <data-dir>/nK, log in
<data-dir>/nK.log), prints the URLs when all are ready, and stops every node on Ctrl-C. A node
that dies is reported with the commands that start it again; the others keep running. cluster
restart starts such a node again (as a node of the running 'cluster up', so Ctrl-C stops it too).

Flags:
  --nodes <int>            how many nodes [3]
  --base-port <int>        AMQP port of n1 [5672]
  --data-dir <dir>         parent of the nodes' data directories [./data]
  --cluster-secret <s>     shared secret [ESPRESSO_CLUSTER_SECRET; else kept in <data-dir>/cluster-secret]
  --help                   show this help
`;

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
    ...defaultBrokerConfig, ...defaultClusterSettings, ...defaultObserveSettings, ...defaultPluginSettings, dataDir, clusterSecret: args.flags.get('--cluster-secret') ?? env['ESPRESSO_CLUSTER_SECRET'] ?? '',
  });
  const names = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const seeds = names.map((name, i) => `${name}@127.0.0.1:${base + clusterPortOffset + i}`).join(',');
  const nodes: LocalNode[] = names.map((name, i) => ({
    name, amqpPort: base + i, clusterPort: base + clusterPortOffset + i,
    serverArgs: [
      '--node-id', name, '--node-name', `espresso@${name}`, '--port', String(base + i),
      '--cluster-port', String(base + clusterPortOffset + i), '--data-dir', join(dataDir, name), '--seeds', seeds,
    ],
  }));
  // The secret goes by environment, not argv (ps shows argv to every user); each node keeps it
  // in its own data directory from its first start, so it restarts from its command line alone.
  let up = false;
  const cluster = new LocalCluster(nodes, dataDir, { ...env, ESPRESSO_CLUSTER_SECRET: secret }, (node, how) => {
    if (!up) return void process.stderr.write(`espresso cluster up: ${node.name} exited (${how}) before it was ready; see ${join(dataDir, `${node.name}.log`)}\n`);
    const others = nodes.filter((o) => cluster.isRunning(o.name)).map((o) => o.name);
    process.stderr.write(
      `espresso cluster up: ${node.name} exited (${how}); ${others.length > 0 ? `${others.join(', ')} keep running` : 'no node is running'}. ` +
      `See ${join(dataDir, `${node.name}.log`)}. Start it again with\n  npx espresso cluster restart ${node.name} --data-dir ${dataDir}\n` +
      `or by hand (it then runs outside this command):\n  ${serverCommandOf(node)}\n`,
    );
  });
  // Ctrl-C reaches the children too (same process group); a second one kills them at once.
  let signals = 0;
  const signalled = new Promise<string>((done) => {
    const on = (signal: string): void => {
      if (++signals > 1) cluster.killAll();
      done(signal);
    };
    process.on('SIGINT', () => on('SIGINT'));
    process.on('SIGTERM', () => on('SIGTERM'));
  });
  const ready = await Promise.race([allStarted(names.map((name) => cluster.start(name))), signalled]);
  if (ready === false) {
    process.stderr.write(`espresso cluster up: not every node started; see the logs in ${resolve(dataDir)}\n`);
    await cluster.stopAll();
    return ExitCode.Failure;
  }
  if (ready === true) {
    up = true;
    const stopServing = await serveRestarts(cluster, dataDir);
    process.stdout.write(`espresso cluster of ${n} nodes is up (data in ${resolve(dataDir)}):\n`);
    nodes.forEach((node) => process.stdout.write(
      `  ${node.name}  amqp://guest:guest@127.0.0.1:${node.amqpPort}  http://127.0.0.1:${node.amqpPort + httpPortOffset}/metrics  (cluster port ${node.clusterPort})\n`,
    ));
    process.stdout.write(`status: npx espresso ctl --cluster-address 127.0.0.1:${nodes[0]!.clusterPort} --data-dir ${join(dataDir, nodes[0]!.name)} cluster-status\nCtrl-C stops all nodes.\n`);
    await signalled;
    stopServing();
  }
  await cluster.stopAll();
  process.stdout.write('all nodes stopped\n');
  return ExitCode.Ok;
}

/** `espresso cluster restart NODE`: asks the running `cluster up` to start a node that died. */
export async function runClusterRestart(argv: readonly string[]): Promise<number> {
  const args = parseSmallFlags('cluster restart', argv, ['--data-dir']);
  if (args.help) {
    process.stdout.write(clusterUpHelp);
    return ExitCode.Ok;
  }
  const [name, ...extra] = args.words;
  if (name === undefined || extra.length > 0) throw new ConfigError("'espresso cluster restart' needs one node name, e.g. 'espresso cluster restart n2'", ExitCode.Usage);
  const dataDir = args.flags.get('--data-dir') ?? './data';
  const outcome = await requestRestart(dataDir, name);
  if (outcome.kind === 'answered') {
    (outcome.ok ? process.stdout : process.stderr).write(`${outcome.ok ? '' : 'espresso cluster restart: '}${outcome.message}\n`);
    return outcome.ok ? ExitCode.Ok : ExitCode.Failure;
  }
  process.stderr.write(`espresso cluster restart: ${outcome.message}${outcome.command !== undefined ? `; start ${name} by hand with\n  ${outcome.command}` : ''}\n`);
  return ExitCode.Unavailable;
}

/** True once every start succeeded; false at the first that failed. */
function allStarted(starts: ReadonlyArray<Promise<boolean>>): Promise<boolean> {
  return new Promise((done) => {
    let left = starts.length;
    for (const start of starts) void start.then((ok) => (!ok ? done(false) : --left === 0 ? done(true) : undefined));
  });
}
