// Splits argv into flags for one command, against that command's option table. Accepts
// `--flag value` and `--flag=value`; anything unknown is a usage error naming the fix.

import { ConfigError, ExitCode } from './config-loader.js';
import type { OptionSpec, ServerConfig } from './options.js';

export interface ParsedArgs {
  flags: Partial<Record<keyof ServerConfig, string>>;
  configFile: string | undefined;
  help: boolean;
}

export function parseArgs(command: string, argv: readonly string[], options: readonly OptionSpec[]): ParsedArgs {
  const byFlag = new Map(options.map((o) => [o.flag, o]));
  const out: ParsedArgs = { flags: {}, configFile: undefined, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      throw new ConfigError(`unexpected argument '${arg}' for 'espresso ${command}'; see 'espresso ${command} --help'`, ExitCode.Usage);
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (name !== '--config' && !byFlag.has(name)) {
      throw new ConfigError(`unknown flag '${name}' for 'espresso ${command}'; see 'espresso ${command} --help'`, ExitCode.Usage);
    }
    const spec = byFlag.get(name);
    if (value === undefined && spec?.kind === 'bool') {
      // A switch alone (last, or before another flag) means true; `--tls-only false` reads its value.
      const next = argv[i + 1];
      value = next !== undefined && !next.startsWith('--') ? (i++, next) : 'true';
    }
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) {
        throw new ConfigError(`flag '${name}' needs a value, e.g. '${name}=...'`, ExitCode.Usage);
      }
      value = next;
      i++;
    }
    if (name === '--config') out.configFile = value;
    else {
      // A list flag given again adds to the list (--plugin a --plugin b).
      const had = out.flags[spec!.key];
      out.flags[spec!.key] = spec!.kind === 'list' && had !== undefined ? `${had},${value}` : value;
    }
  }
  return out;
}

/**
 * One line per option: flag, what it does, then [default; ENV] as `cluster up --help` shows
 * them. `defaults` holds each setting's default value; `defaultText` words the computed ones.
 */
export function optionHelp(
  options: readonly OptionSpec[], defaults: Partial<Record<string, unknown>> = {}, defaultText: Partial<Record<string, string>> = {},
): string {
  const shown = (o: OptionSpec): string => {
    const text = defaultText[o.key];
    if (text !== undefined) return text;
    const v = defaults[o.key];
    if (v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) return 'none';
    return Array.isArray(v) ? v.join(',') : String(v);
  };
  const rows = options.map((o) => `  ${(o.flag + ' <' + o.kind + '>').padEnd(34)}${o.help} [${shown(o)}; ${o.env}]`);
  return rows.join('\n');
}
