// `espresso server`: builds the configuration, creates the data directory, the real clock and the
// stdout logger, starts the node's group host, the broker on it and the HTTP listener (/metrics),
// and stops them cleanly on SIGINT/SIGTERM.

import { mkdirSync, accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import { createLogger, type Logger } from '../lib/log.js';
import type { BrokerConfig } from '../broker/config.js';
import { startBroker, type BrokerServer } from '../broker/server.js';
import type { NodeCluster } from '../broker/node-context.js';
import { ConfigError, ExitCode, loadConfig } from './config-loader.js';
import { parseArgs } from './args.js';
import { serverHelp } from './help.js';
import { serverOptions, type ServerConfig } from './options.js';
import { startNodeCluster, type StartedCluster } from './node-cluster.js';
import { stageRecorderFor, startObserve, type StartedObserve } from './node-observe.js';
import type { TraceRecorder } from '../broker/counters.js';

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

async function listen(config: BrokerConfig, cluster: NodeCluster, logger: Logger, tracer: TraceRecorder): Promise<BrokerServer> {
  try {
    return await startBroker(config, { logger, clock: realClock, cluster, tracer });
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
  const logger = createLogger({
    sink: (line) => process.stdout.write(line),
    clock: realClock,
    level: config.logLevel,
    component: 'espresso',
    base: { node: config.nodeId !== '' ? config.nodeId : config.nodeName },
  });
  const cluster = await startNodeCluster(config, logger);
  const stages = stageRecorderFor(config);
  let broker: BrokerServer;
  try {
    broker = await listen(cluster.brokerConfig, cluster, logger, stages);
  } catch (e) {
    await cluster.close();
    throw e;
  }
  let observe: StartedObserve;
  try {
    observe = await startObserve(config, cluster, broker, stages, logger);
  } catch (e) {
    await broker.close();
    await cluster.close();
    throw e;
  }
  // Port 0: the registry learned "port 0" from the start entry; tell it the one the OS picked.
  if (config.port === 0) cluster.advertiseAmqpPort(broker.port);
  logger.info('node started', {
    bind: config.bind, port: broker.port, httpPort: observe.httpPort, clusterPort: cluster.groupHost.port, nodeId: cluster.nodeId, dataDir: resolve(config.dataDir),
  });
  await new Promise<void>((done) => {
    const stop = (signal: string): void => {
      logger.info('stopping', { signal });
      void stopNode(broker, observe, cluster).then(done);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  logger.info('node stopped');
  return ExitCode.Ok;
}

/** The broker first (no client waits on a closed group), then HTTP, the metadata group and the group host. */
async function stopNode(broker: BrokerServer, observe: StartedObserve, cluster: StartedCluster): Promise<void> {
  await broker.close();
  await observe.close();
  await cluster.close();
}
