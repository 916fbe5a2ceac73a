// The AMQP TCP server of one node: accepts sockets, enforces max connections, runs the memory
// and disk alarms (connection.blocked/unblocked) and closes everything on shutdown.

import { createServer, type Server, type Socket } from 'node:net';
import type { OperatingError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Clock } from '../lib/random.js';
import type { BrokerConfig } from './config.js';
import { Connection } from './connection.js';
import { limits } from './limits.js';
import { freeBytesOf, startDiskAlarm, type DiskAlarm } from './disk-alarm.js';
import { startMemoryAlarm, type MemoryAlarm } from './memory-alarm.js';
import { createNodeContext, type NodeCluster, type NodeContext } from './node-context.js';
import type { TraceRecorder } from './counters.js';

export interface BrokerDeps {
  logger: Logger;
  clock: Clock;
  /** RSS source for the memory alarm (tests pass a fake one). */
  readRssBytes?: () => number;
  /** Free-space source for the disk alarm (statfs of the data dir by default) and how often it is read. */
  readDiskFreeBytes?: () => Promise<number>;
  diskCheckIntervalMs?: number;
  /** The node's group host and replicated metadata; without them metadata lives in memory. */
  cluster?: NodeCluster;
  /** Where sampled publishes' stage traces go (the metrics layer); none by default. */
  tracer?: TraceRecorder;
}

export interface BrokerServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly context: NodeContext;
  connectionCount(): number;
  /** Consumers of every channel of every connection (the consumers gauge). */
  consumerCount(): number;
  /** Closes every connection with 320 CONNECTION_FORCED and stops listening. */
  close(): Promise<void>;
}

export async function startBroker(config: BrokerConfig, deps: BrokerDeps): Promise<BrokerServer> {
  const logger = deps.logger.child('broker');
  const context = createNodeContext(config, logger, deps.clock, deps.cluster, deps.tracer);
  const connections = new Set<Connection>();
  let connectionSeq = 0;
  const server: Server = createServer({ noDelay: true, pauseOnConnect: false }, (socket: Socket) => {
    connectionSeq++;
    const conn = new Connection(socket, `c${connectionSeq}`, context, () => {
      if (connections.delete(conn)) context.counters.connectionsClosed++;
    });
    connections.add(conn);
    context.counters.connectionsOpened++;
  });
  context.connectionCount = () => connections.size;
  const alarm: MemoryAlarm = startMemoryAlarm(
    config.memoryHighWatermarkBytes,
    limits.memoryCheckIntervalMs,
    deps.readRssBytes ?? (() => process.memoryUsage.rss()),
    (raised, rssBytes) => {
      logger.warn(raised ? 'memory alarm raised' : 'memory alarm cleared', { rssBytes, watermarkBytes: config.memoryHighWatermarkBytes });
      context.memoryAlarm = raised;
      for (const c of connections) c.alarmsChanged();
    },
  );
  const disk = watchDisk(config, deps, logger, context, () => { for (const c of connections) c.alarmsChanged(); });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.bind, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => logger.error('server socket error', { error: e.message }));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  logger.info('listening', { bind: config.bind, port });
  return {
    port,
    context,
    connectionCount: () => connections.size,
    consumerCount: () => {
      let n = 0;
      for (const c of connections) n += c.consumerCount();
      return n;
    },
    close: async () => {
      alarm.stop();
      disk.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of [...connections]) c.forceClose('CONNECTION_FORCED - broker forced connection closure with reason \'shutdown\'');
      await closed;
      context.shutdown();
    },
  };
}

/**
 * The node's disk alarm: free space below config.diskFreeLimitBytes, or the WAL retrying failed
 * writes (disk full, permission denied, I/O error: the group host's storage alarm). One log line
 * per change of either; `changed` runs when the combined alarm flips.
 */
function watchDisk(config: BrokerConfig, deps: BrokerDeps, logger: Logger, context: NodeContext, changed: () => void): { stop(): void } {
  const causes = { lowSpace: false, writesFailing: false };
  const update = (): void => {
    const raised = causes.lowSpace || causes.writesFailing;
    if (raised === context.diskAlarm) return;
    context.diskAlarm = raised;
    changed();
  };
  const space: DiskAlarm = startDiskAlarm(
    config.diskFreeLimitBytes,
    deps.diskCheckIntervalMs ?? limits.diskCheckIntervalMs,
    deps.readDiskFreeBytes ?? (() => freeBytesOf(config.dataDir)),
    (raised, freeBytes) => {
      const fields = { freeBytes, limitBytes: config.diskFreeLimitBytes, dataDir: config.dataDir };
      if (raised) logger.warn('disk alarm raised: free disk space is below the limit; publishers are blocked', fields);
      else logger.warn('disk alarm cleared: free disk space is above the limit again', fields);
      causes.lowSpace = raised;
      update();
    },
    (e) => logger.warn('cannot read free disk space of the data directory', { dataDir: config.dataDir, error: String(e) }),
  );
  const host = deps.cluster?.groupHost;
  const storage = (failure: OperatingError | null): void => {
    if (failure !== null) logger.error('disk alarm raised: the write-ahead log cannot write; publishers are blocked', { code: failure.code, error: failure.message });
    else logger.warn('disk alarm cleared: the write-ahead log writes again');
    causes.writesFailing = failure !== null;
    update();
  };
  const off = host?.onStorageAlarm(storage);
  if (host !== undefined && host.storageAlarm() !== null) storage(host.storageAlarm());
  return {
    stop: () => {
      space.stop();
      off?.();
    },
  };
}
