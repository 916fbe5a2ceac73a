// `espresso server`: builds the configuration, creates the data directory, the real clock and the
// stdout logger, starts the node's group host and the broker on it, and stops both cleanly on
// SIGINT/SIGTERM.

import { mkdirSync, accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import { createLogger, type Logger } from '../lib/log.js';
import type { BrokerConfig, LogLevelName } from '../broker/config.js';
import { startBroker, type BrokerServer } from '../broker/server.js';
import type { NodeCluster } from '../broker/node-context.js';
import { ConfigError, ExitCode, loadConfig } from './config-loader.js';
import { parseArgs } from './args.js';
import { serverHelp } from './help.js';
import { serverOptions, type ServerConfig } from './options.js';
import { startNodeCluster, type StartedCluster } from './node-cluster.js';
import { planReload } from './reload.js';

const realClock = { nowMs: () => Date.now() };

export function buildServerConfig(argv: readonly string[], env: Record<string, string | undefined>): ServerConfig | 'help' {
  const args = parseArgs('server', argv, serverOptions);
  if (args.help) return 'help';
  return loadConfig({ configFile: args.configFile ?? env['ESPRESSO_CONFIG'], env, flags: args.flags });
}

function prepareDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(
      `cannot use data directory '${resolve(dir)}' (${code}); choose a writable one with --data-dir`,
      ExitCode.CantCreate,
    );
  }
}

async function listen(config: BrokerConfig, cluster: NodeCluster, logger: Logger): Promise<BrokerServer> {
  try {
    return await startBroker(config, { logger, clock: realClock, cluster });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new ConfigError(`port ${config.port} on ${config.bind} is already in use; stop the other process or pick another with --port`, ExitCode.Unavailable);
    }
    if (code === 'EADDRNOTAVAIL' || code === 'EACCES') {
      throw new ConfigError(`cannot listen on ${config.bind}:${config.port} (${code}); check --bind and --port`, ExitCode.Unavailable);
    }
    throw e;
  }
}

export async function runServer(argv: readonly string[], env: Record<string, string | undefined>): Promise<number> {
  const config = buildServerConfig(argv, env);
  if (config === 'help') {
    process.stdout.write(serverHelp);
    return ExitCode.Ok;
  }
  prepareDataDir(config.dataDir);
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
    running = reload(argv, env, running, broker, levelRef, logger);
  });
  const cluster = await startNodeCluster(config, logger);
  try {
    broker = await listen(cluster.brokerConfig, cluster, logger);
  } catch (e) {
    await cluster.close();
    throw e;
  }
  // Port 0: the registry learned "port 0" from the start entry; tell it the one the OS picked.
  const started = broker;
  if (config.port === 0) cluster.advertiseAmqpPort(started.port);
  logger.info('node started', {
    bind: config.bind, port: started.port, clusterPort: cluster.groupHost.port, nodeId: cluster.nodeId, dataDir: resolve(config.dataDir),
  });
  await new Promise<void>((done) => {
    const stop = (signal: string): void => {
      logger.info('stopping', { signal });
      void stopNode(started, cluster).then(done);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  logger.info('node stopped');
  return ExitCode.Ok;
}

/** Builds the configuration again and applies what a running node can change; returns the settings now in force. */
function reload(
  argv: readonly string[], env: Record<string, string | undefined>, running: ServerConfig, broker: BrokerServer, levelRef: { level: LogLevelName }, logger: Logger,
): ServerConfig {
  let next: ServerConfig | 'help';
  try {
    next = buildServerConfig(argv, env);
  } catch (e) {
    logger.error('reload failed: the configuration did not load; the running settings are kept', { error: e instanceof Error ? e.message : String(e) });
    return running;
  }
  if (next === 'help') return running;
  const plan = planReload(running, next);
  if (plan.apply.logLevel !== undefined) levelRef.level = plan.apply.logLevel;
  broker.reconfigure(plan.apply);
  if (plan.needRestart.length > 0) {
    logger.warn('reload: these settings only change on a restart; the running values are kept', { settings: plan.needRestart.join(',') });
  }
  logger.info('configuration reloaded', { changed: Object.keys(plan.apply).join(',') || '(none)' });
  return { ...running, ...plan.apply };
}

/** The broker first (no client waits on a closed group), then the metadata group and the group host. */
async function stopNode(broker: BrokerServer, cluster: StartedCluster): Promise<void> {
  await broker.close();
  await cluster.close();
}
