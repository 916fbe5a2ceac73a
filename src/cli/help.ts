// Help texts of the espresso command and its subcommands.

import { defaultBrokerConfig } from '../broker/config.js';
import { optionHelp } from './args.js';
import { defaultClusterSettings, defaultObserveSettings, serverOptions } from './options.js';

/** Defaults that are computed rather than fixed, in words. */
const computedDefaults: Record<string, string> = {
  memoryHighWatermarkBytes: `${defaultBrokerConfig.memoryHighWatermarkBytes} = ${(defaultBrokerConfig.memoryHighWatermarkBytes / 2 ** 30).toFixed(1)} GiB, 0.6 of this machine's memory`,
  clusterPort: 'AMQP port + 20000',
  httpPort: 'AMQP port + 10000',
  nodeId: 'the node name',
  clusterSecret: 'kept in <data-dir>/cluster-secret',
  diskFreeLimitBytes: '50MB',
};

export const mainHelp = `espresso - a quorum-replicated AMQP 0-9-1 message broker

Usage: espresso <command> [flags]

Commands:
  server      run one broker node (AMQP on 127.0.0.1:5672 by default)
  cluster up  run a local cluster of N nodes (espresso cluster up --nodes 3)
  cluster restart NODE  start a node of the running 'cluster up' again after it died
  ctl         ask a running node: cluster-status, list-queues, rebalance, grow, shrink,
              add-node, forget-node, set-policy, clear-policy, list-policies, ready, drain,
              set-vhost-limits, set-user-limits, reload-tls, profile cpu|heap|stages, top
  rpc         try Task-RPC: call NAME JSON, serve-echo, bench
  tasks       durable tasks over a node's REST API: define, submit, status, watch, list, cancel
  help        show this help

Run 'espresso <command> --help' for the flags of a command.
Exit codes: 0 ok, 1 internal error, 64 bad command line, 66 config file unreadable,
69 unavailable (port, or data directory, in use by another process), 73 data directory unusable
(not writable, or a file), 78 bad configuration (incl. a cluster secret other than the data
directory's).
`;

export const serverHelp = `Usage: espresso server [flags]

Runs one broker node: AMQP on --port, HTTP (/metrics) on --http-port (AMQP + 10000), the
cluster transport on --cluster-port (AMQP + 20000). Settings come from defaults, then the JSON file given by --config
(keys as in the README, e.g. {"port": 5673}), then ESPRESSO_* environment variables, then flags.

Flags:
  --config <file>                   JSON configuration file [ESPRESSO_CONFIG]
${optionHelp(serverOptions, { ...defaultBrokerConfig, ...defaultClusterSettings, ...defaultObserveSettings }, computedDefaults)}
  --help                            show this help
`;
