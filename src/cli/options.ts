// The table of server settings: one row per setting, naming its config-file key, its ESPRESSO_*
// environment variable and its flag, so the three sources and the help text cannot drift apart.

import type { BrokerConfig } from '../broker/config.js';

/** The node's cluster settings (the group host), next to the broker's own. */
export interface ClusterSettings {
  /** Port of the Raft transport; -1 = the AMQP port + 20000, 0 = any free port. */
  clusterPort: number;
  /** Address the cluster port listens on; '' = the AMQP --bind. */
  clusterBind: string;
  /** Host other nodes dial and clients are told; '' = the cluster bind, or the first non-loopback address when that is a wildcard. */
  advertise: string;
  /** DNS name whose A/AAAA records are the cluster's nodes (peer discovery instead of --seeds); '' = none. */
  discoverDns: string;
  /** How many nodes DNS discovery waits for before forming a new cluster. */
  discoverNodes: number;
  /** host[:port] of the DNS server discovery asks; '' = the system resolver. */
  dnsServer: string;
  /** Node id in the cluster; '' = derived from the node name. */
  nodeId: string;
  /** Shared secret of the cluster transport; '' = a random one kept in the data directory. */
  clusterSecret: string;
  /**
   * The cluster to bootstrap: id@host:port of every node, the same list on each (the first 5 ids
   * sorted are the metadata voters). This node dials each at the address given here, always.
   * Empty: a one-node cluster (or the one --join or an earlier join made it part of).
   */
  seeds: readonly string[];
  /** host:port (or id@host:port) of any node of a running cluster to join; '' = none. */
  join: string;
  /** PEM files for mutual TLS on the cluster port: all three, or none (plaintext, still secret-authenticated). */
  clusterTlsCert: string;
  clusterTlsKey: string;
  clusterTlsCa: string;
}

export const defaultClusterSettings: ClusterSettings = {
  clusterPort: -1, clusterBind: '', advertise: '', discoverDns: '', discoverNodes: 3, dnsServer: '', nodeId: '', clusterSecret: '', seeds: [], join: '', clusterTlsCert: '', clusterTlsKey: '', clusterTlsCa: '',
};

/** The node's HTTP listener (/metrics, later the management API) and what it observes. */
export interface ObserveSettings {
  /** HTTP port, bound on `bind` like AMQP; -1 = the AMQP port + 10000, 0 = any free port. */
  httpPort: number;
  /** /metrics asks for HTTP Basic credentials of a user with a management tag (RabbitMQ: prometheus.authentication.enabled). */
  metricsAuth: boolean;
  /** One publish in this many carries a per-stage trace (0 = none). */
  traceSample: number;
}

export const defaultObserveSettings: ObserveSettings = { httpPort: -1, metricsAuth: false, traceSample: 100 };

/** Plugins the node loads at start (cli/plugins.ts) and their own settings. */
export interface PluginSettings {
  /** Paths of ES modules (or names of shipped plugins), loaded in this order. */
  plugins: readonly string[];
  /** Each plugin's settings by plugin name: what its api.config holds. */
  pluginConfig: { readonly [plugin: string]: { readonly [key: string]: unknown } };
}

export const defaultPluginSettings: PluginSettings = { plugins: [], pluginConfig: {} };

/** Everything `espresso server` is configured with. */
export type ServerConfig = BrokerConfig & ClusterSettings & ObserveSettings & PluginSettings;

export type OptionKind = 'int' | 'string' | 'level' | 'list' | 'bytes' | 'bool' | 'json';

export interface OptionSpec {
  key: keyof ServerConfig;
  flag: string;
  env: string;
  kind: OptionKind;
  /** Inclusive bounds for ints and bytes. */
  min?: number;
  max?: number;
  help: string;
}

const mib = 1024 * 1024;

