// Adding and removing bindings with every index kept in step (vhost map, source router and
// outgoing set, destination incoming set), and the cascades RabbitMQ applies: deleting a queue or
// exchange removes its bindings, and an auto-delete exchange goes when its last source binding goes.

import { assert } from '../lib/assert.js';
import type { ExchangeState, QueueState, VhostState } from './state.js';
import { bindingKey, dropQueue } from './state.js';
import type { BindingRecord, ExchangeRecord, QueueRecord } from './types.js';

function destinationOf(vhost: VhostState, b: BindingRecord): ExchangeState | QueueState | undefined {
  return b.destinationKind === 'queue' ? vhost.queues.get(b.destination)
    : vhost.exchanges.get(b.destination);
}

/** Adds the binding; false when an identical one exists (binding twice is a no-op). */
export function addBinding(vhost: VhostState, b: BindingRecord): boolean {
  const key = bindingKey(b);
  if (vhost.bindings.has(key)) return false;
  const source = vhost.exchanges.get(b.source);
  const destination = destinationOf(vhost, b);
  assert(source !== undefined && destination !== undefined, 'binding ends must exist');
  vhost.bindings.set(key, b);
  source.router.add(b);
  source.outgoing.add(b);
  destination.incoming.add(b);
  return true;
}

/** The stored binding equal to `b`, if any. */
export function findBinding(vhost: VhostState, b: Omit<BindingRecord, 'vhost'>): BindingRecord | undefined {
  return vhost.bindings.get(bindingKey(b));
}

/** Removes a stored binding; an auto-delete source left without bindings goes too. */
export function removeBinding(vhost: VhostState, b: BindingRecord, deleted: ExchangeRecord[]): void {
  detach(vhost, b);
  maybeAutoDelete(vhost, b.source, deleted);
}

// `going` is an exchange being removed (already out of the vhost map) that may be either end.
function detach(vhost: VhostState, b: BindingRecord, going: ExchangeState | null = null): void {
  assert(vhost.bindings.delete(bindingKey(b)), 'removing an unknown binding');
  const source = going !== null && going.record.name === b.source ? going
    : vhost.exchanges.get(b.source);
  assert(source !== undefined, 'binding source must exist');
  source.router.remove(b);
  source.outgoing.delete(b);
  const destination = going !== null && b.destinationKind === 'exchange'
    && going.record.name === b.destination ? going : destinationOf(vhost, b);
  destination?.incoming.delete(b);
}

function maybeAutoDelete(vhost: VhostState, name: string, deleted: ExchangeRecord[]): void {
  const x = vhost.exchanges.get(name);
  if (x !== undefined && x.record.autoDelete && x.outgoing.size === 0) {
    removeExchange(vhost, x, deleted);
  }
}

/** Deletes an exchange and every binding it is part of (cascading auto-deletes). */
export function removeExchange(vhost: VhostState, x: ExchangeState, deleted: ExchangeRecord[]): void {
  assert(vhost.exchanges.get(x.record.name) === x, 'removing an exchange not in the vhost');
  vhost.exchanges.delete(x.record.name);
  deleted.push(x.record);
  for (const b of [...x.outgoing]) detach(vhost, b, x);
  const sources: string[] = [];
  for (const b of [...x.incoming]) {
    detach(vhost, b, x);
    sources.push(b.source);
  }
  for (const s of sources) maybeAutoDelete(vhost, s, deleted);
  assert(x.outgoing.size === 0 && x.incoming.size === 0, 'exchange bindings left behind');
}

/** Deletes a queue and its bindings (cascading auto-deletes); returns the queue's record. */
export function removeQueue(vhost: VhostState, q: QueueState, deleted: ExchangeRecord[]): QueueRecord {
  dropQueue(vhost, q);
  const sources: string[] = [];
  for (const b of [...q.incoming]) {
    detach(vhost, b);
    sources.push(b.source);
  }
  for (const s of sources) maybeAutoDelete(vhost, s, deleted);
  return q.record;
}
