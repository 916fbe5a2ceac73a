// The named workloads of `npm run bench -- SCENARIO`: topology (queues, exchange), who publishes
// where, who consumes what, message size and rates. Pure data; run.ts turns one into workers.

import { requestQueueName } from '../src/tasks/index.js';

/** rpc: raw amqplib request/reply; rpc-sdk: the Task-RPC SDK (src/tasks) on both brokers. */
export type ScenarioKind = 'stream' | 'backlog' | 'rpc' | 'rpc-sdk';

export interface Scenario {
  name: string;
  title: string;
  kind: ScenarioKind;
  queues: number;
  /** 'direct': publisher i sends to queues round-robin from i; 'fanout': every message to all queues. */
  routing: 'direct' | 'fanout';
  /** rpc-sdk: concurrent callers (calls in flight, each sent when the previous one's reply came). */
  publishers: number;
  consumers: number;
  bodyBytes: number;
  /** Durable quorum queues with persistent messages, or one non-durable classic queue, transient. */
  durable: boolean;
  /** Total offered msg/s in the "full load" phase; undefined = as fast as confirms allow. */
  fullRatePerSec?: number;
  /** Total offered msg/s in the fixed-lower-rate phase. */
  lowRatePerSec: number;
  /** Only single-node brokers (issue 2's measurement). */
  singleNodeOnly?: boolean;
}

const kib = 1024;

export const scenarios: readonly Scenario[] = [
  { name: '1kib-1p1c', title: '1 KiB, 1 publisher / 1 consumer, one queue', kind: 'stream', queues: 1, routing: 'direct', publishers: 1, consumers: 1, bodyBytes: kib, durable: true, lowRatePerSec: 1000 },
  { name: '4p4c-4q', title: '1 KiB, 4 publishers / 4 consumers over 4 queues', kind: 'stream', queues: 4, routing: 'direct', publishers: 4, consumers: 4, bodyBytes: kib, durable: true, lowRatePerSec: 2000 },
  { name: '16kib', title: '16 KiB messages, 1 publisher / 1 consumer, one queue', kind: 'stream', queues: 1, routing: 'direct', publishers: 1, consumers: 1, bodyBytes: 16 * kib, durable: true, lowRatePerSec: 500 },
  { name: 'fanout-10', title: '1 KiB fanout to 10 queues, 1 publisher / 10 consumers', kind: 'stream', queues: 10, routing: 'fanout', publishers: 1, consumers: 10, bodyBytes: kib, durable: true, lowRatePerSec: 200 },
  { name: 'rpc', title: 'RPC request/reply round trips over direct reply-to, 4 clients / 1 server', kind: 'rpc', queues: 1, routing: 'direct', publishers: 4, consumers: 1, bodyBytes: 256, durable: true, lowRatePerSec: 200 },
  { name: 'rpc-sdk-1', title: 'Task-RPC SDK, 1 caller on node 1, echo server on node 2 (quorum request queue, direct reply-to)', kind: 'rpc-sdk', queues: 1, routing: 'direct', publishers: 1, consumers: 1, bodyBytes: 256, durable: true, lowRatePerSec: 100 },
  { name: 'rpc-sdk-4', title: 'Task-RPC SDK, 4 concurrent callers on node 1, echo server on node 2', kind: 'rpc-sdk', queues: 1, routing: 'direct', publishers: 4, consumers: 1, bodyBytes: 256, durable: true, lowRatePerSec: 200 },
  { name: 'rpc-sdk-16', title: 'Task-RPC SDK, 16 concurrent callers on node 1, echo server on node 2', kind: 'rpc-sdk', queues: 1, routing: 'direct', publishers: 16, consumers: 1, bodyBytes: 256, durable: true, lowRatePerSec: 400 },
  { name: 'backlog-1m', title: 'Backlog: 1 million 1 KiB messages published, then drained', kind: 'backlog', queues: 1, routing: 'direct', publishers: 1, consumers: 1, bodyBytes: kib, durable: true, lowRatePerSec: 0 },
  { name: '1000-queues', title: '1,000 queues with light traffic each (5 msg/s per queue)', kind: 'stream', queues: 1000, routing: 'direct', publishers: 4, consumers: 4, bodyBytes: kib, durable: true, fullRatePerSec: 5000, lowRatePerSec: 1000 },
  { name: 'single-transient', title: 'One node, non-durable classic queue, 1 KiB transient, confirms, prefetch 256', kind: 'stream', queues: 1, routing: 'direct', publishers: 1, consumers: 1, bodyBytes: kib, durable: false, lowRatePerSec: 1000, singleNodeOnly: true },
];

/** Scenarios run by `all`, in order (the backlog last: it is the longest). */
export const scenarioNames: readonly string[] = scenarios.map((s) => s.name);

export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((s) => s.name === name);
}

/** Request/reply scenarios: a round trip is the unit, and latency is measured by the caller. */
export function isRpc(scenario: Scenario): boolean {
  return scenario.kind === 'rpc' || scenario.kind === 'rpc-sdk';
}

/** The Task-RPC method an rpc-sdk scenario calls (its request queue is the SDK's, rpc.<method>). */
export function rpcMethod(scenario: Scenario): string {
  return `bench.${scenario.name}`;
}

/** Queue names are per scenario so a rerun on a kept broker never mixes old messages in. */
export function queueName(scenario: Scenario, index: number): string {
  if (scenario.kind === 'rpc-sdk') return requestQueueName(rpcMethod(scenario));
  return `bench.${scenario.name}.q${index}`;
}

export function exchangeName(scenario: Scenario): string {
  return scenario.routing === 'fanout' ? `bench.${scenario.name}.fanout` : '';
}

/** Queues consumer `c` of `consumers` reads: queues dealt round-robin, every queue covered. */
export function queuesOfConsumer(queues: number, consumers: number, c: number): number[] {
  const out: number[] = [];
  if (consumers >= queues) {
    out.push(c % queues);
    return out;
  }
  for (let q = c; q < queues; q += consumers) out.push(q);
  return out;
}

/** Queues publisher `p` of `publishers` sends to (direct routing), round-robin. */
export function queuesOfPublisher(queues: number, publishers: number, p: number): number[] {
  return queuesOfConsumer(queues, publishers, p);
}
