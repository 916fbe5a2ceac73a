// Measures the cost of route() per exchange type and of declare/snapshot/restore at scale.
// Not part of the test suite (no timing assertions); run: npx tsx test/model/routing-cost.bench.ts
import { performance } from 'node:perf_hooks';
import {
  applyMetadata, restoreMetadata, route, snapshotMetadata, type MetadataState,
} from '../../src/model/index.js';
import { bindQueue, declareExchange, declareQueue, expectOk, freshState } from './helpers.js';

function time(label: string, iterations: number, fn: (i: number) => unknown): void {
  for (let i = 0; i < Math.min(iterations, 10_000); i++) fn(i);
  const start = performance.now();
  let sink = 0;
  for (let i = 0; i < iterations; i++) if (fn(i) !== undefined) sink++;
  const ns = ((performance.now() - start) * 1e6) / iterations;
  console.log(`${label.padEnd(58)} ${ns.toFixed(0).padStart(7)} ns/op  (${sink > 0 ? 'ok' : '-'})`);
}

function setup(queues: number): MetadataState {
  const s = freshState();
  for (let i = 0; i < queues; i++) expectOk(declareQueue(s, `q${i}`, { durable: true }));
  return s;
}

const n = 10_000;
const s = setup(n);
expectOk(declareExchange(s, 'd', 'direct'));
expectOk(declareExchange(s, 't', 'topic'));
expectOk(declareExchange(s, 'f', 'fanout'));
expectOk(declareExchange(s, 'h', 'headers'));
for (let i = 0; i < n; i++) {
  expectOk(bindQueue(s, `q${i}`, 'd', `key.${i}`));
  expectOk(bindQueue(s, `q${i}`, 't', i % 3 === 0 ? `svc${i % 100}.*.${i}` : i % 3 === 1 ? `svc${i % 100}.#` : `*.evt${i}.#`));
}
for (let i = 0; i < 10; i++) expectOk(bindQueue(s, `q${i}`, 'f'));
for (let i = 0; i < 100; i++) expectOk(bindQueue(s, `q${i}`, 'h', '', { 'x-match': i % 2 ? 'any' : 'all', region: `r${i % 10}`, tier: i % 3 }));
const keys = Array.from({ length: 1024 }, (_, i) => `key.${(i * 7919) % n}`);
const topicKeys = Array.from({ length: 1024 }, (_, i) => `svc${i % 100}.evt${(i * 31) % n}.x`);
const headerSets = Array.from({ length: 16 }, (_, i) => ({ region: `r${i % 10}`, tier: i % 3 }));

console.log(`route() with ${n} queues`);
time('default exchange (key = queue name)', 1_000_000, (i) => route(s, '/', '', `q${i & 1023}`));
time(`direct, ${n} bindings, 1 match`, 1_000_000, (i) => route(s, '/', 'd', keys[i & 1023] as string));
time(`topic, ${n} bindings (*, #), 3-word keys`, 200_000, (i) => route(s, '/', 't', topicKeys[i & 1023] as string));
time('fanout, 10 bindings', 1_000_000, () => route(s, '/', 'f', ''));
time('headers, 100 bindings (all/any, 2 keys)', 200_000, (i) => route(s, '/', 'h', '', headerSets[i & 15] as Record<string, unknown>));

const big = setup(100_000);
for (let i = 0; i < 100_000; i++) expectOk(bindQueue(big, `q${i}`, 'amq.direct', `k${i}`));
let start = performance.now();
const snap = snapshotMetadata(big);
const json = JSON.stringify(snap);
console.log(`snapshot 100k queues + 100k bindings: ${(performance.now() - start).toFixed(0)} ms, ${(json.length / 1e6).toFixed(1)} MB JSON`);
start = performance.now();
const restored = restoreMetadata(JSON.parse(json));
console.log(`restore (parse + rebuild indexes): ${(performance.now() - start).toFixed(0)} ms`);
start = performance.now();
for (let i = 0; i < 10_000; i++) {
  applyMetadata(restored, { kind: 'declareQueue', vhost: '/', name: `new${i}`, passive: false, durable: true,
    exclusive: false, autoDelete: false, arguments: { 'x-max-length': 10 }, connection: { connectionId: 'c', nodeId: 'n' as never } });
}
console.log(`declareQueue: ${((performance.now() - start) * 1000 / 10_000).toFixed(1)} us/op`);
