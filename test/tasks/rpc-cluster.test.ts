// The Task-RPC SDK on a 3-node cluster of real processes: the caller on n1 and the servers on n2
// and n3 (every reply crosses nodes), a server's node killed with kill -9 mid-stream, and the
// caller's node killed. No call may hang past its deadline; idempotent calls are retried to success,
// the others either succeed or fail fast with the error that says what happened.

import { afterAll, describe, expect, it } from 'vitest';
import { connectRpc, RpcError, type Rpc, type RpcEvent } from '../../src/tasks/index.js';
import { startThreeNodes, type ThreeNodes } from './three-nodes.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const clusters: ThreeNodes[] = [];
const clients: Rpc[] = [];

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await Promise.all(clusters.map((c) => c.stop()));
});

async function cluster(prefix: string): Promise<ThreeNodes> {
  const c = await startThreeNodes(prefix);
  clusters.push(c);
  return c;
}

async function client(urls: string[], onEvent?: (e: RpcEvent) => void): Promise<Rpc> {
  const rpc = await connectRpc(urls, onEvent === undefined ? {} : { onEvent });
  clients.push(rpc);
  return rpc;
}

interface Outcome {
  /** `loop:i`, as the payload names the call. */
  id: string;
  idempotent: boolean;
  startedAt: number;
  endedAt: number;
  timeoutMs: number;
  /** 'ok' or the RpcError code. */
  result: string;
}

/**
 * `loops` callers calling `method` back to back until `stopAt` (ms since the epoch), every other
 * call idempotent; resolves with every call's outcome once all ended.
 */
async function stream(rpc: Rpc, method: string, loops: number, stopAt: number, timeoutMs: number): Promise<Outcome[]> {
  const out: Outcome[] = [];
  await Promise.all(Array.from({ length: loops }, async (_, loop) => {
    for (let i = 0; Date.now() < stopAt && i < 10_000; i++) {
      const idempotent = (i + loop) % 2 === 0;
      const startedAt = Date.now();
      let result = 'ok';
      try {
        const got = await rpc.call(method, { loop, i }, { timeoutMs, idempotent });
        expect(got).toEqual({ loop, i });
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        result = e.code;
      }
      out.push({ id: `${loop}:${i}`, idempotent, startedAt, endedAt: Date.now(), timeoutMs, result });
    }
  }));
  return out;
}

function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const t: Record<string, number> = { slowestMs: Math.max(0, ...outcomes.map((o) => o.endedAt - o.startedAt)) };
  for (const o of outcomes) {
    const k = `${o.idempotent ? 'idempotent' : 'plain'} ${o.result}`;
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
}

/** What every stream must show: nothing ended after its deadline, and no call timed out. */
function expectNoHang(outcomes: readonly Outcome[]): void {
  const late = outcomes.filter((o) => o.endedAt - o.startedAt > o.timeoutMs + 1_000);
  expect(late).toEqual([]);
  expect(outcomes.filter((o) => o.result === 'TIMEOUT')).toEqual([]);
}

interface SlowServer {
  served(): number;
  /** The calls in its handler now (`loop:i`). */
  running(): string[];
}

/** A server of `method` that holds each call `holdMs`. */
async function slowServer(urls: string[], method: string, holdMs: number): Promise<SlowServer> {
  const rpc = await client(urls);
  let served = 0;
  const running = new Set<string>();
  await rpc.serve(method, async (p) => {
    const { loop, i } = p as { loop: number; i: number };
    running.add(`${loop}:${i}`);
    await sleep(holdMs);
    running.delete(`${loop}:${i}`);
    served++;
    return p;
  }, { concurrency: 4 });
  return { served: () => served, running: () => [...running] };
}

