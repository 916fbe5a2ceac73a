// The metadata group over three group hosts in one process (real transports and WALs on loopback):
// changes made on any node are forwarded to the leader and visible on the caller when answered,
// errors come back as the model's, the registry and onApplied follow every node, a late node joins
// through a follower and catches up from a snapshot, and forget refuses what it must and drops
// the forgotten node's non-durable queues.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/broker/auth.js';
import { GroupHost } from '../../src/cluster/group-host.js';
import { ReplicatedMetadataClient, metadataGroupId, type ClusterNode } from '../../src/cluster/metadata-group.js';
import { ClusterRpc } from '../../src/cluster/rpc.js';
import { isOperatingError } from '../../src/lib/errors.js';
import { nodeId, type NodeId } from '../../src/lib/ids.js';
import { silentLogger } from '../../src/lib/log.js';
import { SeededRandom } from '../../src/lib/random.js';
import { lookupExchange, lookupQueue, type MetadataCommand } from '../../src/model/index.js';

interface Member { id: NodeId; host: GroupHost; rpc: ClusterRpc; meta: ReplicatedMetadataClient | undefined; info: ClusterNode }

const root = mkdtempSync(join(tmpdir(), 'espresso-metafwd-'));
const members: Member[] = [];
const user = { name: 'guest', passwordHash: hashPassword('guest'), tags: ['administrator'] };

afterEach(async () => {
  for (const m of members.splice(0)) {
    await m.meta?.close();
    m.rpc.close();
    await m.host.close();
  }
  rmSync(root, { recursive: true, force: true });
});

async function host(name: string, seed: number): Promise<Member> {
  const id = nodeId(name);
  const h = await GroupHost.start({ nodeId: id, dataDir: join(root, name), listen: { host: '127.0.0.1', port: 0 }, secret: 's', random: new SeededRandom(seed) });
  const m: Member = { id, host: h, rpc: new ClusterRpc(h.transport, silentLogger), meta: undefined, info: { id, clusterAddress: `127.0.0.1:${h.port}`, amqpAddress: `127.0.0.1:${5000 + seed}`, version: 't' } };
  for (const o of members) {
    o.host.addPeer(id, m.info.clusterAddress);
    h.addPeer(o.id, o.info.clusterAddress);
  }
  members.push(m);
  return m;
}

function start(m: Member, bootstrap: readonly NodeId[], snapshotEveryEntries = 1000): Promise<ReplicatedMetadataClient> {
  return ReplicatedMetadataClient.start({ groupHost: m.host, members: bootstrap, rpc: m.rpc, self: m.info, defaultUser: user, snapshotEveryEntries })
    .then((c) => (m.meta = c));
}

async function threeNodes(snapshotEveryEntries = 1000): Promise<Member[]> {
  const ms = [await host('n1', 1), await host('n2', 2), await host('n3', 3)];
  await Promise.all(ms.map((m) => start(m, ms.map((x) => x.id), snapshotEveryEntries)));
  return ms;
}

function declareExchange(name: string, type = 'direct'): MetadataCommand {
  return { kind: 'declareExchange', vhost: '/', name, type, passive: false, durable: true, autoDelete: false, internal: false, arguments: {} };
}

function follower(ms: readonly Member[]): Member {
  const leader = ms[0]!.meta!.leader();
  return ms.find((m) => m.id !== leader)!;
}

