// `espresso server`: builds the configuration, creates the data directory, the real clock and the
// stdout logger, starts the node's group host, the broker on it and the HTTP listener (/metrics),
// and stops them cleanly on SIGINT/SIGTERM; SIGHUP reloads the settings a running node can change
// (reload.ts).

import { lookup } from 'node:dns/promises';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { createLogger, type Logger } from '../lib/log.js';
import type { BrokerConfig, LogLevelName } from '../broker/config.js';
import { startBroker, type BrokerServer } from '../broker/server.js';
import type { NodeCluster } from '../broker/node-context.js';
import { ConfigError, ExitCode, loadConfig } from './config-loader.js';
import { parseArgs } from './args.js';
import { serverHelp } from './help.js';
import { serverOptions, type ServerConfig } from './options.js';
import { espressoVersion, startNodeCluster, type StartedCluster } from './node-cluster.js';
import { inUse, lockDataDir, lockHolder, prepareDataDir } from './data-dir.js';
import { planReload } from './reload.js';
import { stageRecorderFor, startObserve, type StartedObserve } from './node-observe.js';
import type { TraceRecorder } from '../broker/counters.js';
import { startTasks } from './node-tasks.js';

const realClock = { nowMs: () => Date.now() };

export function buildServerConfig(argv: readonly string[], env: Record<string, string | undefined>): ServerConfig | 'help' {
  const args = parseArgs('server', argv, serverOptions);
  if (args.help) return 'help';
  return loadConfig({ configFile: args.configFile ?? env['ESPRESSO_CONFIG'], env, flags: args.flags });
}

/** A --bind that names no address of any kind fails here, before anything starts. */
async function checkBind(bind: string): Promise<void> {
  try {
    await lookup(bind);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`bind address '${bind}' is not an IP address nor a host name that resolves (${code}); give --bind an address of this machine such as 127.0.0.1, 0.0.0.0 or ::`, ExitCode.Usage);
  }
}

/**
 * The AMQP port, tried before the node starts: when it is taken (another node on the same
 * --port), the message names it rather than the cluster port derived from it, also taken.
 */
async function checkAmqpPort(config: BrokerConfig): Promise<void> {
  if (config.port === 0) return;
  await new Promise<void>((done, fail) => {
    const probe = createServer();
    probe.once('error', (e) => fail(listenError(e, config)));
    probe.listen(config.port, config.bind, () => probe.close(() => done()));
  });
}

function listenError(e: unknown, config: BrokerConfig): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new ConfigError(`AMQP port ${config.port} on ${config.bind} is already in use (another espresso node?); stop the other process or pick another with --port`, ExitCode.Unavailable);
  }
  if (code === 'EADDRNOTAVAIL' || code === 'EACCES') {
    return new ConfigError(`cannot listen on ${config.bind}:${config.port} (${code}); check --bind and --port`, ExitCode.Unavailable);
  }
  return e;
}

async function listen(config: BrokerConfig, cluster: NodeCluster, logger: Logger, tracer: TraceRecorder): Promise<BrokerServer> {
  try {
    return await startBroker(config, { logger, clock: realClock, cluster, tracer });
  } catch (e) {
    throw listenError(e, config);
  }
}

export async function runServer(argv: readonly string[], env: Record<string, string | undefined>): Promise<number> {
  const given = buildServerConfig(argv, env);
  if (given === 'help') {
    process.stdout.write(serverHelp);
    return ExitCode.Ok;
  }
  // Absolute from here on: every log line and message names the directory unambiguously.
  const config = { ...given, dataDir: resolve(given.dataDir) };
  prepareDataDir(config.dataDir);
  await checkBind(config.bind);
  await checkAmqpPort(config);
  const release = lockDataDir(config.dataDir);
  try {
    return await runNode(config, () => buildServerConfig(argv, env));
  } finally {
    release();
  }
}

