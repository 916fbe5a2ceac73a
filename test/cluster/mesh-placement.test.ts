// Placement on declare: replica count from the arguments (capped at the nodes known), preferred
// leaders spread over the nodes, and only new durable shared queues get a replica set.

import { describe, expect, it } from 'vitest';
import { chooseReplicas, placeDeclare, placementLoad } from '../../src/cluster/placement.js';
import { nodeId, type NodeId } from '../../src/lib/ids.js';
import { applyMetadata, type DeclareQueue, type MetadataState } from '../../src/model/index.js';
import { freshState } from '../model/helpers.js';

const five: NodeId[] = ['n1', 'n2', 'n3', 'n4', 'n5'].map(nodeId);

function declare(name: string, extra: Partial<DeclareQueue> = {}): DeclareQueue {
  return {
    kind: 'declareQueue', vhost: '/', name, passive: false, durable: true, exclusive: false, autoDelete: false,
    arguments: {}, connection: { connectionId: 'c1', nodeId: nodeId('n1') }, ...extra,
  };
}

function declareAll(state: MetadataState, names: readonly string[], nodes: readonly NodeId[], args: Record<string, unknown> = {}): void {
  for (const name of names) {
    const r = applyMetadata(state, placeDeclare(declare(name, { arguments: args }), state, nodes, 3));
    expect(r.ok).toBe(true);
  }
}

describe('placement of replicated queues', () => {
  it('gives each new queue three replicas and spreads the preferred leaders evenly over five nodes', () => {
    const state = freshState();
    const names = Array.from({ length: 10 }, (_, i) => `q${i}`);
    declareAll(state, names, five);
    const load = placementLoad(state);
    expect([...load.leaders.values()]).toEqual([2, 2, 2, 2, 2]);
    expect([...load.replicas.values()].reduce((a, b) => a + b, 0)).toBe(30);
    for (const n of five) expect(load.replicas.get(n)).toBe(6);
    for (const name of names) {
      const r = state.vhosts.get('/')!.queues.get(name)!.record.replicas;
      expect(new Set(r).size).toBe(3);
    }
  });

  it('takes x-quorum-initial-group-size, capped at the nodes known', () => {
    const state = freshState();
    declareAll(state, ['one'], five, { 'x-quorum-initial-group-size': 1 });
    declareAll(state, ['all'], five, { 'x-quorum-initial-group-size': 9 });
    declareAll(state, ['small'], five.slice(0, 2));
    const replicas = (n: string): readonly NodeId[] => state.vhosts.get('/')!.queues.get(n)!.record.replicas;
    expect(replicas('one')).toHaveLength(1);
    expect([...replicas('all')].sort()).toEqual(five);
    expect(replicas('small')).toHaveLength(2);
  });

  it('leaves transient, exclusive, auto-delete, passive and existing queues alone', () => {
    const state = freshState();
    declareAll(state, ['kept'], five);
    const before = state.vhosts.get('/')!.queues.get('kept')!.record.replicas;
    for (const c of [
      declare('t', { durable: false }), declare('x', { exclusive: true }), declare('a', { autoDelete: true }),
      declare('kept', { passive: true }), declare('kept'),
    ]) {
      expect(placeDeclare(c, state, five, 3)).toBe(c);
    }
    expect(state.vhosts.get('/')!.queues.get('kept')!.record.replicas).toEqual(before);
  });

  it('with no nodes known places the queue on the declaring node alone', () => {
    expect(chooseReplicas([], 3, placementLoad(freshState()))).toEqual([]);
    const state = freshState();
    const c = placeDeclare(declare('solo'), state, [], 3) as DeclareQueue;
    expect(c.replicas).toEqual(['n1']);
  });

  it('prefers nodes that are up: a down node is chosen only when the count needs it', () => {
    const load = placementLoad(freshState());
    const up = (n: NodeId): boolean => n !== 'n1' && n !== 'n2';
    const three = chooseReplicas(five, 3, load, up);
    expect([...three].sort()).toEqual(['n3', 'n4', 'n5']);
    const all = chooseReplicas(five, 5, load, up);
    expect(all.slice(0, 3).every(up)).toBe(true);
    expect([...all].sort()).toEqual(five);
  });
});
