// A live 3-node cluster under traffic, watched the way an operator watches it: /metrics of every
// node moves as the clients act (published N -> published N, ready up then down, acks, confirms),
// the stage breakdown of traced messages adds up to their end to end, CPU and heap profiles of
// another node arrive as valid Chrome files while a wrong secret or user gets none, ctl top shows
// every node, the Grafana dashboard and Prometheus config match what a live node serves, and a
// killed node's peers report it.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StageBreakdown } from '../../src/observe/stage-summary.js';
import {
  amqpUrl, clusterAddress, eventually, killAll, listQueuesOf, root, runCtl, seededSpecs, startNode, type NodeProc,
} from '../cli/cluster-nodes.js';
import { parseMetrics, scrape, sumOf, valueOf, type Sample } from './scrape.js';

const tmp = mkdtempSync(join(tmpdir(), 'espresso-observe-'));
const secret = 'observe-secret';
const queue = 'watched';
let nodes: NodeProc[] = [];
/** Roles for the queue: L leads it, P publishes (forwarded to L), C consumes (deliveries cross to it). */
let L: NodeProc;
let P: NodeProc;
let C: NodeProc;

/** Connections the tests open, closed at the end whatever happened (a node killed under one is expected). */
const opened: amqp.ChannelModel[] = [];
async function connect(node: NodeProc): Promise<amqp.ChannelModel> {
  const conn = await amqp.connect(amqpUrl(node));
  conn.on('error', () => undefined);
  opened.push(conn);
  return conn;
}

const all = (path = '/metrics'): Promise<Sample[][]> => Promise.all(nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null).map((n) => scrape(n.httpPort(), path)));
const ctl = (...args: string[]): ReturnType<typeof runCtl> => runCtl(['--cluster-address', clusterAddress(P), '--cluster-secret', secret, ...args]);

beforeAll(async () => {
  const specs = await seededSpecs(3, tmp, secret);
  // Every second publish traced: enough samples for a breakdown within seconds.
  nodes = specs.map((s) => startNode({ ...s, extraArgs: ['--trace-sample', '2'] }));
  await Promise.all(nodes.map((n) => n.ready));
  const conn = await amqp.connect(amqpUrl(nodes[0]!));
  const ch = await conn.createChannel();
  await ch.assertQueue(queue, { durable: true });
  await conn.close();
  let leader: string | null = null;
  await eventually('the queue has a leader', async () => {
    leader = (await listQueuesOf(nodes[0]!)).find((q) => q.name === queue)?.leader ?? null;
    return leader !== null;
  });
  L = nodes.find((n) => n.spec.name === leader)!;
  [P, C] = nodes.filter((n) => n !== L) as [NodeProc, NodeProc];
}, 120_000);

