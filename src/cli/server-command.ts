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
import { defaultTlsPort, describeCertificate, readTlsFiles, tlsSettingsProblem } from '../broker/tls.js';
import { audited, caller } from '../cluster/audit.js';
import { CtlMethod } from '../cluster/control-service.js';
import { encodeJson } from '../cluster/metadata-entries.js';
import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import { stageRecorderFor, startObserve, type StartedObserve } from './node-observe.js';
import type { TraceRecorder } from '../broker/counters.js';
import { startTasks } from './node-tasks.js';
import { loadPlugins } from './plugins.js';
import type { PluginHost } from '../broker/plugin-host.js';

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
  const tlsPort = config.tlsPort === -1 ? defaultTlsPort : config.tlsPort;
  const ports = [...(config.tlsOnly ? [] : [{ port: config.port, flag: '--port' }]), ...(config.tlsCert !== '' ? [{ port: tlsPort, flag: '--tls-port' }] : [])];
  for (const { port, flag } of ports) {
    if (port === 0) continue;
    await new Promise<void>((done, fail) => {
      const probe = createServer();
      probe.once('error', (e) => fail(listenError(e, config, port, flag)));
      probe.listen(port, config.bind, () => probe.close(() => done()));
    });
  }
}

function listenError(e: unknown, config: BrokerConfig, port = config.port, flag = '--port'): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new ConfigError(`AMQP${flag === '--tls-port' ? 'S' : ''} port ${port} on ${config.bind} is already in use (another espresso node?); stop the other process or pick another with ${flag}`, ExitCode.Unavailable);
  }
  if (code === 'EADDRNOTAVAIL' || code === 'EACCES') {
    return new ConfigError(`cannot listen on ${config.bind}:${port} (${code}); check --bind and ${flag}`, ExitCode.Unavailable);
  }
  return e;
}

/** TLS settings that fit together and certificate files that load, before anything starts. */
function checkTls(config: BrokerConfig): void {
  const problem = tlsSettingsProblem(config);
  if (problem !== null) throw new ConfigError(problem, ExitCode.Usage);
  if (config.tlsCert === '') return;
  try {
    readTlsFiles(config);
  } catch (e) {
    throw new ConfigError(e instanceof Error ? e.message : String(e), ExitCode.NoInput);
  }
}

async function listen(config: BrokerConfig, cluster: NodeCluster, logger: Logger, tracer: TraceRecorder, plugins: PluginHost): Promise<BrokerServer> {
  try {
    return await startBroker(config, { logger, clock: realClock, cluster, tracer, plugins });
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
  checkTls(config);
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
    reloadClientTls();
  });
  // Client TLS files read again: the AMQPS listener's, then (when it loaded) the HTTPS listener's.
  let https: ((files: ReturnType<typeof readTlsFiles>) => void) | undefined;
  const reloadClientTls = (): string | null => {
    const error = broker?.reloadTls() ?? null;
    if (error === null && https !== undefined && running.tlsCert !== '') https(readTlsFiles(running));
    return error;
  };
  // Plugins first: one that fails stops the node before it joins anything, and the cluster is told
  // which exchange types this node has.
  const plugins = await loadPlugins(config, config.nodeId !== '' ? config.nodeId : config.nodeName, logger);
  const cluster = await startCluster(config, logger, plugins.exchangePlugins()).catch((e: unknown) => {
    plugins.close();
    throw e;
  });
  const stages = stageRecorderFor(config);
  try {
    broker = await listen(cluster.brokerConfig, cluster, logger, stages, plugins);
  } catch (e) {
    await cluster.close();
    plugins.close();
    throw e;
  }
  const started = broker;
  serveReloadTls(cluster, started, reloadClientTls, () => running, logger);
  let observe: StartedObserve;
  try {
    observe = await startObserve(config, cluster, started, stages, logger);
  } catch (e) {
    await started.close();
    await cluster.close();
    plugins.close();
    throw e;
  }
  const tasks = startTasks(cluster, started, observe.http, logger);
  https = (files) => observe.reloadTls(files);
  // Port 0: the registry learned "port 0" from the start entry; tell it the one the OS picked.
  if (config.port === 0) cluster.advertiseAmqpPort(started.port);
  logger.info('node started', {
    version: espressoVersion, nodeId: cluster.nodeId, pid: process.pid, bind: config.bind, port: started.port, httpPort: observe.httpPort,
    ...(started.tlsPort !== undefined ? { tlsPort: started.tlsPort } : {}),
    clusterPort: cluster.groupHost.port, dataDir: config.dataDir, members: cluster.metadata.nodes().map((n) => n.id).join(','),
    plugins: plugins.plugins().map((p) => `${p.name}@${p.version}`).join(','),
  });
  await new Promise<void>((done) => {
    const stop = (signal: string): void => {
      logger.info('stopping', { signal });
      void tasks.close().then(() => stopNode(started, observe, cluster)).then(() => plugins.close()).then(done);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  logger.info('node stopped');
  return ExitCode.Ok;
}

/** The cluster side; its store's own lock refusing us means another node holds the directory. */
async function startCluster(config: ServerConfig, logger: Logger, exchangePlugins: readonly string[]): Promise<StartedCluster> {
  try {
    return await startNodeCluster(config, logger, exchangePlugins);
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

/**
 * `ctl reload-tls`: the broker re-reads its client TLS files (as on SIGHUP, without the rest of the
 * configuration); answers with the certificate now in use, or refuses with the file's problem.
 */
function serveReloadTls(cluster: StartedCluster, broker: BrokerServer, reloadClientTls: () => string | null, config: () => ServerConfig, logger: Logger): void {
  const auditLog = logger.child('audit');
  cluster.rpc.handle(CtlMethod.reloadTls, (from) => audited(auditLog, caller(cluster, from, 'reload-tls', {}), () => {
    if (broker.tlsPort === undefined) return Promise.reject(new OperatingError(OperatingErrorCode.BadConfig, 'this node has no client TLS: start it with --tls-cert and --tls-key'));
    const error = reloadClientTls();
    if (error !== null) return Promise.reject(new OperatingError(OperatingErrorCode.BadConfig, `${error}; the certificate in use stays`));
    return Promise.resolve(encodeJson(describeCertificate(readTlsFiles(config()).cert as Buffer)));
  }));
}

/** The broker first (no client waits on a closed group), then HTTP, the metadata group and the group host. */
async function stopNode(broker: BrokerServer, observe: StartedObserve, cluster: StartedCluster): Promise<void> {
  await broker.close();
  await observe.close();
  await cluster.close();
}
