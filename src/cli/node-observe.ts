// The node's observability as the server command builds it: the stage recorder the broker hands
// sampled traces to (made before the broker), then the metrics read from every layer, the ctl
// services for profiles, stages and top, the peer RTT probe, and the node's HTTP listener on
// --bind:--http-port serving /metrics and the profile routes.

import type { SecureContextOptions } from 'node:tls';
import type { BrokerServer } from '../broker/server.js';
import { readTlsFiles } from '../broker/tls.js';
import { brokerAuthenticator } from '../http/basic-auth.js';
import { serveMetrics } from '../http/metrics-routes.js';
import { serveProfiles } from '../http/profile-routes.js';
import { HttpListener } from '../http/server.js';
import type { Logger } from '../lib/log.js';
import { createNodeMetrics, type NodeMetrics } from '../observe/node-metrics.js';
import { ObserveService } from '../observe/observe-service.js';
import { PeerProbe } from '../observe/peer-probe.js';
import { StageRecorder } from '../observe/stage-recorder.js';
import { ConfigError, ExitCode } from './config-loader.js';
import { espressoVersion, type StartedCluster } from './node-cluster.js';
import type { ServerConfig } from './options.js';
import { httpPortOffset, portFromAmqp } from './ports.js';
import { serveNodeManagement } from './node-management.js';

export interface StartedObserve {
  readonly httpPort: number;
  /** The node's one HTTP listener: other layers (tasks) register their routes on it. */
  readonly http: HttpListener;
  readonly metrics: NodeMetrics;
  /** HTTPS: new connections get these files (a TLS reload); no-op on plain HTTP. */
  reloadTls(files: SecureContextOptions): void;
  close(): Promise<void>;
}

/** The trace hook for startBroker: one publish in config.traceSample. */
export function stageRecorderFor(config: ServerConfig): StageRecorder {
  return new StageRecorder(config.traceSample);
}

/** -1 = the AMQP port + 10000, RabbitMQ's management port (any free port when AMQP's is 0 too). */
export function httpPortOf(config: ServerConfig): number {
  return portFromAmqp(config.httpPort, config.port, httpPortOffset, 'HTTP port', '--http-port');
}

export async function startObserve(
  config: ServerConfig, cluster: StartedCluster, broker: BrokerServer, stages: StageRecorder, logger: Logger,
): Promise<StartedObserve> {
  // The AMQP port the OS picked when asked for any: the HTTP default follows it only when set.
  const port = httpPortOf(config);
  const peers = new PeerProbe(cluster.rpc, cluster.groupHost.transport);
  const node = {
    nodeId: cluster.nodeId, version: espressoVersion, context: broker.context, broker,
    groupHost: cluster.groupHost, gossip: cluster.gossip, peers, stages,
  };
  const metrics = createNodeMetrics(node);
  const service = new ObserveService(node, cluster.rpc, cluster.groupHost.transport, logger.child('observe'));
  let http: HttpListener;
  try {
    http = await HttpListener.start({ host: config.bind, port, logger, ...(config.tlsCert !== '' ? { tls: readTlsFiles(config) } : {}) });
  } catch (e) {
    peers.stop();
    service.stop();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new ConfigError(`HTTP port ${port} on ${config.bind} is already in use; pick another with --http-port`, ExitCode.Unavailable);
    if (code === 'EADDRNOTAVAIL' || code === 'EACCES') throw new ConfigError(`cannot listen on ${config.bind}:${port} for HTTP (${code}); check --bind and --http-port`, ExitCode.Unavailable);
    throw e;
  }
  serveMetrics(http, metrics, config.metricsAuth ? brokerAuthenticator(broker.context) : null);
  serveProfiles(http, service, brokerAuthenticator(broker.context, ['administrator']));
  serveNodeManagement(http, cluster, broker);
  return {
    httpPort: http.port,
    http,
    reloadTls: (files: SecureContextOptions) => http.setSecureContext(files),
    metrics,
    close: async () => {
      peers.stop();
      service.stop();
      await http.close();
    },
  };
}