export const serverOptions: readonly OptionSpec[] = [
  { key: 'port', flag: '--port', env: 'ESPRESSO_PORT', kind: 'int', min: 0, max: 65535, help: 'AMQP port (0 = any free port)' },
  { key: 'bind', flag: '--bind', env: 'ESPRESSO_BIND', kind: 'string', help: 'address to listen on' },
  { key: 'dataDir', flag: '--data-dir', env: 'ESPRESSO_DATA_DIR', kind: 'string', help: 'data directory (created if missing)' },
  { key: 'logLevel', flag: '--log-level', env: 'ESPRESSO_LOG_LEVEL', kind: 'level', help: 'debug | info | warn | error' },
  { key: 'nodeName', flag: '--node-name', env: 'ESPRESSO_NODE_NAME', kind: 'string', help: 'node name (cluster_name for clients)' },
  { key: 'heartbeatSec', flag: '--heartbeat', env: 'ESPRESSO_HEARTBEAT_SEC', kind: 'int', min: 0, max: 65535, help: 'heartbeat seconds proposed to clients (0 = off)' },
  { key: 'frameMaxBytes', flag: '--frame-max', env: 'ESPRESSO_FRAME_MAX_BYTES', kind: 'int', min: 8192, max: 16 * mib, help: 'largest frame in bytes' },
  { key: 'channelMax', flag: '--channel-max', env: 'ESPRESSO_CHANNEL_MAX', kind: 'int', min: 1, max: 65535, help: 'channels per connection' },
  { key: 'maxMessageSizeBytes', flag: '--max-message-size', env: 'ESPRESSO_MAX_MESSAGE_SIZE_BYTES', kind: 'int', min: 1, max: 512 * mib, help: 'largest message body in bytes' },
  { key: 'maxConnections', flag: '--max-connections', env: 'ESPRESSO_MAX_CONNECTIONS', kind: 'int', min: 1, max: 1_000_000, help: 'connections accepted at once' },
  { key: 'memoryHighWatermarkBytes', flag: '--memory-high-watermark', env: 'ESPRESSO_MEMORY_HIGH_WATERMARK_BYTES', kind: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, help: 'memory in use (V8 heap + buffers, not RSS) in bytes above which publishers are blocked (0 = off)' },
  { key: 'diskFreeLimitBytes', flag: '--disk-free-limit', env: 'ESPRESSO_DISK_FREE_LIMIT', kind: 'bytes', min: 0, max: Number.MAX_SAFE_INTEGER, help: 'free disk space below which publishers are blocked, e.g. 50MB, 2GB, 1GiB (0 = off; default 50MB)' },
  { key: 'defaultUser', flag: '--default-user', env: 'ESPRESSO_DEFAULT_USER', kind: 'string', help: 'user created on start' },
  { key: 'defaultPass', flag: '--default-pass', env: 'ESPRESSO_DEFAULT_PASS', kind: 'string', help: 'password of the default user' },
  { key: 'clusterPort', flag: '--cluster-port', env: 'ESPRESSO_CLUSTER_PORT', kind: 'int', min: -1, max: 65535, help: 'Raft transport port (-1 = AMQP port + 20000, 0 = any free port)' },
  { key: 'clusterBind', flag: '--cluster-bind', env: 'ESPRESSO_CLUSTER_BIND', kind: 'string', help: 'address the cluster port listens on (default: --bind)' },
  { key: 'advertise', flag: '--advertise', env: 'ESPRESSO_ADVERTISE', kind: 'string', help: 'address or DNS name other nodes and clients reach this node at (default: the bind address; its first non-loopback address when bound to 0.0.0.0 or ::)' },
  { key: 'discoverDns', flag: '--discover-dns', env: 'ESPRESSO_DISCOVER_DNS', kind: 'string', help: "DNS name resolving to every node's address (e.g. a Kubernetes headless Service): find the peers there instead of --seeds" },
  { key: 'discoverNodes', flag: '--discover-nodes', env: 'ESPRESSO_DISCOVER_NODES', kind: 'int', min: 1, max: 99, help: 'with --discover-dns: how many nodes to wait for before forming a new cluster' },
  { key: 'dnsServer', flag: '--dns-server', env: 'ESPRESSO_DNS_SERVER', kind: 'string', help: 'with --discover-dns: DNS server host[:port] to ask (default: the system resolver)' },
  { key: 'nodeId', flag: '--node-id', env: 'ESPRESSO_NODE_ID', kind: 'string', help: 'node id in the cluster (default: from --node-name)' },
  { key: 'clusterSecret', flag: '--cluster-secret', env: 'ESPRESSO_CLUSTER_SECRET', kind: 'string', help: 'cluster transport secret (default: random, kept in the data dir)' },
  { key: 'seeds', flag: '--seeds', env: 'ESPRESSO_SEEDS', kind: 'list', help: 'id@host:port of every node of the cluster to form (same list on each)' },
  { key: 'join', flag: '--join', env: 'ESPRESSO_JOIN', kind: 'string', help: 'host:port (or id@host:port) of a node of a running cluster to join' },
  { key: 'clusterTlsCert', flag: '--cluster-tls-cert', env: 'ESPRESSO_CLUSTER_TLS_CERT', kind: 'string', help: "PEM certificate of this node for mutual TLS on the cluster port" },
  { key: 'clusterTlsKey', flag: '--cluster-tls-key', env: 'ESPRESSO_CLUSTER_TLS_KEY', kind: 'string', help: 'PEM private key of that certificate' },
  { key: 'clusterTlsCa', flag: '--cluster-tls-ca', env: 'ESPRESSO_CLUSTER_TLS_CA', kind: 'string', help: "PEM CA that signs every node's certificate" },
  { key: 'tlsPort', flag: '--tls-port', env: 'ESPRESSO_TLS_PORT', kind: 'int', min: -1, max: 65535, help: 'AMQPS port for clients (-1 = 5671 when --tls-cert is given, 0 = any free port)' },
  { key: 'tlsCert', flag: '--tls-cert', env: 'ESPRESSO_TLS_CERT', kind: 'string', help: 'PEM certificate (chain) for AMQP over TLS; re-read on SIGHUP' },
  { key: 'tlsKey', flag: '--tls-key', env: 'ESPRESSO_TLS_KEY', kind: 'string', help: 'PEM private key of --tls-cert; re-read on SIGHUP' },
  { key: 'tlsCa', flag: '--tls-ca', env: 'ESPRESSO_TLS_CA', kind: 'string', help: 'PEM CA that client certificates are verified against; re-read on SIGHUP' },
  { key: 'tlsVerify', flag: '--tls-verify', env: 'ESPRESSO_TLS_VERIFY', kind: 'string', help: 'client certificates: none | peer (verified when sent; enables SASL EXTERNAL) | require' },
  { key: 'tlsOnly', flag: '--tls-only', env: 'ESPRESSO_TLS_ONLY', kind: 'bool', help: 'no plain AMQP port: clients connect only over TLS' },
  { key: 'loginFailureDelayMs', flag: '--login-failure-delay', env: 'ESPRESSO_LOGIN_FAILURE_DELAY_MS', kind: 'int', min: 0, max: 9000, help: 'milliseconds before a failed login is answered' },
  { key: 'loginFailuresMax', flag: '--login-failures-max', env: 'ESPRESSO_LOGIN_FAILURES_MAX', kind: 'int', min: 0, max: 1_000_000, help: 'failed logins of one user from one address that lock the pair out for --login-lockout (0 = never)' },
  { key: 'loginLockoutMs', flag: '--login-lockout', env: 'ESPRESSO_LOGIN_LOCKOUT_MS', kind: 'int', min: 1, max: 86_400_000, help: 'milliseconds the failures are counted over, and the lockout lasts' },
  { key: 'maxConnectionRate', flag: '--max-connection-rate', env: 'ESPRESSO_MAX_CONNECTION_RATE', kind: 'int', min: 0, max: 1_000_000, help: 'connections opened per second by the node; more get 530 (0 = no limit)' },
  { key: 'plugins', flag: '--plugin', env: 'ESPRESSO_PLUGINS', kind: 'list', help: 'plugin to load: a path to an ES module, or consistent-hash, delayed-message, auth-http (repeatable; comma-separated in the environment)' },
  { key: 'pluginConfig', flag: '--plugin-config', env: 'ESPRESSO_PLUGIN_CONFIG', kind: 'json', help: 'JSON object of each plugin\'s settings by plugin name, e.g. {"auth-http":{"user_path":"http://127.0.0.1:8000/auth/user"}}' },
  { key: 'loopbackUsers', flag: '--loopback-users', env: 'ESPRESSO_LOOPBACK_USERS', kind: 'list', help: 'comma-separated users allowed only from loopback' },
  { key: 'httpPort', flag: '--http-port', env: 'ESPRESSO_HTTP_PORT', kind: 'int', min: -1, max: 65535, help: 'HTTP port for /metrics (-1 = AMQP port + 10000, 0 = any free port)' },
  { key: 'metricsAuth', flag: '--metrics-auth', env: 'ESPRESSO_METRICS_AUTH', kind: 'bool', help: '/metrics needs HTTP Basic auth of a user tagged administrator, monitoring, policymaker or management (true|false)' },
  { key: 'traceSample', flag: '--trace-sample', env: 'ESPRESSO_TRACE_SAMPLE', kind: 'int', min: 0, max: 1_000_000_000, help: 'trace the stages of 1 publish in N (0 = off)' },
];
