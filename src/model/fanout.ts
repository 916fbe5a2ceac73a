// The fanout exchange: every binding matches, whatever the routing key.

import { assert } from '../lib/assert.js';
import type { ExchangeRouter, RouteSink } from './router.js';
import { removeByIdentity } from './router.js';
import type { BindingRecord } from './types.js';

export class FanoutRouter implements ExchangeRouter {
  private readonly bindings: BindingRecord[] = [];

  get size(): number {
    return this.bindings.length;
  }

  add(binding: BindingRecord): void {
    this.bindings.push(binding);
  }

  remove(binding: BindingRecord): void {
    assert(removeByIdentity(this.bindings, binding), 'fanout: removing unknown binding');
  }

  route(_routingKey: string, _headers: unknown, sink: RouteSink): void {
    const list = this.bindings;
    for (let i = 0; i < list.length; i++) sink.hit(list[i] as BindingRecord);
  }
}
