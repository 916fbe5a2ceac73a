// `espresso rpc`: try Task-RPC from a shell. `call` sends one call and prints the result,
// `serve-echo` answers a method with its own payload until stopped, `bench` measures round trips
// per second and latency percentiles of echo calls at several numbers of concurrent callers.

import { connectRpc, RpcError, RpcRemoteError, type Rpc, type RpcEvent } from '../tasks/index.js';
import { ConfigError, ExitCode } from './config-loader.js';
import { intFlag, parseSmallFlags, type SmallArgs } from './small-flags.js';

export const rpcHelp = `Usage: espresso rpc <command> [flags]

Commands:
  call NAME JSON         call method NAME with the JSON payload; prints the result as JSON
                         [--timeout ms (30000)] [--idempotent]
  serve-echo             serve a method (--name, default echo) that answers each payload as it
                         came, until Ctrl-C [--concurrency N (8)]
  bench                  round trips per second and p50/p99 latency of echo calls, for each
                         number of concurrent callers in --callers (1,4,16), --seconds each (5),
                         --size bytes of payload (256); serves echo itself on --server-url (the
                         last --url) unless --no-server (then run serve-echo somewhere)

Flags:
  --url <url,...>        AMQP URLs of the nodes, tried in order, the next one on failure
                         [amqp://guest:guest@127.0.0.1:5672]
  --name <method>        method for serve-echo and bench [echo]
  --help                 show this help
Exit codes: 0 ok, 1 the call failed (remote error, timeout, no server...), 64 bad command line,
69 no broker reachable at any URL.
`;

const defaultUrl = 'amqp://guest:guest@127.0.0.1:5672';
const flags = ['--url', '--timeout', '--name', '--concurrency', '--callers', '--seconds', '--size', '--server-url'];

export async function runRpc(argv: readonly string[], env: Record<string, string | undefined>): Promise<number> {
  const args = parseSmallFlags('rpc', argv, flags, ['--idempotent', '--no-server']);
  const [command, ...words] = args.words;
  if (args.help || command === undefined) {
    (command === undefined && !args.help ? process.stderr : process.stdout).write(rpcHelp);
    return command === undefined && !args.help ? ExitCode.Usage : ExitCode.Ok;
  }
  const urls = (args.flags.get('--url') ?? env['ESPRESSO_RPC_URL'] ?? defaultUrl).split(',').map((u) => u.trim()).filter((u) => u !== '');
  try {
    if (command === 'call') return await call(urls, words, args);
    if (command === 'serve-echo') return await serveEcho(urls, words, args);
    if (command === 'bench') return await bench(urls, words, args);
  } catch (e) {
    if (e instanceof RpcError && e.code === 'CONNECT_FAILED') {
      process.stderr.write(`espresso rpc: ${e.message}\n`);
      return ExitCode.Unavailable;
    }
    if (e instanceof TypeError && /AMQP URL/.test(e.message)) throw new ConfigError(e.message, ExitCode.Usage);
    throw e;
  }
  throw new ConfigError(`unknown rpc command '${command}'; see 'espresso rpc --help'`, ExitCode.Usage);
}

function noMoreWords(words: readonly string[], command: string): void {
  if (words.length > 0) throw new ConfigError(`unexpected argument '${words[0] ?? ''}' for 'espresso rpc ${command}'`, ExitCode.Usage);
}

const logEvent = (e: RpcEvent): void => {
  if (e.type === 'connected' || e.type === 'disconnected' || e.type === 'channel-failed') process.stderr.write(`espresso rpc: ${JSON.stringify(e)}\n`);
};

