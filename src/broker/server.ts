// The AMQP TCP server of one node: accepts sockets, enforces max connections, runs the memory
// and disk alarms (connection.blocked/unblocked) and closes everything on shutdown.

import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { OperatingError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Clock } from '../lib/random.js';
import type { BrokerConfig } from './config.js';
import { Connection } from './connection.js';
import { limits } from './limits.js';
import { freeBytesOf, startDiskAlarm, type DiskAlarm } from './disk-alarm.js';
import { collectGarbage, liveMemoryBytes, startMemoryAlarm, type MemoryAlarm } from './memory-alarm.js';
import { createNodeContext, type NodeCluster, type NodeContext } from './node-context.js';
import { defaultTlsPort, describeCertificate, readTlsFiles, refusedPeer, tlsServerOptions, verifiedPeerUser } from './tls.js';
import { closeOnVhostDeleted, type ConnectionInfo } from './connection-info.js';
import type { PluginHost } from './plugin-host.js';
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
  /** The node's loaded plugins (cli/plugins.ts). */
  plugins?: PluginHost;
  /** Where sampled publishes' stage traces go (the metrics layer); none by default. */
  tracer?: TraceRecorder;
}

/** The broker settings a running node can change (the rest need a restart). */
export const reloadableBrokerKeys = [
  'logLevel', 'heartbeatSec', 'frameMaxBytes', 'channelMax', 'maxMessageSizeBytes', 'maxConnections',
  'memoryHighWatermarkBytes', 'diskFreeLimitBytes', 'loopbackUsers', 'tlsCert', 'tlsKey', 'tlsCa',
  'loginFailureDelayMs', 'loginFailuresMax', 'loginLockoutMs', 'maxConnectionRate',
] as const;
export type ReloadableBrokerKey = (typeof reloadableBrokerKeys)[number];

export interface BrokerServer {
  /** The bound plain AMQP port (useful with port 0); the TLS port with --tls-only. */
  readonly port: number;
  /** The bound AMQPS port; undefined without a certificate. */
  readonly tlsPort: number | undefined;
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
  /**
   * Reads the TLS certificate, key and CA files again (their paths as configured now): connections
   * accepted from then on get them. An error (unreadable or invalid file) is returned and logged,
   * and the certificate in use stays. null without TLS or on success.
   */
  reloadTls(): string | null;
  /** Each connection's flow state (running, flow: held by credit flow, blocked: by an alarm) and unfinished enqueues. */
  connectionFlow(): Array<{ id: string; state: 'running' | 'flow' | 'blocked'; inFlight: number; holds: number }>;
  /** The open connections with their channels and consumers (the management API's lists). */
  connections(): ConnectionInfo[];
  /** Closes the connection of that name (RabbitMQ's "peer -> local") with 320 and `reason`; false when none. */
  closeConnection(name: string, reason: string): boolean;
  /** Closes every connection with 320 CONNECTION_FORCED and stops listening. */
  close(): Promise<void>;
}

export async function startBroker(given: BrokerConfig, deps: BrokerDeps): Promise<BrokerServer> {
  const logger = deps.logger.child('broker');
  // The context keeps its own copy: a reload changes it in place, and every connection reads it.
  const context = createNodeContext({ ...given, loopbackUsers: [...given.loopbackUsers] }, logger, deps.clock, deps.cluster, deps.tracer, deps.plugins);
  const connections = new Set<Connection>();
  let connectionSeq = 0;
  const accept = (socket: Socket, secure?: { peerUser: string | undefined }): void => {
    connectionSeq++;
    const conn = new Connection(socket, `c${connectionSeq}`, context, () => {
      if (connections.delete(conn)) context.counters.connectionsClosed++;
    }, secure);
    connections.add(conn);
    context.counters.connectionsOpened++;
  };
  const server: Server | null = given.tlsOnly ? null : createServer({ noDelay: true, pauseOnConnect: false }, (socket: Socket) => accept(socket));
  context.connectionCount = () => connections.size;
  const stopVhostWatch = closeOnVhostDeleted(deps.cluster?.metadata, context, () => connections);
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
  const tls = config.tlsCert === '' ? null : createTlsServer(tlsServerOptions(config, limits.handshakeTimeoutMs), (socket: TLSSocket) => {
    const refused = refusedPeer(socket, config.tlsVerify);
    if (refused !== null) {
      logger.warn('TLS client refused', { remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`, reason: refused });
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    accept(socket, { peerUser: verifiedPeerUser(socket) });
  });
  tls?.on('tlsClientError', (e, socket) => logger.debug('TLS handshake failed', { remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`, error: e.message }));
  let port: number | undefined;
  let tlsPort: number | undefined;
  try {
    port = server === null ? undefined : await listenOn(server, config.port, config.bind, logger);
    tlsPort = tls === null ? undefined : await listenOn(tls, config.tlsPort === -1 ? defaultTlsPort : config.tlsPort, config.bind, logger);
  } catch (e) {
    // One port bound and the other not: nothing of the node stays up.
    alarm.stop();
    disk.stop();
    server?.close();
    tls?.close();
    context.shutdown();
    throw e;
  }
  if (tls !== null) logger.info('TLS for clients', { port: tlsPort, verify: config.tlsVerify, ...describeCertificate(readTlsFiles(config).cert as Buffer) });
  return {
    port: port ?? tlsPort ?? 0,
    tlsPort,
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
    reloadTls: () => {
      if (tls === null) return null;
      try {
        const files = readTlsFiles(config);
        tls.setSecureContext(files);
        logger.info('TLS certificate reloaded: new connections get it', describeCertificate(files.cert as Buffer));
        return null;
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        logger.error('TLS reload failed: the certificate in use stays', { error });
        return error;
      }
    },
    connectionFlow: () => [...connections].map((c) => ({ id: c.id, state: c.flowState, inFlight: c.creditStats.inFlight, holds: c.creditStats.holds })),
    connections: () => [...connections].filter((c) => c.opened).map((c) => c.describe()),
    closeConnection: (name, reason) => {
      const c = [...connections].find((x) => x.opened && x.describe().name === name);
      c?.forceClose(`CONNECTION_FORCED - ${reason}`);
      return c !== undefined;
    },
    close: async () => {
      stopVhostWatch();
      alarm.stop();
      disk.stop();
      const closed = [server, tls].map((s) => new Promise<void>((resolve) => (s === null ? resolve() : s.close(() => resolve()))));
      for (const c of [...connections]) c.forceClose('CONNECTION_FORCED - broker forced connection closure with reason \'shutdown\'');
      await Promise.all(closed);
      context.shutdown();
    },
  };
}

/** Listens on port (0 = any free one) and returns the bound port. */
async function listenOn(server: Server | TlsServer, port: number, bind: string, logger: Logger): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, bind, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => logger.error('server socket error', { error: e.message }));
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  logger.debug('listening', { bind, port: bound });
  return bound;
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
