// Group host throughput: 3 hosts in ONE process on 127.0.0.1 (real gRPC transport, real WAL with
// fdatasync in temp dirs), a fixed window of outstanding proposals per group, 256-byte payloads.
// Prints proposals/s (committed and applied on the leader) and entries per fdatasync, for 1 group
// and for 50 groups. Run: npx tsx bench/group-host.ts [seconds per run, default 5]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GroupHost } from '../src/cluster/group-host.js';
import { isOperatingError, OperatingErrorCode } from '../src/lib/errors.js';
import type { GroupId } from '../src/lib/ids.js';
import { groupId, nodeId } from '../src/lib/ids.js';
import { SeededRandom } from '../src/lib/random.js';

const ids = ['n1', 'n2', 'n3'].map(nodeId);
const seconds = Number(process.argv[2] ?? 5);

async function run(groupCount: number, windowPerGroup: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'espresso-bench-gh-'));
  const hosts: GroupHost[] = [];
  try {
    for (const [i, id] of ids.entries()) {
      hosts.push(await GroupHost.start({
        nodeId: id, dataDir: join(root, id), listen: { host: '127.0.0.1', port: 0 }, secret: 'bench', random: new SeededRandom(i + 1),
      }));
    }
    for (const a of hosts) for (const b of hosts) if (a !== b) a.addPeer(b.nodeId, `127.0.0.1:${b.port}`);
    const groups: GroupId[] = Array.from({ length: groupCount }, (_, i) => groupId(`g${i}`));
    let leaderChanges = 0;
    for (const h of hosts) for (const g of groups) h.createGroup(g, ids, { apply: () => {}, leaderChange: () => { leaderChanges++; } });
    groups.forEach((g, i) => hosts[i % 3]!.campaign(g));
    const leaders = await Promise.all(groups.map((g) => leaderOf(hosts, g)));
    const changesBefore = leaderChanges;
    let redirects = 0;
    const payload = new Uint8Array(256).fill(7);
    const before = hosts.map((h) => h.stats());
    const start = performance.now();
    const deadline = start + seconds * 1000;
    let done = 0;
    // One loop per in-flight slot: propose, wait for the commit, propose again until the deadline.
    // A NotLeader answer (leadership moved: a starved event loop can miss heartbeats) sends the
    // slot to the hinted leader, or to the next host when there is no hint yet.
    const slot = async (g: GroupId, i: number): Promise<void> => {
      while (performance.now() < deadline) {
        try {
          await leaders[i]!.propose(g, payload);
          done++;
        } catch (e) {
          if (!isOperatingError(e, OperatingErrorCode.NotLeader)) throw e;
          redirects++;
          const hint = e.details['leader'];
          leaders[i] = hosts.find((h) => h.nodeId === hint) ?? hosts[(hosts.indexOf(leaders[i]!) + 1) % 3]!;
          if (hint === '' || hint === undefined) await new Promise((r) => setTimeout(r, 10));
        }
      }
    };
    await Promise.all(groups.flatMap((g, i) => Array.from({ length: windowPerGroup }, () => slot(g, i))));
    const elapsedS = (performance.now() - start) / 1000;
    const after = hosts.map((h) => h.stats());
    const fsyncs = after.reduce((s, a, i) => s + a.wal.fsyncs - before[i]!.wal.fsyncs, 0);
    const entries = after.reduce((s, a, i) => s + a.entriesPersisted - before[i]!.entriesPersisted, 0);
    const cycles = after.reduce((s, a, i) => s + a.cycles - before[i]!.cycles, 0);
    console.log(JSON.stringify({
      groups: groupCount, inFlight: groupCount * windowPerGroup, payloadBytes: payload.length, seconds: +elapsedS.toFixed(2),
      proposalsPerS: Math.round(done / elapsedS), entriesPerFsync: +(entries / Math.max(1, fsyncs)).toFixed(1),
      fsyncsPerS: Math.round(fsyncs / elapsedS), cyclesPerS: Math.round(cycles / elapsedS),
      leaderChangesSeen: leaderChanges - changesBefore, notLeaderRedirects: redirects,
    }));
  } finally {
    for (const h of hosts) await h.close();
    rmSync(root, { recursive: true, force: true });
  }
}

/** Waits (bounded) until one host leads `g`. */
async function leaderOf(hosts: GroupHost[], g: GroupId): Promise<GroupHost> {
  for (let i = 0; i < 500; i++) {
    const l = hosts.find((h) => h.status(g)?.role === 'leader');
    if (l !== undefined) return l;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no leader for ${g}`);
}

await run(1, 1);
await run(1, 256);
await run(50, 32);
