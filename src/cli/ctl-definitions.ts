// `espresso ctl export [FILE]`, `ctl diff FILE` and `ctl apply FILE [--yes]`: definitions in
// RabbitMQ's format as the desired state of the cluster. apply prints the plan (what it creates,
// changes and deletes) and applies it only with --yes; a file with any bad entry applies nothing
// and each bad entry is named. diff prints the same plan: the drift between the file and the cluster.

import { readFileSync, writeFileSync } from 'node:fs';
import { DefinitionsMethod, type ApplyAnswer, type PlanAnswer } from '../http/api-definitions.js';
import { ConfigError, ExitCode } from './config-loader.js';
import type { SmallArgs } from './small-flags.js';

export const definitionsHelp = `  export [FILE]               the cluster's definitions (RabbitMQ's format) to FILE or stdout
  diff FILE                   what applying FILE would create, change and delete (exit 0: none, 1: drift)
  apply FILE                  print that plan; with --yes apply it (a file with an error applies nothing)
`;

export const definitionsFlags = ['--yes'] as const;

export interface DefinitionsRequest {
  method: string;
  payload: unknown;
  /** export: where to write ('' = stdout); diff/apply: the file read. */
  file: string;
}

function readDefinitions(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read '${file}' (${(e as NodeJS.ErrnoException).code ?? 'error'})`, ExitCode.NoInput);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`'${file}' is not valid JSON: ${(e as Error).message}`, ExitCode.Failure);
  }
}

/** The request of export/diff/apply, or undefined for other commands. */
export function definitionsRequest(command: string, args: SmallArgs): DefinitionsRequest | undefined {
  const words = args.words.slice(1);
  if (command === 'export') {
    if (words.length > 1) throw new ConfigError('espresso ctl export takes at most one FILE', ExitCode.Usage);
    return { method: DefinitionsMethod.export, payload: {}, file: words[0] ?? '' };
  }
  if (command !== 'diff' && command !== 'apply') return undefined;
  if (words.length !== 1) throw new ConfigError(`espresso ctl ${command} needs FILE (definitions in RabbitMQ's format)`, ExitCode.Usage);
  const definitions = readDefinitions(words[0]!);
  const apply = command === 'apply' && args.flags.get('--yes') === 'true';
  return { method: apply ? DefinitionsMethod.apply : DefinitionsMethod.plan, payload: { definitions }, file: words[0]! };
}

const sign = { create: '+', change: '~', delete: '-' } as const;

export function formatPlan(p: PlanAnswer): string {
  const lines = p.steps.map((s) => `${sign[s.action]} ${s.action} ${s.what}${s.detail !== '' ? ` (${s.detail})` : ''}`);
  const count = (a: keyof typeof sign): number => p.steps.filter((s) => s.action === a).length;
  for (const i of p.ignored) lines.push(`  ignored: ${i}`);
  for (const e of p.errors) lines.push(`! error: ${e}`);
  lines.push(p.errors.length > 0
    ? `${p.errors.length} error(s): nothing can be applied`
    : p.steps.length === 0 ? 'no changes: the cluster matches the file' : `${count('create')} to create, ${count('change')} to change, ${count('delete')} to delete`);
  return `${lines.join('\n')}\n`;
}

/** Prints the answer; the exit code. */
export function printDefinitions(r: DefinitionsRequest, value: unknown, command: string, json: boolean): number {
  if (r.method === DefinitionsMethod.export) {
    const text = `${JSON.stringify(value, null, 2)}\n`;
    if (r.file === '') process.stdout.write(text);
    else {
      writeFileSync(r.file, text);
      process.stdout.write(`definitions written to ${r.file}\n`);
    }
    return ExitCode.Ok;
  }
  const p = value as PlanAnswer;
  if (json) process.stdout.write(`${JSON.stringify(p, null, 2)}\n`);
  else process.stdout.write(formatPlan(p));
  if (p.errors.length > 0) return ExitCode.Failure;
  if (r.method === DefinitionsMethod.apply) {
    const a = value as ApplyAnswer;
    if (a.failed !== undefined) {
      process.stderr.write(`espresso ctl: applied ${a.applied} of ${a.steps.length} changes, then refused: ${a.failed}\n`);
      return ExitCode.Failure;
    }
    if (!json) process.stdout.write(`applied ${a.applied} change(s)\n`);
    return ExitCode.Ok;
  }
  if (command === 'apply' && p.steps.length > 0 && !json) process.stdout.write('run again with --yes to apply\n');
  return command === 'diff' && p.steps.length > 0 ? ExitCode.Failure : ExitCode.Ok;
}
