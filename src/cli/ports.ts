// The node's ports as RabbitMQ lays them out: AMQP (5672), HTTP for the management API and
// /metrics at AMQP + 10000 (15672), the cluster's gRPC transport at AMQP + 20000 (25672).

import { ConfigError, ExitCode } from './config-loader.js';

export const httpPortOffset = 10_000;
export const clusterPortOffset = 20_000;

/**
 * A port given as -1 (the default: the AMQP port + `offset`), 0 (any free port) or itself. With
 * AMQP on any free port (0) the derived one is any free port too; past 65535 it is a config error
 * naming the flag that sets it.
 */
export function portFromAmqp(given: number, amqpPort: number, offset: number, what: string, flag: string): number {
  if (given !== -1) return given;
  if (amqpPort === 0) return 0;
  const port = amqpPort + offset;
  if (port > 65535) {
    throw new ConfigError(`${what} ${port} (AMQP port + ${offset}) is above 65535; set one with ${flag}`, ExitCode.Config);
  }
  return port;
}
