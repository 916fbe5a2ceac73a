// Builds the broker configuration from defaults, then a JSON file, then ESPRESSO_* environment
// variables, then flags (later wins). Every bad value becomes a ConfigError naming where it came from.

import { readFileSync } from 'node:fs';
import { defaultBrokerConfig } from '../broker/config.js';
import { defaultClusterSettings, defaultObserveSettings, defaultPluginSettings, serverOptions, type OptionSpec, type ServerConfig } from './options.js';

export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 64,
  NoInput: 66,
  CantCreate: 73,
  Unavailable: 69,
  Config: 78,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(message: string, readonly exitCode: ExitCode) {
    super(message);
  }
}

type Mutable = Record<string, unknown>;

export function parseValue(spec: OptionSpec, raw: unknown, source: string): unknown {
  switch (spec.kind) {
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n)) throw new ConfigError(`${source}: expected an integer, got ${JSON.stringify(raw)}`, ExitCode.Config);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new ConfigError(`${source}: ${n} is out of range ${spec.min ?? '-inf'}..${spec.max ?? 'inf'}`, ExitCode.Config);
      }
      return n;
    }
    case 'string':
      if (typeof raw !== 'string' || raw === '') throw new ConfigError(`${source}: expected a non-empty string`, ExitCode.Config);
      return raw;
    case 'level':
      if (raw !== 'debug' && raw !== 'info' && raw !== 'warn' && raw !== 'error') {
        throw new ConfigError(`${source}: expected one of debug, info, warn, error; got ${JSON.stringify(raw)}`, ExitCode.Config);
      }
      return raw;
    case 'bytes': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? parseByteSize(raw) : NaN;
      if (!Number.isSafeInteger(n)) {
        throw new ConfigError(`${source}: expected a size in bytes like 50000000, 50MB, 2GB or 1GiB; got ${JSON.stringify(raw)}`, ExitCode.Config);
      }
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new ConfigError(`${source}: ${n} bytes is out of range ${spec.min ?? '-inf'}..${spec.max ?? 'inf'}`, ExitCode.Config);
      }
      return n;
    }
    case 'json': {
      let v: unknown = raw;
      if (typeof raw === 'string') {
        try {
          v = JSON.parse(raw);
        } catch (e) {
          throw new ConfigError(`${source}: not valid JSON: ${(e as Error).message}`, ExitCode.Config);
        }
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${source}: expected a JSON object`, ExitCode.Config);
      return v;
    }
    case 'bool':
      if (raw === true || raw === 'true' || raw === '1' || raw === 'yes') return true;
      if (raw === false || raw === 'false' || raw === '0' || raw === 'no') return false;
      throw new ConfigError(`${source}: expected true or false, got ${JSON.stringify(raw)}`, ExitCode.Config);
    case 'list':
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw;
      if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
      throw new ConfigError(`${source}: expected a list of strings`, ExitCode.Config);
  }
}

/** Units as RabbitMQ reads disk_free_limit: kB, MB, GB, TB are powers of 1000; k, kiB, M, MiB, G, GiB, T, TiB of 1024. */
const byteUnits: Record<string, number> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  k: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gib: 2 ** 30, t: 2 ** 40, tib: 2 ** 40,
};

/** "50MB" -> 50000000, "1.5GiB" -> 1610612736, "1024" -> 1024; NaN when it is not a size. */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (m === null) return NaN;
  const unit = byteUnits[m[2]!.toLowerCase()];
  return unit === undefined ? NaN : Math.round(Number(m[1]) * unit);
}

function readConfigFile(path: string): Mutable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new ConfigError(`cannot read config file '${path}' (${code}); check the path given to --config`, ExitCode.NoInput);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file '${path}' is not valid JSON: ${(e as Error).message}`, ExitCode.Config);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file '${path}' must hold a JSON object like {"port": 5672}`, ExitCode.Config);
  }
  return parsed as Mutable;
}

export interface ConfigSources {
  /** Path from --config (or ESPRESSO_CONFIG); undefined = no file. */
  configFile: string | undefined;
  env: Record<string, string | undefined>;
  /** Flag values by config key, already split from argv. */
  flags: Partial<Record<keyof ServerConfig, string>>;
}

export function loadConfig(sources: ConfigSources): ServerConfig {
  const config: Mutable = { ...defaultBrokerConfig, ...defaultClusterSettings, ...defaultObserveSettings, ...defaultPluginSettings };
  if (sources.configFile !== undefined) {
    const file = readConfigFile(sources.configFile);
    const known = new Map(serverOptions.map((o) => [o.key as string, o]));
    for (const [key, raw] of Object.entries(file)) {
      const spec = known.get(key);
      if (spec === undefined) {
        const near = nearest(key, [...known.keys()]);
        throw new ConfigError(
          `unknown key '${key}' in config file '${sources.configFile}'${near === undefined ? '' : `; did you mean '${near}'?`} Known keys: ${[...known.keys()].join(', ')}`,
          ExitCode.Config,
        );
      }
      config[key] = parseValue(spec, raw, `config file '${sources.configFile}' key '${key}'`);
    }
  }
  checkEnvNames(sources.env);
  for (const spec of serverOptions) {
    const raw = sources.env[spec.env];
    if (raw !== undefined && raw !== '') config[spec.key] = parseValue(spec, raw, `environment variable ${spec.env}`);
  }
  for (const spec of serverOptions) {
    const raw = sources.flags[spec.key];
    if (raw === undefined) continue;
    try {
      config[spec.key] = parseValue(spec, raw, `flag ${spec.flag}`);
    } catch (e) {
      // A bad flag value is a command-line mistake, reported with the usage exit code.
      throw e instanceof ConfigError ? new ConfigError(e.message, ExitCode.Usage) : e;
    }
  }
  return config as unknown as ServerConfig;
}

/** ESPRESSO_* variables the server reads besides its option table's. */
const otherEnvNames = ['ESPRESSO_CONFIG'];

/**
 * An ESPRESSO_* variable the server does not know is a misspelling (ESPRESSO_PROT=5673 would
 * otherwise leave the node on 5672 without a word): refused, naming the nearest known one.
 */
function checkEnvNames(env: Record<string, string | undefined>): void {
  const known = [...serverOptions.map((o) => o.env), ...otherEnvNames];
  for (const name of Object.keys(env)) {
    if (!name.startsWith('ESPRESSO_') || known.includes(name)) continue;
    const near = nearest(name, known);
    throw new ConfigError(
      `unknown environment variable ${name}${near === undefined ? '' : `; did you mean ${near}?`} ` +
      "(the ESPRESSO_* variables are listed by 'espresso server --help')", ExitCode.Config,
    );
  }
}

/** The known name closest to `name` (edit distance, case-insensitive) if it is close enough to be a slip. */
export function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  // A slip is a few edits, and fewer than half the name.
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const swap = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + swap));
    }
    previous = row;
  }
  return previous[b.length]!;
}
