// Command-line parsing of `npm run bench -- SCENARIO [options]`: pure, so the harness can be
// tested without starting a broker. Errors are values with a message fit for a terminal.

export type BrokerName = 'espresso' | 'rabbitmq';

export interface BenchArgs {
  scenarios: string[];
  brokers: BrokerName[];
  cluster: boolean;
  seconds: number;
  lowRateSeconds: number;
  /** espresso only: an extra full-load phase this long, after the measured ones, for the stage breakdown and CPU profiles (0 = none). */
  profileSeconds: number;
  /** Publish rate of the profiled phase (msg/s over all publishers); 0 = as fast as the full-load phase. */
  profileRate: number;
  /** Overrides the backlog size (default 1,000,000). */
  messages: number;
  /** Overrides the scenario's body size. */
  bodyBytes: number | undefined;
  window: number;
  prefetch: number;
  results: boolean;
  build: boolean;
  list: boolean;
  help: boolean;
  /** Plugin modules the espresso nodes load (--plugin), e.g. to measure an interceptor's cost. */
  espressoPlugins?: string[];
}

export type ParseResult = { ok: true; args: BenchArgs } | { ok: false; error: string };

const defaults: BenchArgs = {
  scenarios: [], brokers: ['espresso', 'rabbitmq'], cluster: false, seconds: 10, lowRateSeconds: 5, profileSeconds: 8, profileRate: 0,
  messages: 1_000_000, bodyBytes: undefined, window: 256, prefetch: 256, results: true, build: false,
  list: false, help: false,
};

const intFlags: Record<string, { key: 'seconds' | 'lowRateSeconds' | 'profileSeconds' | 'profileRate' | 'messages' | 'bodyBytes' | 'window' | 'prefetch'; min: number; max: number }> = {
  '--seconds': { key: 'seconds', min: 1, max: 3600 },
  '--low-rate-seconds': { key: 'lowRateSeconds', min: 0, max: 3600 },
  '--profile-seconds': { key: 'profileSeconds', min: 0, max: 300 },
  '--profile-rate': { key: 'profileRate', min: 0, max: 10_000_000 },
  '--messages': { key: 'messages', min: 1, max: 50_000_000 },
  '--size': { key: 'bodyBytes', min: 32, max: 16 * 1024 * 1024 },
  '--window': { key: 'window', min: 1, max: 100_000 },
  '--prefetch': { key: 'prefetch', min: 1, max: 65_535 },
};

export function parseBenchArgs(argv: readonly string[], known: readonly string[]): ParseResult {
  const args: BenchArgs = { ...defaults, scenarios: [], brokers: [...defaults.brokers] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const spec = intFlags[a];
    if (spec !== undefined) {
      const raw = argv[++i];
      const n = raw === undefined ? NaN : Number(raw);
      if (!Number.isInteger(n) || n < spec.min || n > spec.max) {
        return { ok: false, error: `${a} needs an integer from ${spec.min} to ${spec.max}, got '${raw ?? ''}'` };
      }
      args[spec.key] = n;
    } else if (a === '--broker') {
      const raw = argv[++i] ?? '';
      if (raw === 'both') args.brokers = ['espresso', 'rabbitmq'];
      else if (raw === 'espresso' || raw === 'rabbitmq') args.brokers = [raw];
      else return { ok: false, error: `--broker takes espresso, rabbitmq or both, got '${raw}'` };
    } else if (a === '--espresso-plugin') {
      const raw = argv[++i];
      if (raw === undefined || raw === '') return { ok: false, error: '--espresso-plugin needs a path or a shipped plugin name' };
      args.espressoPlugins = [...(args.espressoPlugins ?? []), raw];
    } else if (a === '--cluster') args.cluster = true;
    else if (a === '--no-results') args.results = false;
    else if (a === '--build') args.build = true;
    else if (a === '--list') args.list = true;
    else if (a === '--help' || a === '-h') args.help = true;
    else if (a.startsWith('-')) return { ok: false, error: `unknown option '${a}'; see --help` };
    else {
      const names = a === 'all' ? known : [a];
      for (const name of names) {
        if (!known.includes(name)) return { ok: false, error: `unknown scenario '${name}'; known: ${known.join(', ')}, all` };
        if (!args.scenarios.includes(name)) args.scenarios.push(name);
      }
    }
  }
  if (args.scenarios.length === 0 && !args.list && !args.help) {
    return { ok: false, error: `name a scenario (${known.join(', ')}, all); see --help` };
  }
  return { ok: true, args };
}

export const benchHelp = `usage: npm run bench -- SCENARIO... [options]

Runs the same workload against espresso and RabbitMQ 3.10 on loopback and prints the ratios.
SCENARIO is a name from --list, or 'all'.

  --broker espresso|rabbitmq|both   which brokers (default both)
  --cluster                         3-node clusters, quorum queues with 3 replicas (default single node)
  --seconds N                       duration of the full-load phase (default 10)
  --low-rate-seconds N              duration of the fixed-lower-rate phase (default 5, 0 = skip)
  --profile-seconds N               espresso: one more full-load phase, not in the comparison, while
                                    every node takes a CPU profile and ctl profile stages runs
                                    (default 8, 0 = skip); both land in RESULTS.md
  --profile-rate N                  publish rate of that phase in msg/s (default 0 = full load)
  --messages N                      backlog size for backlog-1m (default 1000000)
  --size BYTES                      message body size (overrides the scenario's)
  --window N                        unconfirmed publishes per publisher (default 256)
  --prefetch N                      unacked deliveries per consumer (default 256)
  --espresso-plugin PATH            a plugin the espresso nodes load (repeatable), e.g. bench/plugins/pass-through.mjs
  --build                           rebuild espresso (tsc) before running it
  --no-results                      do not append to bench/RESULTS.md or write charts
  --list                            list the scenarios
`;
