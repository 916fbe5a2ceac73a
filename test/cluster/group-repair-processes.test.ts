// Three real `espresso server` processes: one is killed, the metadata group's records in its WAL
// are damaged, and on restart it rebuilds that group from the other two by itself, then serves
// clients with every definition and every confirmed message.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { amqpUrl, eventually, freePorts, killAll, startNode, type NodeProc, type NodeSpec } from '../cli/cluster-nodes.js';

const secret = 'group-repair-secret';
const tmp = mkdtempSync(join(tmpdir(), 'espresso-repair-proc-'));
const conns: amqp.ChannelModel[] = [];

afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

async function connect(n: NodeProc): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(amqpUrl(n));
  c.on('error', () => undefined);
  conns.push(c);
  return c;
}

/** WAL segments of a node holding `needle`, and where. */
function findInWal(dataDir: string, needle: string): Array<{ file: string; at: number }> {
  const dir = join(dataDir, 'raft', 'wal');
  const out: Array<{ file: string; at: number }> = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.wal'))) {
    const at = readFileSync(join(dir, name)).indexOf(Buffer.from(needle));
    if (at >= 0) out.push({ file: join(dir, name), at });
  }
  return out;
}

describe('group repair on server processes', () => {
  it('a node whose metadata log is damaged rebuilds it from its peers, starts, and serves every definition and message', async () => {
    const ports = await freePorts(6);
    const names = ['n1', 'n2', 'n3'];
    const seeds = names.map((n, i) => `${n}@127.0.0.1:${ports[3 + i]!}`).join(',');
    const specs: NodeSpec[] = names.map((name, i) => ({ name, amqpPort: ports[i]!, clusterPort: ports[3 + i]!, dataDir: join(tmp, name), secret, seeds }));
    const nodes = specs.map((s) => startNode(s));
    await Promise.all(nodes.map((n) => n.ready));

    const ch = await (await connect(nodes[0]!)).createConfirmChannel();
    const probe = 'repair-probe-exchange-0123456789';
    await ch.assertExchange(probe, 'fanout', { durable: true });
    // More definitions after it: the damaged record is mid-log, not a torn tail.
    for (let i = 0; i < 5; i++) await ch.assertExchange(`after-probe-${i}`, 'direct', { durable: true });
    await ch.assertQueue('kept', { durable: true });
    const bodies = Array.from({ length: 50 }, (_, i) => `kept-${i}`);
    for (const b of bodies) ch.sendToQueue('kept', Buffer.from(b), { persistent: true });
    await ch.waitForConfirms();
    const n3 = nodes[2]!;
    await eventually('n3 holds the probe in its WAL', () => Promise.resolve(findInWal(n3.spec.dataDir, 'after-probe-4').length > 0));

    n3.child.kill('SIGKILL');
    await n3.exited;
    const hits = findInWal(n3.spec.dataDir, probe);
    expect(hits.length).toBeGreaterThan(0);
    for (const { file, at } of hits) {
      const bytes = readFileSync(file);
      bytes[at + 7] = bytes[at + 7]! ^ 0x5a;
      writeFileSync(file, bytes);
    }

    const again = startNode(n3.spec, 60_000);
    await again.ready;
    const log = again.output();
    expect(log).toMatch(/"event":"group repair started: damaged log discarded, rebuilding from peers".*"group":"meta"/);
    // The broker started only once the metadata group caught up: the repair of meta is over or nearly.
    await eventually('meta a voter again on n3', () => Promise.resolve(/"event":"group repair finished: voter again".*"group":"meta"/.test(again.output())), 30_000);

    const ch3 = await (await connect(again)).createChannel();
    await ch3.checkExchange(probe);
    for (let i = 0; i < 5; i++) await ch3.checkExchange(`after-probe-${i}`);
    const got: string[] = [];
    await ch3.consume('kept', (m) => {
      if (m === null) return;
      got.push(m.content.toString());
      ch3.ack(m);
    });
    await eventually('every confirmed message through n3', () => Promise.resolve(got.length >= bodies.length), 20_000);
    expect(got).toEqual(bodies);
  }, 150_000);
});
