#!/usr/bin/env node
// Entry point of the `espresso` command (package.json bin): dispatches subcommands and turns
// every failure into a message on stderr and an exit code a script can act on.

import { ConfigError, ExitCode } from './config-loader.js';
import { mainHelp } from './help.js';
import { clusterUpHelp, runClusterRestart, runClusterUp } from './cluster-up.js';
import { runCtl } from './ctl.js';
import { runRpc } from './rpc-command.js';
import { runServer } from './server-command.js';
import { runTasks } from './tasks-command.js';

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    process.stderr.write(mainHelp);
    return ExitCode.Usage;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(mainHelp);
    return ExitCode.Ok;
  }
  if (command === 'server') return runServer(rest, process.env);
  if (command === 'ctl') return runCtl(rest, process.env);
  if (command === 'rpc') return runRpc(rest, process.env);
  if (command === 'tasks') return runTasks(rest, process.env);
  if (command === 'cluster') {
    if (rest[0] === 'up') return runClusterUp(rest.slice(1), process.env);
    if (rest[0] === 'restart') return runClusterRestart(rest.slice(1));
    process.stderr.write(clusterUpHelp);
    return ExitCode.Usage;
  }
  process.stderr.write(`espresso: unknown command '${command}'; run 'espresso --help' for the list of commands\n`);
  return ExitCode.Usage;
}

process.on('uncaughtException', (e) => {
  process.stderr.write(`espresso: internal error (a bug): ${e.stack ?? String(e)}\n`);
  process.exit(ExitCode.Failure);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof ConfigError) {
      // Messages that name their command already ("espresso ctl needs ...") get no second prefix.
      process.stderr.write(e.message.startsWith('espresso ') ? `${e.message}\n` : `espresso: ${e.message}\n`);
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`espresso: internal error (a bug): ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = ExitCode.Failure;
  },
);
