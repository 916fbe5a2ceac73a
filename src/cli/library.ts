// The package's library entry (package.json "exports"): startNode runs an espresso node inside the
// calling process (for application tests and embedding), the Task-RPC SDK is exported beside it,
// and the plugin API's types for plugins written in TypeScript.
//
//   import { startNode, connectRpc } from 'espresso';
//   const node = await startNode({ plugins: ['consistent-hash'] });
//   // amqp://guest:guest@127.0.0.1:${node.amqpPort}
//   await node.stop();

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { EspressoPlugin } from '../broker/plugin-api.js';
import type { PluginCounters } from '../broker/plugin-host.js';
import { startBroker } from '../broker/server.js';
import { createLogger, type LogLevel } from '../lib/log.js';
import { defaultBrokerConfig } from '../broker/config.js';
import { lockDataDir, prepareDataDir } from './data-dir.js';
import { startNodeCluster } from './node-cluster.js';
import { defaultClusterSettings, defaultObserveSettings, defaultPluginSettings, type ServerConfig } from './options.js';
import { stageRecorderFor, startObserve } from './node-observe.js';
import { loadPlugins } from './plugins.js';

export * from '../tasks/index.js';
export type * from '../broker/plugin-api.js';
export type { PluginCounters } from '../broker/plugin-host.js';

export interface StartNodeOptions extends Partial<Omit<ServerConfig, 'plugins'>> {
  /** Paths of plugin modules, names of shipped plugins (consistent-hash, delayed-message, auth-http), or plugin objects. */
  plugins?: ReadonlyArray<string | EspressoPlugin>;
  /** Where log lines go (default: nowhere); the level is `logLevel` (default warn). */
  log?: (line: string) => void;
}

export interface StartedNode {
  readonly nodeId: string;
  readonly amqpPort: number;
  readonly clusterPort: number;
  /** The HTTP listener's port (/metrics, and what the layers above register). */
  readonly httpPort: number;
  /** amqp://user:pass@host:port of the node's default user. */
  readonly amqpUrl: string;
  /** The data directory (a temporary one, removed by stop(), when none was given). */
  readonly dataDir: string;
  /** Failures of the node's plugins at their seams (routing, interceptors, auth, listeners). */
  pluginCounters(): PluginCounters;
  /** Closes every connection, stops the node and releases its data directory. */
  stop(): Promise<void>;
}

const realClock = { nowMs: () => Date.now() };

/**
 * Starts a node in this process: AMQP on `port` (default: any free port) of 127.0.0.1, the cluster
 * port and the HTTP port on any free port, a temporary data directory unless `dataDir` is given. Pass `seeds` or
 * `join` as the server command takes them to make it part of a cluster.
 */
export async function startNode(options: StartNodeOptions = {}): Promise<StartedNode> {
  const { plugins: pluginList, log, ...settings } = options;
  const ownDir = settings.dataDir === undefined ? mkdtempSync(join(tmpdir(), 'espresso-node-')) : undefined;
  const config: ServerConfig = {
    ...defaultBrokerConfig, ...defaultClusterSettings, ...defaultObserveSettings, ...defaultPluginSettings,
    port: 0, clusterPort: 0, httpPort: 0, logLevel: 'warn', nodeName: `espresso-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    ...settings,
    dataDir: resolve(settings.dataDir ?? ownDir!),
  };
  prepareDataDir(config.dataDir);
  const release = lockDataDir(config.dataDir);
  const logger = createLogger({
    sink: log ?? (() => undefined), clock: realClock, level: config.logLevel as LogLevel, component: 'espresso',
    base: { node: config.nodeId !== '' ? config.nodeId : config.nodeName },
  });
  const cleanup = (): void => {
    release();
    if (ownDir !== undefined) rmSync(ownDir, { recursive: true, force: true });
  };
  let host: Awaited<ReturnType<typeof loadPlugins>> | undefined;
  try {
    host = await loadPlugins({ plugins: pluginList ?? [], pluginConfig: config.pluginConfig }, config.nodeId !== '' ? config.nodeId : config.nodeName, logger);
    const cluster = await startNodeCluster(config, logger, host.exchangePlugins());
    const plugins = host;
    const stages = stageRecorderFor(config);
    const broker = await startBroker(cluster.brokerConfig, { logger, clock: realClock, cluster, plugins, tracer: stages }).catch(async (e: unknown) => {
      await cluster.close();
      throw e;
    });
    const observe = await startObserve(config, cluster, broker, stages, logger).catch(async (e: unknown) => {
      await broker.close();
      await cluster.close();
      throw e;
    });
    if (config.port === 0) cluster.advertiseAmqpPort(broker.port);
    let stopped: Promise<void> | undefined;
    return {
      nodeId: cluster.nodeId,
      amqpPort: broker.port,
      clusterPort: cluster.groupHost.port,
      httpPort: observe.httpPort,
      amqpUrl: `amqp://${encodeURIComponent(config.defaultUser)}:${encodeURIComponent(config.defaultPass)}@127.0.0.1:${broker.port}`,
      dataDir: config.dataDir,
      pluginCounters: () => ({ ...plugins.counters }),
      stop: () => stopped ??= (async () => {
        await broker.close();
        await observe.close();
        await cluster.close();
        plugins.close();
        cleanup();
      })(),
    };
  } catch (e) {
    host?.close();
    cleanup();
    throw e;
  }
}
