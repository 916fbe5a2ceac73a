// The direct exchange: a binding matches when its key equals the routing key. Indexed by key.

import { assert } from '../lib/assert.js';
import type { ExchangeRouter, RouteSink } from './router.js';
import { removeByIdentity } from './router.js';
import type { BindingRecord } from './types.js';

export class DirectRouter implements ExchangeRouter {
  private readonly byKey = new Map<string, BindingRecord[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(binding: BindingRecord): void {
    const list = this.byKey.get(binding.routingKey);
    if (list === undefined) this.byKey.set(binding.routingKey, [binding]);
    else list.push(binding);
    this.count++;
  }

  remove(binding: BindingRecord): void {
    const list = this.byKey.get(binding.routingKey);
    assert(list !== undefined && removeByIdentity(list, binding), 'direct: removing unknown binding');
    if (list.length === 0) this.byKey.delete(binding.routingKey);
    this.count--;
  }

  route(routingKey: string, _headers: unknown, sink: RouteSink): void {
    const list = this.byKey.get(routingKey);
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) sink.hit(list[i] as BindingRecord);
  }
}
