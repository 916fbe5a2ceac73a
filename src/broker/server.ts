// The AMQP TCP server of one node: accepts sockets, enforces max connections, runs the memory
// alarm (connection.blocked/unblocked) and closes everything on shutdown.

import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../lib/log.js';
import type { Clock } from '../lib/random.js';
import type { BrokerConfig } from './config.js';
import { Connection } from './connection.js';
import { limits } from './limits.js';
import { startMemoryAlarm, type MemoryAlarm } from './memory-alarm.js';
import { createNodeContext, type NodeCluster, type NodeContext } from './node-context.js';

export interface BrokerDeps {
  logger: Logger;
  clock: Clock;
  /** RSS source for the memory alarm (tests pass a fake one). */
  readRssBytes?: () => number;
  /** The node's group host and replicated metadata; without them metadata lives in memory. */
  cluster?: NodeCluster;
}

export interface BrokerServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly context: NodeContext;
  connectionCount(): number;
  /** Closes every connection with 320 CONNECTION_FORCED and stops listening. */
  close(): Promise<void>;
}

export async function startBroker(config: BrokerConfig, deps: BrokerDeps): Promise<BrokerServer> {
  const logger = deps.logger.child('broker');
  const context = createNodeContext(config, logger, deps.clock, deps.cluster);
  const connections = new Set<Connection>();
  let connectionSeq = 0;
  const server: Server = createServer({ noDelay: true, pauseOnConnect: false }, (socket: Socket) => {
    connectionSeq++;
    const conn = new Connection(socket, `c${connectionSeq}`, context, () => connections.delete(conn));
    connections.add(conn);
  });
  context.connectionCount = () => connections.size;
  const alarm: MemoryAlarm = startMemoryAlarm(
    config.memoryHighWatermarkBytes,
    limits.memoryCheckIntervalMs,
    deps.readRssBytes ?? (() => process.memoryUsage.rss()),
    (raised, rssBytes) => {
      logger.warn(raised ? 'memory alarm raised' : 'memory alarm cleared', { rssBytes, watermarkBytes: config.memoryHighWatermarkBytes });
      context.memoryAlarm = raised;
      for (const c of connections) c.setBlocked(raised);
    },
  );
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
    close: async () => {
      alarm.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of [...connections]) c.forceClose('CONNECTION_FORCED - broker forced connection closure with reason \'shutdown\'');
      await closed;
      context.shutdown();
    },
  };
}