async function runNode(config: ServerConfig, configAgain: () => ServerConfig | 'help'): Promise<number> {
  const levelRef = { level: config.logLevel };
  const logger = createLogger({
    sink: (line) => process.stdout.write(line),
    clock: realClock,
    level: config.logLevel,
    levelRef,
    component: 'espresso',
    base: { node: config.nodeId !== '' ? config.nodeId : config.nodeName },
  });
  let broker: BrokerServer | undefined;
  let running = config;
  // SIGHUP (systemctl reload): see reload.ts for what it changes.
  process.on('SIGHUP', () => {
    if (broker === undefined) {
      logger.warn('reload ignored: the node is still starting');
      return;
    }
    running = reload(configAgain, running, broker, levelRef, logger);
  });
  const cluster = await startCluster(config, logger);
  const stages = stageRecorderFor(config);
  try {
    broker = await listen(cluster.brokerConfig, cluster, logger, stages);
  } catch (e) {
    await cluster.close();
    throw e;
  }
  const started = broker;
  let observe: StartedObserve;
  try {
    observe = await startObserve(config, cluster, started, stages, logger);
  } catch (e) {
    await started.close();
    await cluster.close();
    throw e;
  }
  const tasks = startTasks(cluster, started, observe.http, logger);
  // Port 0: the registry learned "port 0" from the start entry; tell it the one the OS picked.
  if (config.port === 0) cluster.advertiseAmqpPort(started.port);
  logger.info('node started', {
    version: espressoVersion, nodeId: cluster.nodeId, pid: process.pid, bind: config.bind, port: started.port, httpPort: observe.httpPort,
    clusterPort: cluster.groupHost.port, dataDir: config.dataDir, members: cluster.metadata.nodes().map((n) => n.id).join(','),
  });
  await new Promise<void>((done) => {
    const stop = (signal: string): void => {
      logger.info('stopping', { signal });
      void tasks.close().then(() => stopNode(started, observe, cluster)).then(done);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  logger.info('node stopped');
  return ExitCode.Ok;
}

/** The cluster side; its store's own lock refusing us means another node holds the directory. */
async function startCluster(config: ServerConfig, logger: Logger): Promise<StartedCluster> {
  try {
    return await startNodeCluster(config, logger);
  } catch (e) {
    if (/LEVEL_LOCKED|lock held by this process/i.test(`${String((e as { code?: unknown }).code ?? '')} ${e instanceof Error ? e.message : ''}`)) {
      throw inUse(config.dataDir, lockHolder(config.dataDir));
    }
    throw e;
  }
}

/** Builds the configuration again and applies what a running node can change; returns the settings now in force. */
function reload(
  configAgain: () => ServerConfig | 'help', running: ServerConfig, broker: BrokerServer, levelRef: { level: LogLevelName }, logger: Logger,
): ServerConfig {
  let next: ServerConfig | 'help';
  try {
    next = configAgain();
  } catch (e) {
    logger.error('reload failed: the configuration did not load; the running settings are kept', { error: e instanceof Error ? e.message : String(e) });
    return running;
  }
  if (next === 'help') return running;
  // As at start: the data directory absolute (the same directory is no change).
  const plan = planReload(running, { ...next, dataDir: resolve(next.dataDir) });
  if (plan.apply.logLevel !== undefined) levelRef.level = plan.apply.logLevel;
  broker.reconfigure(plan.apply);
  if (plan.needRestart.length > 0) {
    logger.warn('reload: these settings only change on a restart; the running values are kept', { settings: plan.needRestart.join(',') });
  }
  logger.info('configuration reloaded', { changed: Object.keys(plan.apply).join(',') || '(none)' });
  return { ...running, ...plan.apply };
}

/** The broker first (no client waits on a closed group), then HTTP, the metadata group and the group host. */
async function stopNode(broker: BrokerServer, observe: StartedObserve, cluster: StartedCluster): Promise<void> {
  await broker.close();
  await observe.close();
  await cluster.close();
}