afterAll(async () => {
  await Promise.all(opened.map((c) => c.close().catch(() => undefined)));
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

async function publish(n: number, node: NodeProc): Promise<void> {
  const conn = await connect(node);
  const ch = await conn.createConfirmChannel();
  const body = Buffer.alloc(1024, 7);
  for (let i = 0; i < n; i++) ch.publish('', queue, body, { persistent: true });
  await ch.waitForConfirms();
  await conn.close();
}

describe('a live cluster under traffic', () => {
  it('counts what the clients did on the nodes where they did it, each queue once', async () => {
    await publish(300, P);
    await eventually('the leader reports 300 published and ready', async () => {
      const s = await all();
      return sumOf(s, 'espresso_queue_messages_published_total') === 300 && sumOf(s, 'espresso_queue_messages_ready') === 300;
    });
    const p = await scrape(P.httpPort());
    for (const name of ['received', 'received_confirm', 'routed', 'confirmed']) {
      expect(valueOf(p, `espresso_global_messages_${name}_total`, { protocol: 'amqp091' }), name).toBe(300);
    }
    expect(valueOf(p, 'espresso_message_confirm_latency_seconds_count')).toBe(300);
    expect(valueOf(p, 'espresso_connections_opened_total')).toBeGreaterThanOrEqual(1);
    const perObject = await Promise.all([L, P, C].map((n) => scrape(n.httpPort(), '/metrics/per-object')));
    const labels = { vhost: '/', queue };
    expect(valueOf(perObject[0]!, 'espresso_queue_messages_ready', labels)).toBe(300);
    expect(valueOf(perObject[1]!, 'espresso_queue_messages_ready', labels)).toBeUndefined(); // a follower's counts are not reported
    expect(perObject.map((s) => s.find((x) => x.name === 'espresso_queue_info' && x.labels['queue'] === queue)?.labels['membership'])).toEqual(['leader', 'follower', 'follower']);
    expect(perObject.every((s) => (valueOf(s, 'espresso_raft_commit_index', labels) ?? 0) >= 300)).toBe(true);
    // Only the vhosts asked for (RabbitMQ's /metrics/detailed?vhost=): a scraper bounds what it gets.
    const rootOnly = await scrape(L.httpPort(), '/metrics/per-object?vhost=%2F');
    expect(valueOf(rootOnly, 'espresso_queue_messages_ready', labels)).toBe(300);
    const elsewhere = await scrape(L.httpPort(), '/metrics/per-object?vhost=elsewhere');
    expect(elsewhere.filter((x) => x.labels['queue'] !== undefined)).toEqual([]);
    expect(valueOf(elsewhere, 'espresso_identity_info', { espresso_node: L.spec.name })).toBe(1);
    expect(perObject[0]!.filter((x) => x.name === 'espresso_raft_follower_lag' && x.labels['queue'] === queue).map((x) => x.labels['follower']).sort())
      .toEqual([P.spec.name, C.spec.name].sort());

    const conn = await connect(C);
    const ch = await conn.createChannel();
    await ch.prefetch(50);
    let got = 0;
    await ch.consume(queue, (m) => {
      if (m === null) return;
      got++;
      ch.ack(m);
    });
    await eventually('the consumer on C got all 300', () => Promise.resolve(got === 300));
    await eventually('ready and unacked back to 0, 300 acked', async () => {
      const s = await all();
      return sumOf(s, 'espresso_queue_messages') === 0 && sumOf(s, 'espresso_queue_messages_acked_total') === 300;
    });
    const c = await scrape(C.httpPort());
    expect(valueOf(c, 'espresso_global_messages_delivered_consume_manual_ack_total', { protocol: 'amqp091' })).toBe(300);
    expect(valueOf(c, 'espresso_global_messages_acknowledged_total', { protocol: 'amqp091' })).toBe(300);
    expect(valueOf(c, 'espresso_consumers')).toBe(1);
    await conn.close();
    const l = await scrape(L.httpPort());
    expect(valueOf(l, 'espresso_queue_messages_delivered_total')).toBe(300);
    expect(valueOf(l, 'espresso_raft_wal_fsync_seconds_count')).toBeGreaterThan(0);
    expect(valueOf(l, 'espresso_raft_wal_entries_per_fsync_sum')).toBeGreaterThanOrEqual(valueOf(l, 'espresso_raft_wal_entries_per_fsync_count')!);
    expect(valueOf(l, 'espresso_raft_groups_led')).toBeGreaterThanOrEqual(1);
    expect(valueOf(l, 'espresso_peer_up', { peer: P.spec.name })).toBe(1);
    expect(valueOf(l, 'espresso_cluster_member_status', { member: C.spec.name, status: 'alive' })).toBe(1);
  }, 120_000);

  it('breaks traced messages\' time into stages that add up to their end to end', async () => {
    const conn = await connect(C);
    const ch = await conn.createChannel();
    const clientMs: number[] = [];
    await ch.consume(queue, (m) => {
      if (m === null) return;
      clientMs.push(Date.now() - Number(m.content.readBigInt64BE(0)));
      ch.ack(m);
    });
    const stages = ctl('profile', 'stages', '--seconds', '4', '--json');
    const pub = await connect(P);
    const pch = await pub.createConfirmChannel();
    // About 100 msg/s for 5 s: a light load, so the path is not one long queue.
    for (let i = 0; i < 50; i++) {
      for (let k = 0; k < 10; k++) {
        const body = Buffer.alloc(1024);
        body.writeBigInt64BE(BigInt(Date.now()), 0);
        pch.publish('', queue, body, { persistent: true });
      }
      await pch.waitForConfirms();
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await stages;
    expect(r.code, r.stderr).toBe(0);
    const b = JSON.parse(r.stdout) as StageBreakdown;
    expect(b.published).toBeGreaterThan(30);
    expect(b.consumed).toBeGreaterThan(30);
    const names = b.stages.map((l) => l.stage);
    for (const s of ['routed', 'forwarded', 'proposed', 'persisted', 'committed', 'applied', 'confirm_sent', 'delivered', 'acked', 'settled']) expect(names).toContain(s);
    // The stages measured on the publishing node and on the consuming node cover the whole path.
    expect(Math.abs(b.pathMeanMs - b.endToEnd.meanMs)).toBeLessThan(0.2 * b.endToEnd.meanMs + 1);
    // And the broker's end to end lies within what the clients saw (which adds both clients' socket
    // hops and event loops: this test process also runs the publisher, on a shared machine).
    const clientMean = clientMs.reduce((a, v) => a + v, 0) / clientMs.length;
    expect(b.endToEnd.meanMs).toBeLessThan(clientMean + 2);
    expect(b.endToEnd.meanMs).toBeGreaterThan(0.2 * clientMean);
    await pub.close();
    await conn.close();
  }, 60_000);

  it('takes CPU and heap profiles of another node, and gives none to a wrong secret or user', async () => {
    const cpuFile = join(tmp, 'p.cpuprofile');
    const cpu = await ctl('profile', 'cpu', '--node', L.spec.name, '--seconds', '2', '--out', cpuFile);
    expect(cpu.code, cpu.stderr).toBe(0);
    expect(cpu.stdout).toContain(`CPU profile of ${L.spec.name} written to ${cpuFile}`);
    expect(cpu.stdout).toMatch(/GC \d+\.\d% of busy time/);
    const profile = JSON.parse(readFileSync(cpuFile, 'utf8')) as { nodes: Array<{ callFrame: { functionName: string } }>; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
    expect(profile.nodes.some((n) => n.callFrame.functionName === '(root)')).toBe(true);
    expect(profile.samples.length).toBe(profile.timeDeltas.length);
    expect(profile.endTime - profile.startTime).toBeGreaterThanOrEqual(1_900_000);

    const heapFile = join(tmp, 'c.heapsnapshot');
    const heap = await ctl('profile', 'heap', '--node', C.spec.name, '--out', heapFile);
    expect(heap.code, heap.stderr).toBe(0);
    const snapshot = JSON.parse(readFileSync(heapFile, 'utf8')) as { snapshot: { meta: { node_fields: string[] }; node_count: number }; nodes: number[]; strings: string[] };
    expect(snapshot.snapshot.meta.node_fields).toContain('self_size');
    expect(snapshot.nodes.length).toBe(snapshot.snapshot.node_count * snapshot.snapshot.meta.node_fields.length);
    expect(snapshot.strings.length).toBeGreaterThan(1000);

    const unknown = await ctl('profile', 'cpu', '--node', 'n9', '--seconds', '1');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`no node 'n9' is connected to ${P.spec.name}`);
    const usage = await ctl('profile', 'disk');
    expect([usage.code, usage.stderr]).toEqual([64, "espresso ctl profile: expected cpu, heap or stages, got 'disk'\n"]);

    const refusedFile = join(tmp, 'refused.cpuprofile');
    const wrong = await runCtl(['--cluster-address', clusterAddress(P), '--cluster-secret', 'not-the-secret', 'profile', 'cpu', '--node', L.spec.name, '--seconds', '1', '--out', refusedFile]);
    expect(wrong.code).toBe(69);
    expect(wrong.stderr).toContain('refused our cluster secret');
    expect(existsSync(refusedFile)).toBe(false);

    const url = `http://127.0.0.1:${P.httpPort()}/api/espresso/profile/cpu?seconds=1&node=${L.spec.name}`;
    const auth = (u: string, p: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: auth('guest', 'wrong') })).status).toBe(401);
    expect((await fetch(url, { headers: auth('mallory', 'guest') })).status).toBe(401);
    const ok = await fetch(url, { headers: auth('guest', 'guest') });
    expect(ok.status).toBe(200);
    expect((await ok.json() as { samples: unknown[] }).samples.length).toBeGreaterThan(0);
  }, 120_000);

  it('shows every node in ctl top', async () => {
    const top = await ctl('top', '--once');
    expect(top.code, top.stderr).toBe(0);
    for (const n of nodes) expect(top.stdout).toMatch(new RegExp(`^${n.spec.name}\\s+up`, 'm'));
    expect(top.stdout).toMatch(new RegExp(`^/\\s+${queue}\\s+${L.spec.name}`, 'm'));
  }, 60_000);

  it('counts direct reply-to replies where they went, connections by flow state, and the memory the alarm measures', async () => {
    const outcome = (samples: Sample[], o: string): number => valueOf(samples, 'espresso_direct_reply_to_replies_total', { outcome: o }) ?? -1;
    const [p0, c0] = await Promise.all([scrape(P.httpPort()), scrape(C.httpPort())]);
    // A caller on P, a worker on C: the reply crosses from C to the caller's channel on P.
    const caller = await (await connect(P)).createChannel();
    const replies: string[] = [];
    await caller.consume('amq.rabbitmq.reply-to', (m) => void (m !== null && replies.push(m.content.toString())), { noAck: true });
    await caller.assertQueue('observe-rpc', { durable: false, autoDelete: true });
    const worker = await (await connect(C)).createChannel();
    caller.sendToQueue('observe-rpc', Buffer.from('ping'), { replyTo: 'amq.rabbitmq.reply-to' });
    let request: amqp.GetMessage | false = false;
    await eventually('the request reaches the worker on C', async () => (request = await worker.get('observe-rpc', { noAck: true })) !== false);
    worker.sendToQueue((request as unknown as amqp.GetMessage).properties.replyTo as string, Buffer.from('pong'));
    await eventually('the reply reaches the caller on P', () => Promise.resolve(replies.length === 1));
    const [p1, c1] = await Promise.all([scrape(P.httpPort()), scrape(C.httpPort())]);
    expect(outcome(c1, 'forwarded') - outcome(c0, 'forwarded')).toBe(1);
    expect(outcome(p1, 'delivered') - outcome(p0, 'delivered')).toBe(1);
    expect(outcome(p1, 'dropped')).toBe(outcome(p0, 'dropped'));
    // Nothing holds these clients back: every connection of P is running, none held or blocked.
    const states = ['running', 'flow', 'blocked'].map((state) => valueOf(p1, 'espresso_connections_state', { state }));
    expect(states).toEqual([valueOf(p1, 'espresso_connections'), 0, 0]);
    expect(states[0]).toBeGreaterThanOrEqual(1);
    // What the memory alarm compares with its watermark: heap in use plus buffers, below RSS.
    const used = valueOf(p1, 'espresso_memory_used_bytes')!;
    expect(used).toBeGreaterThan(1024 * 1024);
    expect(used).toBeLessThan(valueOf(p1, 'espresso_process_resident_memory_bytes')!);
  });

  it('serves every metric the Grafana dashboard queries, on the paths the Prometheus config scrapes', async () => {
    const dashboard = JSON.parse(readFileSync(join(root, 'cluster/monitoring/grafana-dashboard.json'), 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
    const queried = new Set(dashboard.panels.flatMap((p) => p.targets ?? []).flatMap((t) => [...t.expr.matchAll(/\bespresso_[a-z0-9_]+/g)].map((m) => m[0])));
    expect(queried.size).toBeGreaterThan(25);
    const config = readFileSync(join(root, 'cluster/monitoring/prometheus.yml'), 'utf8');
    const paths = [...config.matchAll(/metrics_path:\s*(\S+)/g)].map((m) => m[1]!);
    expect(paths).toEqual(['/metrics', '/metrics/per-object']);
    // `npm run cluster`'s nodes: HTTP on AMQP 5672.. + 10000.
    expect([...config.matchAll(/targets: \[(.*)\]/g)].map((m) => m[1])).toEqual(Array(2).fill("'127.0.0.1:15672', '127.0.0.1:15673', '127.0.0.1:15674'"));
    for (const path of paths) {
      const served = new Set((await Promise.all([L, P, C].map((n) => scrape(n.httpPort(), path)))).flat().map((s) => s.name));
      const missing = [...queried].filter((name) => !served.has(name));
      expect(missing, `${path} lacks`).toEqual([]);
    }
  }, 60_000);

  it('reports a killed node from its peers', async () => {
    C.child.kill('SIGKILL');
    await C.exited;
    await eventually('both peers see the stream down and gossip declares it dead', async () => {
      const seen = await Promise.all([L, P].map((n) => fetch(`http://127.0.0.1:${n.httpPort()}/metrics`).then((r) => r.text()).then(parseMetrics)));
      return seen.every((s) => valueOf(s, 'espresso_peer_up', { peer: C.spec.name }) === 0
        && valueOf(s, 'espresso_cluster_member_status', { member: C.spec.name, status: 'dead' }) === 1);
    }, 30_000);
    const top = await ctl('top', '--once');
    expect(top.stdout).toMatch(new RegExp(`^${C.spec.name}\\s+no answer`, 'm'));
  }, 60_000);
});
