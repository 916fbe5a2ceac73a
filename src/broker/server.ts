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
import { collectGarbage, liveMemoryBytes, startMemoryAlarm, type MemoryAlarm } from './memory-alarm.js';
import { createNodeContext, type NodeCluster, type NodeContext } from './node-context.js';
import type { TraceRecorder } from './counters.js';

export interface BrokerDeps {
  logger: Logger;
  clock: Clock;
  /** Memory in use for the memory alarm (liveMemoryBytes by default; tests pass a fake one) and its garbage collector. */
  readMemoryBytes?: () => number;
  collectGarbage?: () => void;
  /** Free-space source for the disk alarm (statfs of the data dir by default) and how often it is read. */
  readDiskFreeBytes?: () => Promise<number>;
  diskCheckIntervalMs?: number;
  /** The node's group host and replicated metadata; without them metadata lives in memory. */
  cluster?: NodeCluster;
  /** Where sampled publishes' stage traces go (the metrics layer); none by default. */
  tracer?: TraceRecorder;
}

/** The broker settings a running node can change (the rest need a restart). */
export const reloadableBrokerKeys = [
  'logLevel', 'heartbeatSec', 'frameMaxBytes', 'channelMax', 'maxMessageSizeBytes', 'maxConnections',
  'memoryHighWatermarkBytes', 'diskFreeLimitBytes', 'loopbackUsers',
] as const;
export type ReloadableBrokerKey = (typeof reloadableBrokerKeys)[number];

export interface BrokerServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly context: NodeContext;
  connectionCount(): number;
  /** Consumers of every channel of every connection (the consumers gauge). */
  consumerCount(): number;
  /**
   * Changes settings of the running broker (a reload): limits proposed to or checked on new
   * connections and messages take effect at once; the memory and disk alarms are re-armed with
   * their new thresholds.
   */
  reconfigure(changes: Partial<Pick<BrokerConfig, ReloadableBrokerKey>>): void;
  /** Each connection's flow state (running, flow: held by credit flow, blocked: by an alarm) and unfinished enqueues. */
  connectionFlow(): Array<{ id: string; state: 'running' | 'flow' | 'blocked'; inFlight: number; holds: number }>;
  /** Closes every connection with 320 CONNECTION_FORCED and stops listening. */
  close(): Promise<void>;
}

export async function startBroker(given: BrokerConfig, deps: BrokerDeps): Promise<BrokerServer> {
  const logger = deps.logger.child('broker');
  // The context keeps its own copy: a reload changes it in place, and every connection reads it.
  const context = createNodeContext({ ...given, loopbackUsers: [...given.loopbackUsers] }, logger, deps.clock, deps.cluster, deps.tracer);
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
  const config = context.config;
  const memoryAlarm = (): MemoryAlarm => startMemoryAlarm(
    config.memoryHighWatermarkBytes,
    limits.memoryCheckIntervalMs,
    { readMemoryBytes: deps.readMemoryBytes ?? liveMemoryBytes, collect: deps.collectGarbage ?? collectGarbage },
    (raised, memoryBytes) => {
      const fields = { memoryBytes, watermarkBytes: config.memoryHighWatermarkBytes };
      if (raised) logger.warn('memory alarm raised: memory in use is above the high watermark; publishers are blocked', fields);
      else logger.warn('memory alarm cleared: memory in use is below the high watermark again', fields);
      context.memoryAlarm = raised;
      for (const c of connections) c.alarmsChanged();
    },
  );
  const diskAlarm = (): { stop(): void } => watchDisk(config, deps, logger, context, () => { for (const c of connections) c.alarmsChanged(); });
  let alarm = memoryAlarm();
  let disk = diskAlarm();
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
  logger.debug('listening', { bind: config.bind, port });
  return {
    port,
    context,
    connectionCount: () => connections.size,
    consumerCount: () => {
      let n = 0;
      for (const c of connections) n += c.consumerCount();
      return n;
    },
    reconfigure: (changes) => {
      Object.assign(config, changes);
      // A re-armed alarm starts cleared; its first check raises it again if it still holds.
      const cleared = (which: 'memoryAlarm' | 'diskAlarm'): void => {
        if (!context[which]) return;
        context[which] = false;
        for (const c of connections) c.alarmsChanged();
      };
      if (changes.memoryHighWatermarkBytes !== undefined) {
        alarm.stop();
        cleared('memoryAlarm');
        alarm = memoryAlarm();
      }
      if (changes.diskFreeLimitBytes !== undefined) {
        disk.stop();
        cleared('diskAlarm');
        disk = diskAlarm();
      }
    },
    connectionFlow: () => [...connections].map((c) => ({ id: c.id, state: c.flowState, inFlight: c.creditStats.inFlight, holds: c.creditStats.holds })),
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
