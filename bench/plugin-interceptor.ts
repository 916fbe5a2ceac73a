// What one loaded publish interceptor costs the broker per message: nanoseconds per publish spent
// in the plugin host's interceptPublish with a pass-through hook (returns nothing), one that reads
// a header (builds the plain header view), and one that adds a header (the message is copied and
// its properties re-encoded on send), against none loaded (the broker's one `hasPublishHooks`
// check), in alternating rounds in one process. The share printed is of `--broker-us`, the broker
// CPU per message the end-to-end run measured (`npm run bench -- 1kib-1p1c` with and without
// `--espresso-plugin bench/plugins/pass-through.mjs`, which also runs RabbitMQ); there is no
// RabbitMQ counterpart to a plugin hook of our own.
//
//   npm run build && node dist/bench/plugin-interceptor.js [--rounds 10] [--ms 200] [--broker-us 105]

import { PluginHost } from '../src/broker/plugin-host.js';
import type { StoredMessage } from '../src/broker/queue-backend.js';
import { silentLogger } from '../src/lib/log.js';

const args = process.argv.slice(2);
const flag = (name: string, def: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const rounds = flag('--rounds', 10);
const msPerRound = flag('--ms', 200);
const brokerUs = flag('--broker-us', 105);

const message: StoredMessage = {
  exchange: '', routingKey: 'bench-q', body: Buffer.alloc(1024), rawProperties: Buffer.from([0x90, 0x00, 0x02]),
  properties: { deliveryMode: 2, headers: { 'x-trace': { tag: 'S', value: Buffer.from('abc') }, n: { tag: 'l', value: 7 } } },
};

async function host(setup: Parameters<PluginHost['load']>[0][number]['plugin']['setup'] | null): Promise<PluginHost> {
  const h = new PluginHost(silentLogger, 'bench');
  if (setup !== null) await h.load([{ plugin: { name: 'p', version: '1', setup }, source: 'bench', config: {} }]);
  return h;
}

/** What the broker runs per publish (channel-basic.ts publish): the check, then the hooks when any. */
function publishPath(h: PluginHost): () => unknown {
  return () => (h.hasPublishHooks ? h.interceptPublish(message) : message);
}

/** CPU ns per call of `f` (process CPU time, not wall time: the machine may be shared), run for about `ms` of CPU. */
function timed(f: () => unknown, ms: number): number {
  let ops = 0;
  const start = process.cpuUsage();
  let cpuUs = 0;
  while (cpuUs < ms * 1000) {
    for (let i = 0; i < 10_000; i++) f();
    ops += 10_000;
    const used = process.cpuUsage(start);
    cpuUs = used.user + used.system;
  }
  return (cpuUs * 1000) / ops;
}

const cases: Array<[string, PluginHost]> = [
  ['none loaded', await host(null)],
  ['pass-through', await host((api) => api.onPublish(() => undefined))],
  ['reads a header', await host((api) => api.onPublish((m) => { void m.headers['x-trace']; }))],
  ['adds a header', await host((api) => api.onPublish((m) => ({ headers: { ...m.headers, 'x-seen': true } })))],
];
const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]));
for (let r = 0; r < rounds; r++) {
  for (const [name, h] of cases) samples.get(name)!.push(timed(publishPath(h), msPerRound));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
process.stdout.write(`publish interceptors, ${rounds} rounds of ${msPerRound} ms, median CPU ns per publish; share of ${brokerUs} us broker CPU per message\n`);
for (const [name] of cases) {
  const ns = median(samples.get(name)!);
  process.stdout.write(`${name.padEnd(16)} ${ns.toFixed(1).padStart(8)} ns  ${((ns / 1000 / brokerUs) * 100).toFixed(3).padStart(7)} %\n`);
}
