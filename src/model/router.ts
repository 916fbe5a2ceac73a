// What every exchange type implements: an index of the bindings whose source is one exchange,
// kept up to date on bind/unbind, and a match over it on the publish path.

import type { FieldTable } from './field-values.js';
import type { BindingRecord } from './types.js';

/** Receives matching bindings while routing; a destination may be reported more than once. */
export interface RouteSink {
  hit(binding: BindingRecord): void;
  /** A queue of the vhost named by a custom exchange type (skipped when it does not exist). */
  queue(name: string): void;
}

/** What the publish path knows of a message beyond its routing key and headers (custom types read it). */
export interface RoutedMessage {
  readonly properties: Readonly<Record<string, unknown>>;
  readonly body: Uint8Array;
}

export interface ExchangeRouter {
  /** Number of bindings indexed. */
  readonly size: number;
  add(binding: BindingRecord): void;
  /** Removes exactly this binding object (bindings are unique objects in the model). */
  remove(binding: BindingRecord): void;
  route(routingKey: string, headers: FieldTable | null, sink: RouteSink, message?: RoutedMessage | null): void;
}

/** Removes one element by identity, keeping order (iteration order stays deterministic). */
export function removeByIdentity<T>(list: T[], item: T): boolean {
  const i = list.indexOf(item);
  if (i < 0) return false;
  list.splice(i, 1);
  return true;
}
