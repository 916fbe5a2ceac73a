// The broker's configuration: one typed record the composition root (cli/) fills from a file,
// ESPRESSO_* environment variables and flags, in that order of precedence.

import { totalmem } from 'node:os';
import { limits } from './limits.js';

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error';

export interface BrokerConfig {
  /** TCP port for AMQP (0 = any free port, used by tests). */
  port: number;
  /** Address to listen on. */
  bind: string;
  /** Directory for the node's data (created if missing). */
  dataDir: string;
  logLevel: LogLevelName;
  /** Name shown as cluster_name in connection.start and in logs. */
  nodeName: string;
  heartbeatSec: number;
  frameMaxBytes: number;
  channelMax: number;
  maxMessageSizeBytes: number;
  maxConnections: number;
  /** Memory in use (memory-alarm.ts: V8 heap + buffers, not RSS) above which publishers are blocked; 0 disables the alarm. */
  memoryHighWatermarkBytes: number;
  /** Free bytes on the data directory's file system below which publishers are blocked; 0 disables the check. */
  diskFreeLimitBytes: number;
  /** The default user created on an empty node (RabbitMQ: guest/guest, loopback only). */
  defaultUser: string;
  defaultPass: string;
  /** Users who may only log in from a loopback address (RabbitMQ's loopback_users). */
  loopbackUsers: string[];
  /** AMQPS port (tls.ts): -1 = 5671 when a certificate is given, 0 = any free port. */
  tlsPort: number;
  /** PEM certificate, key and client CA of the AMQPS listener ('' = no TLS for clients). */
  tlsCert: string;
  tlsKey: string;
  tlsCa: string;
  /** Client certificates: none | peer (verified when presented) | require (tls.ts). */
  tlsVerify: string;
  /** No plain AMQP port: clients connect only over TLS. */
  tlsOnly: boolean;
  /** A failed login is answered after this long (login-throttle.ts). */
  loginFailureDelayMs: number;
  /** Failed logins of one user from one address within loginLockoutMs that lock the pair out for loginLockoutMs (0 = no lockout). */
  loginFailuresMax: number;
  loginLockoutMs: number;
  /** Connections accepted per second by the node; more are refused at connection.open (0 = no limit). */
  maxConnectionRate: number;
}

export const defaultBrokerConfig: BrokerConfig = {
  port: 5672,
  bind: '127.0.0.1',
  dataDir: './data',
  logLevel: 'info',
  nodeName: 'espresso@localhost',
  heartbeatSec: limits.heartbeatSec,
  frameMaxBytes: limits.frameMaxBytes,
  channelMax: limits.channelMax,
  maxMessageSizeBytes: limits.maxMessageSizeBytes,
  maxConnections: limits.maxConnections,
  // RabbitMQ's default vm_memory_high_watermark: 0.6 of the machine's memory.
  memoryHighWatermarkBytes: Math.floor(totalmem() * limits.memoryHighWatermarkFraction),
  diskFreeLimitBytes: limits.diskFreeLimitBytes,
  defaultUser: 'guest',
  defaultPass: 'guest',
  loopbackUsers: ['guest'],
  tlsPort: -1,
  tlsCert: '',
  tlsKey: '',
  tlsCa: '',
  tlsVerify: 'none',
  tlsOnly: false,
  loginFailureDelayMs: limits.loginFailureDelayMs,
  loginFailuresMax: limits.loginFailuresMax,
  loginLockoutMs: limits.loginLockoutMs,
  maxConnectionRate: 0,
};
