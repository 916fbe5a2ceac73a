// Exchange types added at start (plugins): a registry by type name, and the router that keeps a
// custom exchange's bindings and asks the type where each message goes. The registry is per
// process, filled before the node's metadata is created; every node of a cluster must register
// the same types (checked at join) because declares and binds are validated while applying the
// replicated metadata log, on every node alike.

import { errors, type ModelError } from './errors.js';
import type { FieldTable } from './field-values.js';
import type { ExchangeRouter, RouteSink, RoutedMessage } from './router.js';
import { removeByIdentity } from './router.js';
import type { BindingRecord, ExchangeRecord } from './types.js';

/** The built-in types, which a custom type may not replace. */
export const builtinExchangeTypes: readonly string[] = ['direct', 'fanout', 'topic', 'headers'];

/** A custom exchange type as the model uses it (the broker adapts a plugin's API to this). */
export interface CustomExchangeType {
  /** Who provides it (named in errors). */
  readonly provider: string;
  /**
   * Where a message goes: bindings of `bindings` (a queue or exchange destination each) or names
   * of queues of the vhost (need not be bound; a missing one is skipped). Deterministic.
   * `bindings` is the same array until the exchange's bindings change.
   */
  route(exchange: ExchangeRecord, routingKey: string, headers: FieldTable | null, message: RoutedMessage | null,
    bindings: readonly BindingRecord[]): ReadonlyArray<BindingRecord | string>;
  /** A 406 text when the exchange's declared arguments are not acceptable; null when they are. */
  validateDeclare?(exchange: ExchangeRecord): string | null;
  /** A 406 text when a binding to an exchange of this type is not acceptable; null when it is. */
  validateBinding?(binding: BindingRecord, exchange: ExchangeRecord): string | null;
}

/** A custom type's route threw (or its type is not loaded here): the publish fails, the node serves on. */
export class RouteFailure extends Error {
  constructor(readonly exchange: string, readonly provider: string, message: string) {
    super(message);
  }
}

const registry = new Map<string, CustomExchangeType>();

/** Adds a type; refused for a built-in name or one another provider registered. */
export function registerExchangeType(name: string, type: CustomExchangeType): void {
  if (builtinExchangeTypes.includes(name)) throw new Error(`exchange type '${name}' is built in`);
  const had = registry.get(name);
  if (had !== undefined && had !== type) throw new Error(`exchange type '${name}' is already provided by '${had.provider}'`);
  registry.set(name, type);
}

export function unregisterExchangeType(name: string, type: CustomExchangeType): void {
  if (registry.get(name) === type) registry.delete(name);
}

export function isKnownExchangeType(name: string): boolean {
  return builtinExchangeTypes.includes(name) || registry.has(name);
}

export function customExchangeType(name: string): CustomExchangeType | undefined {
  return registry.get(name);
}

/** The 406 for a declare the exchange's type refuses (null: accepted or a built-in type). */
export function validateCustomDeclare(record: ExchangeRecord): ModelError | null {
  const type = registry.get(record.type);
  if (type?.validateDeclare === undefined) return null;
  return refusal(type, `exchange '${record.name}'`, () => type.validateDeclare!(record));
}

/** The 406 for a binding the source exchange's type refuses (null: accepted or a built-in type). */
export function validateCustomBinding(binding: BindingRecord, exchange: ExchangeRecord): ModelError | null {
  const type = registry.get(exchange.type);
  if (type?.validateBinding === undefined) return null;
  return refusal(type, `binding to exchange '${exchange.name}'`, () => type.validateBinding!(binding, exchange));
}

function refusal(type: CustomExchangeType, what: string, check: () => string | null): ModelError | null {
  let text: string | null;
  try {
    text = check();
  } catch (e) {
    text = `plugin '${type.provider}' failed to validate the ${what}: ${e instanceof Error ? e.message : String(e)}`;
  }
  return text === null || text === undefined ? null : errors.bindingInvalid(text);
}

/** The bindings of one exchange of a custom type, handed to the type on each publish. */
export class CustomRouter implements ExchangeRouter {
  private list: BindingRecord[] = [];
  private frozen: readonly BindingRecord[] | null = null;

  constructor(private readonly exchange: ExchangeRecord) {}

  get size(): number {
    return this.list.length;
  }

  add(binding: BindingRecord): void {
    this.list.push(binding);
    this.frozen = null;
  }

  remove(binding: BindingRecord): void {
    removeByIdentity(this.list, binding);
    this.frozen = null;
  }

  route(routingKey: string, headers: FieldTable | null, sink: RouteSink, message: RoutedMessage | null = null): void {
    const x = this.exchange;
    const type = registry.get(x.type);
    if (type === undefined) throw new RouteFailure(x.name, x.type, `exchange type '${x.type}' of exchange '${x.name}' is not loaded on this node`);
    this.frozen ??= Object.freeze([...this.list]);
    let out: ReadonlyArray<BindingRecord | string>;
    try {
      out = type.route(x, routingKey, headers, message, this.frozen);
    } catch (e) {
      if (e instanceof RouteFailure) throw e;
      throw new RouteFailure(x.name, type.provider, `plugin '${type.provider}' failed to route a message of exchange '${x.name}': ${e instanceof Error ? e.message : String(e)}`);
    }
    for (const d of out) {
      if (typeof d === 'string') sink.queue(d);
      else if (this.list.includes(d)) sink.hit(d);
    }
  }
}
