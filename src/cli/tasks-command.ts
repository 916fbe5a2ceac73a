// `espresso tasks`: durable tasks from a shell, over a node's task REST API (/api/tasks on its
// HTTP port): define a type, submit, show one task, watch it to its end (its steps and a progress
// bar, from the server-sent events), list, cancel. Exit codes say how it went.

import { readFileSync } from 'node:fs';
import { ConfigError, ExitCode } from './config-loader.js';
import { parseSmallFlags, type SmallArgs } from './small-flags.js';

export const tasksHelp = `Usage: espresso tasks <command> [flags]

Commands:
  define TYPE            define or change a task type [--schema file.json] [--max-attempts N (3)]
                         [--retention 7d] [--lease 60s] (durations: 500ms, 45s, 30m, 12h, 7d)
  submit TYPE JSON       submit a task with JSON input (@file reads it from a file); prints its id
                         [--id ID: idempotent resubmission]
  status ID              the task's record as JSON
  watch ID               its steps with a progress bar until it ends (exit 0 succeeded, 1 otherwise)
  list                   one page of tasks [--type T] [--status S] [--limit N (100)] [--after CURSOR]
  cancel ID              cancel it (a running worker is told at its next report)

Flags:
  --url <url>            the node's HTTP API [http://127.0.0.1:15672] (env ESPRESSO_HTTP_URL)
  --user, --password     a broker user [guest / guest] (env ESPRESSO_USER, ESPRESSO_PASSWORD)
  --vhost <vhost>        [/]
  --help                 show this help
Exit codes: 0 ok, 1 refused or the task failed, 64 bad command line, 69 no node reachable.
`;

const flags = ['--url', '--user', '--password', '--vhost', '--schema', '--max-attempts', '--retention', '--lease', '--id', '--type', '--status', '--limit', '--after'];

