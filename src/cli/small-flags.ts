// Flags of the commands that are not `server` (ctl, cluster up): `--name value` or `--name=value`
// against a fixed list, plus positional words; unknown flags are usage errors naming the fix.

import { ConfigError, ExitCode } from './config-loader.js';

export interface SmallArgs {
  flags: Map<string, string>;
  words: string[];
  help: boolean;
}

/** `bools` are flags without a value (their value reads 'true'). */
export function parseSmallFlags(command: string, argv: readonly string[], known: readonly string[], bools: readonly string[] = []): SmallArgs {
  const out: SmallArgs = { flags: new Map(), words: [], help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      out.words.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (bools.includes(name) && eq === -1) {
      out.flags.set(name, 'true');
      continue;
    }
    if (!known.includes(name)) throw new ConfigError(`unknown flag '${name}' for 'espresso ${command}'; see 'espresso ${command} --help'`, ExitCode.Usage);
    let value = eq === -1 ? undefined : arg.slice(eq + 1);
    if (value === undefined) {
      value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new ConfigError(`flag '${name}' needs a value, e.g. '${name}=...'`, ExitCode.Usage);
      i++;
    }
    out.flags.set(name, value);
  }
  return out;
}

/** An integer flag within bounds, or the default. */
export function intFlag(args: SmallArgs, name: string, fallback: number, min: number, max: number): number {
  const raw = args.flags.get(name);
  if (raw === undefined) return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(`flag ${name}: expected an integer in ${min}..${max}, got '${raw}'`, ExitCode.Usage);
  return n;
}