describe('Task-RPC across a 3-node cluster of processes', () => {
  let c: ThreeNodes;

  it('answers every call of a caller on n1 from servers on n2 and n3, both taking a share', async () => {
    c = await cluster('rpc-a');
    const s2 = await slowServer([c.urls[1]!], 'cluster.spread', 20);
    const s3 = await slowServer([c.urls[2]!], 'cluster.spread', 20);
    const caller = await client([c.urls[0]!]);
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => caller.call('cluster.spread', { i }, { timeoutMs: 10_000 })));
    expect(results).toEqual(Array.from({ length: 60 }, (_, i) => ({ i })));
    expect(s2.served() + s3.served()).toBe(60);
    expect(s2.served()).toBeGreaterThan(10);
    expect(s3.served()).toBeGreaterThan(10);
  }, 120_000);

  it("kill -9 of a server's node mid-stream: no call hangs; idempotent calls succeed, others succeed or fail with SERVER_LOST", async () => {
    // The server on n2 knows no other node, so its answers to the calls it was running are lost
    // with n2: the broker gives those requests to the server on n3 once it gives up on n2.
    const s2 = await slowServer([c.urls[1]!], 'cluster.kill-server', 300);
    const s3 = await slowServer([c.urls[2]!], 'cluster.kill-server', 300);
    const caller = await client([c.urls[0]!]);
    const stopAt = Date.now() + 14_000;
    const outcomes = stream(caller, 'cluster.kill-server', 8, stopAt, 15_000);
    await sleep(2_000);
    // Its handlers run in waves: kill while a wave is in the handler.
    for (let i = 0; i < 200 && s2.running().length === 0; i++) await sleep(5);
    const inFlight = new Set(s2.running());
    await c.kill(1);
    const all = await outcomes;
    console.log(`server node killed with ${inFlight.size} calls in its server's handler: ${JSON.stringify(tally(all))}; served n2-server ${s2.served()}, n3-server ${s3.served()}`);
    expect(inFlight.size).toBeGreaterThan(0);
    expectNoHang(all);
    expect(all.filter((o) => o.idempotent && o.result !== 'ok')).toEqual([]);
    expect(all.filter((o) => !o.idempotent && o.result !== 'ok' && o.result !== 'SERVER_LOST')).toEqual([]);
    // Exactly the non-idempotent calls the lost server was running fail with SERVER_LOST.
    const caught = all.filter((o) => inFlight.has(o.id));
    expect(caught.length).toBe(inFlight.size);
    for (const o of caught) expect([o.id, o.result]).toEqual([o.id, o.idempotent ? 'ok' : 'SERVER_LOST']);
    // Calls keep being answered after the kill.
    expect(all.filter((o) => o.startedAt > stopAt - 4_000 && o.result === 'ok').length).toBeGreaterThan(0);
  }, 120_000);

  it("kill -9 of the caller's node: the caller fails over; idempotent calls in flight are resent, the others fail fast with CONNECTION_LOST", async () => {
    const d = await cluster('rpc-c');
    await slowServer([d.urls[1]!], 'cluster.kill-caller', 300);
    await slowServer([d.urls[2]!], 'cluster.kill-caller', 300);
    let lostAt = 0;
    const caller = await client([d.urls[0]!, d.urls[1]!, d.urls[2]!], (e) => {
      if (e.type === 'disconnected' && lostAt === 0) lostAt = Date.now();
    });
    expect(caller.connectedUrl()).toContain(`:${d.nodes[0]!.spec.amqpPort}`);
    const stopAt = Date.now() + 12_000;
    const outcomes = stream(caller, 'cluster.kill-caller', 8, stopAt, 15_000);
    await sleep(2_000);
    const killedAt = Date.now();
    await d.kill(0);
    const all = await outcomes;
    console.log(`caller's node killed: ${JSON.stringify(tally(all))}; caller saw it after ${lostAt - killedAt} ms, now on ${caller.connectedUrl() ?? 'nothing'}; resent ${caller.stats().caller.resent}`);
    expect(caller.connectedUrl()).toContain(`:${d.nodes[1]!.spec.amqpPort}`);
    expectNoHang(all);
    expect(all.filter((o) => o.idempotent && o.result !== 'ok')).toEqual([]);
    // What failed fast was in flight when the caller saw its connection drop.
    const lost = all.filter((o) => o.result === 'CONNECTION_LOST');
    expect(lost.length).toBeGreaterThan(0);
    for (const o of lost) {
      expect(o.idempotent).toBe(false);
      expect(o.startedAt).toBeLessThanOrEqual(lostAt);
      expect(o.endedAt - killedAt).toBeLessThan(2_000);
    }
    expect(caller.stats().caller.resent).toBeGreaterThan(0);
    expect(all.filter((o) => !o.idempotent && o.result !== 'ok' && o.result !== 'CONNECTION_LOST')).toEqual([]);
    expect(all.filter((o) => o.startedAt > killedAt + 3_000 && o.result === 'ok').length).toBeGreaterThan(0);
  }, 120_000);
});