interface Client {
  request(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  stream(path: string): Promise<Response>;
}

export async function runTasks(argv: readonly string[], env: Record<string, string | undefined>): Promise<number> {
  const args = parseSmallFlags('tasks', argv, flags);
  const [command, ...words] = args.words;
  if (args.help || command === undefined) {
    (command === undefined && !args.help ? process.stderr : process.stdout).write(tasksHelp);
    return command === undefined && !args.help ? ExitCode.Usage : ExitCode.Ok;
  }
  const base = (args.flags.get('--url') ?? env['ESPRESSO_HTTP_URL'] ?? 'http://127.0.0.1:15672').replace(/\/+$/, '');
  const auth = `Basic ${Buffer.from(`${args.flags.get('--user') ?? env['ESPRESSO_USER'] ?? 'guest'}:${args.flags.get('--password') ?? env['ESPRESSO_PASSWORD'] ?? 'guest'}`).toString('base64')}`;
  const client: Client = {
    request: async (method, path, body) => {
      const r = await reach(base, () => fetch(`${base}${path}`, {
        method, headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      }));
      const text = await r.text();
      return { status: r.status, json: text === '' ? null : JSON.parse(text) as unknown };
    },
    stream: (path) => reach(base, () => fetch(`${base}${path}`, { headers: { authorization: auth, accept: 'text/event-stream' } })),
  };
  const vhost = args.flags.get('--vhost') ?? '/';
  const one = (what: string): string => {
    if (words.length !== 1) throw new ConfigError(`'espresso tasks ${command}' needs ${what}`, ExitCode.Usage);
    return words[0]!;
  };
  switch (command) {
    case 'define': return await define(client, one('a TYPE'), vhost, args);
    case 'submit': {
      if (words.length !== 2) throw new ConfigError("'espresso tasks submit' needs TYPE and JSON (or @file)", ExitCode.Usage);
      const input = parseJson(words[1]!.startsWith('@') ? readText(words[1]!.slice(1)) : words[1]!, 'the input');
      const id = args.flags.get('--id');
      return print(await client.request('POST', '/api/tasks', { type: words[0], input, vhost, ...(id !== undefined ? { id } : {}) }), (j) => `${(j as { id: string }).id}\n`);
    }
    case 'status': return print(await client.request('GET', `/api/tasks/${encodeURIComponent(one('a task ID'))}`), (j) => `${JSON.stringify(j, null, 2)}\n`);
    case 'cancel': return print(await client.request('DELETE', `/api/tasks/${encodeURIComponent(one('a task ID'))}`), (j) => `${(j as { id: string }).id} cancelled\n`);
    case 'list': return await list(client, vhost, args);
    case 'watch': return await watch(client, one('a task ID'));
    default: throw new ConfigError(`unknown tasks command '${command}'; see 'espresso tasks --help'`, ExitCode.Usage);
  }
}

async function reach(base: string, f: () => Promise<Response>): Promise<Response> {
  try {
    return await f();
  } catch (e) {
    throw new ConfigError(`cannot reach ${base}: ${e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e)}`, ExitCode.Unavailable);
  }
}

function print(r: { status: number; json: unknown }, ok: (json: unknown) => string): number {
  if (r.status >= 200 && r.status < 300) {
    process.stdout.write(ok(r.json));
    return ExitCode.Ok;
  }
  const j = (r.json ?? {}) as { reason?: string; problems?: Array<{ path: string; message: string }> };
  process.stderr.write(`espresso tasks: ${r.status} ${j.reason ?? ''}\n`);
  for (const p of j.problems ?? []) process.stderr.write(`  ${p.path}: ${p.message}\n`);
  return ExitCode.Failure;
}

async function define(client: Client, type: string, vhost: string, args: SmallArgs): Promise<number> {
  const body: Record<string, unknown> = {};
  const schema = args.flags.get('--schema');
  if (schema !== undefined) body['schema'] = parseJson(readText(schema), `schema file '${schema}'`);
  const attempts = args.flags.get('--max-attempts');
  if (attempts !== undefined) body['maxAttempts'] = Number(attempts);
  const retention = args.flags.get('--retention');
  if (retention !== undefined) body['retentionMs'] = durationMs(retention, '--retention');
  const lease = args.flags.get('--lease');
  if (lease !== undefined) body['leaseMs'] = durationMs(lease, '--lease');
  return print(await client.request('PUT', `/api/tasks/types/${encodeURIComponent(vhost)}/${encodeURIComponent(type)}`, body), () => `task type '${type}' defined in vhost '${vhost}'\n`);
}

async function list(client: Client, vhost: string, args: SmallArgs): Promise<number> {
  const q = new URLSearchParams({ vhost });
  for (const f of ['type', 'status', 'limit', 'after']) {
    const v = args.flags.get(`--${f}`);
    if (v !== undefined) q.set(f, v);
  }
  return print(await client.request('GET', `/api/tasks?${q.toString()}`), (j) => {
    const page = j as { items: Array<{ id: string; type: string; status: string; attempts: unknown[]; steps: Array<{ status: string }>; updatedAt: number }>; next: string | null };
    const lines = page.items.map((t) => `${t.id}  ${t.type}  ${t.status.padEnd(9)}  attempts=${t.attempts.length}  steps=${t.steps.filter((s) => s.status === 'succeeded').length}/${t.steps.length}  ${new Date(t.updatedAt).toISOString()}`);
    return `${lines.join('\n')}${lines.length > 0 ? '\n' : ''}${page.next !== null ? `next page: --after ${page.next}\n` : ''}`;
  });
}

interface Record_ { id: string; status: string; attempts: Array<{ worker: string; node: string }>; steps: Array<{ name: string; status: string }>; error: { message: string } | null }

async function watch(client: Client, id: string): Promise<number> {
  const r = await client.stream(`/api/tasks/${encodeURIComponent(id)}/events`);
  if (r.status !== 200 || r.body === null) return print({ status: r.status, json: JSON.parse((await r.text()) || 'null') as unknown }, () => '');
  let last: Record_ | undefined;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
      const event = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      const data = /^data: (.*)$/m.exec(event)?.[1];
      if (!/^event: task$/m.test(event) || data === undefined) continue;
      last = JSON.parse(data) as Record_;
      process.stdout.write(`${progressLine(last)}\n`);
    }
  }
  if (last === undefined) return ExitCode.Failure;
  if (last.error !== null) process.stdout.write(`error: ${last.error.message}\n`);
  return last.status === 'succeeded' ? ExitCode.Ok : ExitCode.Failure;
}

/** `[#####-----] 2/4 steps  running  attempt 2 (w on n1)  fetch ✓ compile ✓ package …` */
export function progressLine(t: Record_): string {
  const done = t.steps.filter((s) => s.status === 'succeeded').length;
  const total = Math.max(t.steps.length, 1);
  const width = 20;
  const filled = t.status === 'succeeded' ? width : Math.round((done / total) * width);
  const owner = t.attempts[t.attempts.length - 1];
  const steps = t.steps.map((s) => `${s.name} ${s.status === 'succeeded' ? '✓' : '…'}`).join(' ');
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${t.steps.length} steps  ${t.status.padEnd(9)}  attempt ${t.attempts.length}${owner !== undefined ? ` (${owner.worker} on ${owner.node})` : ''}  ${steps}`.trimEnd();
}

/** 500ms, 45s, 30m, 12h, 7d, or plain milliseconds. */
export function durationMs(s: string, flag: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(s.trim());
  if (m === null) throw new ConfigError(`${flag}: '${s}' is not a duration (500ms, 45s, 30m, 12h, 7d)`, ExitCode.Usage);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return Number(m[1]) * unit;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read '${path}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`, ExitCode.NoInput);
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ConfigError(`${what} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`, ExitCode.Usage);
  }
}
