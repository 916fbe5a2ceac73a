// Help texts of the espresso command and its subcommands.

import { optionHelp } from './args.js';
import { serverOptions } from './options.js';

export const mainHelp = `espresso - a quorum-replicated AMQP 0-9-1 message broker

Usage: espresso <command> [flags]

Commands:
  server      run one broker node (AMQP on 127.0.0.1:5672 by default)
  cluster up  run a local cluster of N nodes (espresso cluster up --nodes 3)
  ctl         ask a running node: cluster-status, list-queues, rebalance, grow, shrink,
              add-node, forget-node, set-policy, clear-policy, list-policies,
              profile cpu|heap|stages, top
  help        show this help

Run 'espresso <command> --help' for the flags of a command.
Exit codes: 0 ok, 1 internal error, 64 bad command line, 66 config file unreadable,
69 address unavailable (port in use), 73 data directory not writable, 78 bad configuration.
`;

export const serverHelp = `Usage: espresso server [flags]

Runs one broker node: AMQP on --port, HTTP (/metrics) on --http-port (AMQP + 10000), the
cluster transport on --cluster-port (AMQP + 20000). Settings come from defaults, then the JSON file given by --config
(keys as in the README, e.g. {"port": 5673}), then ESPRESSO_* environment variables, then flags.

Flags:
  --config <file>                   JSON configuration file [ESPRESSO_CONFIG]
${optionHelp(serverOptions)}
  --help                            show this help
`;
