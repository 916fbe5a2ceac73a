// A 3-node cluster of real `espresso server` processes for the Task-RPC and Celery tests: started
// from one seed list on free loopback ports, ready once every node sees three alive voters and a
// metadata leader.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { amqpUrl, eventually, seededSpecs, startNode, statusOf, type NodeProc } from '../cli/cluster-nodes.js';

export interface ThreeNodes {
  nodes: NodeProc[];
  urls: string[];
  /** SIGKILL to one node (kill -9), resolved once it exited. */
  kill(i: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startThreeNodes(prefix: string): Promise<ThreeNodes> {
  const dir = mkdtempSync(join(tmpdir(), `espresso-${prefix}-`));
  const specs = await seededSpecs(3, dir, `${prefix}-secret`);
  const nodes = specs.map((s) => startNode(s));
  const stopAll = async (): Promise<void> => {
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => n.ready));
    for (const n of nodes) {
      await eventually(`${n.spec.name} sees three alive voters and a leader`, async () => {
        const s = await statusOf(n);
        return s.voters.length === 3 && s.metaLeader !== null && s.nodes.filter((x) => x.status === 'alive').length === 3;
      }, 30_000);
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
  return {
    nodes,
    urls: nodes.map(amqpUrl),
    kill: async (i) => {
      const n = nodes[i]!;
      n.child.kill('SIGKILL');
      await n.exited;
    },
    stop: stopAll,
  };
}