async function call(urls: string[], words: readonly string[], args: SmallArgs): Promise<number> {
  const [name, json, ...extra] = words;
  if (name === undefined || json === undefined) throw new ConfigError("usage: espresso rpc call NAME JSON, e.g. espresso rpc call echo '{\"a\":1}'", ExitCode.Usage);
  noMoreWords(extra, 'call');
  let payload: unknown;
  try {
    payload = JSON.parse(json) as unknown;
  } catch (e) {
    throw new ConfigError(`the payload is not JSON: ${(e as Error).message}`, ExitCode.Usage);
  }
  const timeoutMs = intFlag(args, '--timeout', 30_000, 1, 24 * 3600 * 1000);
  const rpc = await connectRpc(urls, { name: 'espresso rpc call', onEvent: logEvent });
  try {
    const result = await rpc.call(name, payload, { timeoutMs, idempotent: args.flags.get('--idempotent') === 'true' });
    process.stdout.write(`${Buffer.isBuffer(result) ? result.toString('base64') : JSON.stringify(result)}\n`);
    return ExitCode.Ok;
  } catch (e) {
    if (!(e instanceof RpcError)) throw e;
    const details = e instanceof RpcRemoteError && e.details !== undefined ? ` ${JSON.stringify(e.details)}` : '';
    process.stderr.write(`espresso rpc: ${e.code}: ${e.name}: ${e.message}${details}\n`);
    return ExitCode.Failure;
  } finally {
    await rpc.close();
  }
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (s: string): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

async function serveEcho(urls: string[], words: readonly string[], args: SmallArgs): Promise<number> {
  noMoreWords(words, 'serve-echo');
  const name = args.flags.get('--name') ?? 'echo';
  const concurrency = intFlag(args, '--concurrency', 8, 1, 65_535);
  const rpc = await connectRpc(urls, { name: `espresso rpc serve-echo ${name}`, onEvent: logEvent });
  const serving = await rpc.serve(name, (payload) => payload, { concurrency });
  process.stdout.write(`serving '${name}' on ${rpc.connectedUrl() ?? '?'} (concurrency ${concurrency}); Ctrl-C to stop\n`);
  const signal = await untilSignal();
  await rpc.close();
  process.stdout.write(`${signal}: stopped after ${serving.stats().served} calls\n`);
  return ExitCode.Ok;
}

interface BenchRow {
  callers: number;
  calls: number;
  errors: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

/** The value at percentile `p` (0-100) of ascending `sorted`. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? 0;
}

const maxSamples = 2_000_000;

/** `callers` loops each calling `name` back to back for `seconds`. */
async function measure(rpc: Rpc, name: string, callers: number, seconds: number, payload: Buffer): Promise<BenchRow> {
  const latenciesMs: number[] = [];
  let errors = 0;
  const endAt = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: callers }, async () => {
    while (performance.now() < endAt) {
      const start = performance.now();
      try {
        await rpc.call(name, payload, { timeoutMs: 10_000 });
        if (latenciesMs.length < maxSamples) latenciesMs.push(performance.now() - start);
      } catch {
        errors++;
      }
    }
  }));
  const elapsedMs = performance.now() - t0;
  latenciesMs.sort((a, b) => a - b);
  return { callers, calls: latenciesMs.length, errors, callsPerSec: (latenciesMs.length * 1000) / elapsedMs, p50Ms: percentile(latenciesMs, 50), p99Ms: percentile(latenciesMs, 99) };
}

function callerCounts(args: SmallArgs): number[] {
  const raw = args.flags.get('--callers') ?? '1,4,16';
  const counts = raw.split(',').map((s) => Number(s.trim()));
  if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 10_000)) throw new ConfigError(`--callers: expected integers from 1 to 10000 separated by commas, got '${raw}'`, ExitCode.Usage);
  return counts;
}

async function bench(urls: string[], words: readonly string[], args: SmallArgs): Promise<number> {
  noMoreWords(words, 'bench');
  const name = args.flags.get('--name') ?? 'echo';
  const counts = callerCounts(args);
  const seconds = intFlag(args, '--seconds', 5, 1, 3600);
  const size = intFlag(args, '--size', 256, 0, 16 * 1024 * 1024);
  let server: Rpc | undefined;
  if (args.flags.get('--no-server') !== 'true') {
    const serverUrl = args.flags.get('--server-url') ?? urls[urls.length - 1] ?? defaultUrl;
    server = await connectRpc([serverUrl, ...urls.filter((u) => u !== serverUrl)], { name: 'espresso rpc bench server' });
    await server.serve(name, (p) => p, { concurrency: Math.max(...counts) * 2 });
  }
  const rpc = await connectRpc(urls, { name: 'espresso rpc bench', onEvent: logEvent });
  try {
    process.stdout.write(`calling '${name}' via ${rpc.connectedUrl() ?? '?'}${server === undefined ? '' : `, served via ${server.connectedUrl() ?? '?'}`}; ${size}-byte payloads, ${seconds} s per row\n`);
    process.stdout.write(`${'callers'.padStart(8)}${'calls/s'.padStart(10)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}\n`);
    const payload = Buffer.alloc(size, 0x61);
    await rpc.call(name, payload, { timeoutMs: 10_000 }); // warm-up, and fails fast when nobody serves
    let errors = 0;
    for (const n of counts) {
      const r = await measure(rpc, name, n, seconds, payload);
      errors += r.errors;
      process.stdout.write(`${String(n).padStart(8)}${Math.round(r.callsPerSec).toLocaleString('en-US').padStart(10)}${r.p50Ms.toFixed(2).padStart(9)}${r.p99Ms.toFixed(2).padStart(9)}${String(r.errors).padStart(8)}\n`);
    }
    return errors === 0 ? ExitCode.Ok : ExitCode.Failure;
  } catch (e) {
    if (!(e instanceof RpcError)) throw e;
    process.stderr.write(`espresso rpc: ${e.code}: ${e.message}\n`);
    return ExitCode.Failure;
  } finally {
    await rpc.close();
    await server?.close();
  }
}
