// Placement of a new replicated queue: how many replicas, on which nodes, and which one leads first.
// The declaring node chooses before proposing the declare, from the metadata it has applied, so the
// replica set is part of the committed record and every node agrees on it.
//
// Leaders spread: the preferred leader (first replica) is the node that is preferred leader of the
// fewest queues; the others are the nodes holding the fewest replicas. Ties go to the lower node id,
// so the choice is deterministic for a given metadata state.

import type { NodeId } from '../lib/ids.js';
import { listQueues, listVhosts, requestedReplicaCount, type DeclareQueue, type MetadataCommand, type MetadataState } from '../model/index.js';
import type { MetadataClient } from '../broker/metadata-client.js';

export interface PlacementLoad {
  /** Queues whose first replica (preferred leader) is the node. */
  readonly leaders: ReadonlyMap<NodeId, number>;
  /** Queues with a replica on the node. */
  readonly replicas: ReadonlyMap<NodeId, number>;
}

export function placementLoad(state: MetadataState): PlacementLoad {
  const leaders = new Map<NodeId, number>();
  const replicas = new Map<NodeId, number>();
  for (const vhost of listVhosts(state)) {
    for (const q of listQueues(state, vhost)) {
      if (q.kind !== 'replicated') continue;
      const first = q.replicas[0];
      if (first !== undefined) leaders.set(first, (leaders.get(first) ?? 0) + 1);
      for (const n of q.replicas) replicas.set(n, (replicas.get(n) ?? 0) + 1);
    }
  }
  return { leaders, replicas };
}

/**
 * The replica set of a new queue: `count` (capped at the nodes known) nodes, preferred leader first.
 * Nodes reachable now (`live`) come before the others, so a node that is down is picked only when
 * the count needs it (a queue placed on down nodes would wait for them to elect a leader).
 */
export function chooseReplicas(nodes: readonly NodeId[], count: number, load: PlacementLoad, live: (n: NodeId) => boolean = () => true): NodeId[] {
  const pool = [...new Set(nodes)].sort();
  const size = Math.max(1, Math.min(Math.floor(count), pool.length));
  const down = (n: NodeId): number => (live(n) ? 0 : 1);
  const by = (m: ReadonlyMap<NodeId, number>) => (a: NodeId, b: NodeId): number => (m.get(a) ?? 0) - (m.get(b) ?? 0) || (a < b ? -1 : a > b ? 1 : 0);
  const leader = [...pool].sort((a, b) => down(a) - down(b) || by(load.leaders)(a, b) || by(load.replicas)(a, b))[0];
  if (leader === undefined) return [];
  const rest = pool.filter((n) => n !== leader).sort((a, b) => down(a) - down(b) || by(load.replicas)(a, b)).slice(0, size - 1);
  return [leader, ...rest];
}

/** Fills `replicas` of a declare that may create a replicated queue; other commands pass unchanged. */
export function placeDeclare(command: MetadataCommand, state: MetadataState, nodes: readonly NodeId[], defaultReplicas: number, live?: (n: NodeId) => boolean): MetadataCommand {
  if (command.kind !== 'declareQueue') return command;
  const c: DeclareQueue = command;
  if (c.passive || !c.durable || c.exclusive || c.autoDelete || (c.replicas !== undefined && c.replicas.length > 0)) return c;
  if (state.vhosts.get(c.vhost)?.queues.has(c.name) === true) return c;
  const count = requestedReplicaCount(c.arguments) ?? defaultReplicas;
  return { ...c, replicas: chooseReplicas(nodes.length > 0 ? nodes : [c.connection.nodeId], count, placementLoad(state), live) };
}

/**
 * The metadata client the broker uses, with placement on declares: a proxy, so whatever else the
 * cluster's client offers (sync, nodes, onApplied) passes through untouched.
 */
export function withPlacement<M extends MetadataClient>(inner: M, nodes: () => readonly NodeId[], defaultReplicas: number, live?: (n: NodeId) => boolean): M {
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'apply') {
        return (command: MetadataCommand) => target.apply(placeDeclare(command, target.state, nodes(), defaultReplicas, live));
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