describe('metadata forwarding over three nodes', () => {
  it('a change made on a follower is committed by the leader and visible on the follower when answered', async () => {
    const ms = await threeNodes();
    const f = follower(ms);
    const r = await f.meta!.apply(declareExchange('from-follower'));
    expect(r.ok && r.created).toBe(true);
    expect(lookupExchange(f.meta!.state, '/', 'from-follower')).toBeDefined();
    expect(f.meta!.stats().forwarded).toBeGreaterThan(0);
    // The model's refusal travels back as the same error value.
    const again = await f.meta!.apply(declareExchange('from-follower', 'fanout'));
    expect(again.ok).toBe(false);
    if (!again.ok) expect(again.replyCode).toBe(406);
    // The others see it after a read barrier, and a passive declare there finds it.
    for (const m of ms) {
      await m.meta!.sync();
      const p = await m.meta!.apply({ ...declareExchange('from-follower'), passive: true } as MetadataCommand);
      expect(p.ok).toBe(true);
    }
  }, 30_000);

  it('keeps a registry of every started node and tells onApplied listeners', async () => {
    const ms = await threeNodes();
    let calls = 0;
    const off = ms[2]!.meta!.onApplied(() => calls++);
    await ms[0]!.meta!.apply(declareExchange('x1'));
    await ms[2]!.meta!.sync();
    expect(calls).toBeGreaterThan(0);
    off();
    for (const m of ms) expect(m.meta!.nodes()).toEqual(ms.map((x) => x.info));
  }, 30_000);

  it('a late node joins through a follower, catches up from a snapshot and becomes a voter', async () => {
    const ms = await threeNodes(5);
    for (let i = 0; i < 20; i++) await ms[i % 3]!.meta!.apply(declareExchange(`before-${i}`));
    // The leader's log no longer starts at 1: a newcomer can only catch up from its snapshot.
    const leader = ms.find((m) => m.id === ms[0]!.meta!.leader())!;
    for (let i = 0; i < 100 && (leader.host.status(metadataGroupId)?.firstIndex ?? 1) <= 1; i++) await leader.meta!.apply(declareExchange(`more-${i}`));
    expect(leader.host.status(metadataGroupId)!.firstIndex).toBeGreaterThan(1);
    const n4 = await host('n4', 4);
    const answer = await ReplicatedMetadataClient.requestJoin(n4.rpc, follower(ms).id, n4.info);
    expect(answer.bootstrap).toEqual(['n1', 'n2', 'n3']);
    expect(answer.nodes.map((n) => n.id)).toContain('n4');
    const meta = await start(n4, answer.bootstrap, 5);
    for (let i = 0; i < 20; i++) expect(lookupExchange(meta.state, '/', `before-${i}`)).toBeDefined();
    expect(meta.stats().snapshotIndex).toBeGreaterThan(0);
    await meta.apply(declareExchange('from-n4'));
    await ms[0]!.meta!.sync();
    expect(lookupExchange(ms[0]!.meta!.state, '/', 'from-n4')).toBeDefined();
    for (let i = 0; i < 200 && !meta.membership().voters.includes(n4.id); i++) await new Promise((r) => setTimeout(r, 50));
    expect(meta.membership().voters).toEqual(['n1', 'n2', 'n3', 'n4']);
  }, 30_000);

  it('forget refuses the node it came through, and removes another from the registry and the voters', async () => {
    const ms = await threeNodes();
    const via = ms[0]!;
    await expect(via.meta!.forgetNode(via.id)).rejects.toSatisfy((e) => isOperatingError(e) && /came through/.test(e.message));
    const gone = ms.find((m) => m.id !== via.id && m.id !== via.meta!.leader()) ?? ms[1]!;
    const temp: MetadataCommand = {
      kind: 'declareQueue', vhost: '/', name: 'temp-on-gone', serverNamed: false, passive: false, durable: false, exclusive: false,
      autoDelete: false, arguments: {}, connection: { connectionId: 'c1', nodeId: gone.id },
    };
    expect((await gone.meta!.apply(temp)).ok).toBe(true);
    await via.meta!.forgetNode(gone.id);
    // Its non-durable queues went with it.
    expect(lookupQueue(via.meta!.state, '/', 'temp-on-gone')).toBeUndefined();
    for (let i = 0; i < 100 && via.meta!.membership().voters.includes(gone.id); i++) await new Promise((r) => setTimeout(r, 20));
    expect(via.meta!.membership().voters).not.toContain(gone.id);
    expect(via.meta!.nodes().map((n) => n.id)).not.toContain(gone.id);
    const r = await via.meta!.apply(declareExchange('after-forget'));
    expect(r.ok).toBe(true);
  }, 30_000);

  it('a node that hosts the group without being a bootstrap voter is added by its own start entry', async () => {
    const a = await host('n1', 1);
    const b = await host('n2', 2);
    await Promise.all([start(a, [a.id, b.id]), start(b, [a.id, b.id])]);
    const c = await host('n3', 3);
    const meta = await start(c, [a.id, b.id]); // as a 6th --seeds node: hosts 'meta', not a voter
    expect(meta.nodes().map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
    for (let i = 0; i < 200 && !meta.membership().voters.includes(c.id); i++) await new Promise((r) => setTimeout(r, 50));
    expect(meta.membership().voters).toEqual(['n1', 'n2', 'n3']);
    expect((await meta.apply(declareExchange('from-n3'))).ok).toBe(true);
  }, 30_000);

  it('declares forwarded while the leader stops are answered by the next leader, none lost', async () => {
    const ms = await threeNodes();
    const leader = ms.find((m) => m.id === ms[0]!.meta!.leader())!;
    const f = ms.find((m) => m !== leader)!;
    const other = ms.find((m) => m !== leader && m !== f)!;
    const results: Promise<boolean>[] = [];
    for (let i = 0; i < 30; i++) {
      results.push(f.meta!.apply(declareExchange(`during-${i}`)).then((r) => r.ok));
      if (i === 10) {
        // The leader's node goes away mid-stream (its transport closes: peers see it down).
        members.splice(members.indexOf(leader), 1);
        leader.rpc.close();
        await leader.meta!.close();
        await leader.host.close();
      }
    }
    expect(await Promise.all(results)).toEqual(results.map(() => true));
    expect(f.meta!.leader()).not.toBe(leader.id);
    await other.meta!.sync();
    for (let i = 0; i < 30; i++) expect(lookupExchange(other.meta!.state, '/', `during-${i}`)).toBeDefined();
  }, 30_000);
});
