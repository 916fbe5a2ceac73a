// The headers exchange: a binding's arguments are the pattern, matched against the message's
// headers table. x-match: all (default) | any | all-with-x | any-with-x. Plain modes ignore
// pattern keys starting with 'x-'; the *-with-x modes ignore only x-match. A void pattern value
// matches any value of a present key; otherwise values compare by value, whatever their types.

import { assert } from '../lib/assert.js';
import { errors, type ModelError } from './errors.js';
import type { ArgTable, ArgValue, FieldTable } from './field-values.js';
import { hasKey, headerValueEquals, readString, typeNameOf, untag } from './field-values.js';
import type { ExchangeRouter, RouteSink } from './router.js';
import type { BindingRecord } from './types.js';

export type HeadersMatchMode = 'all' | 'any' | 'all-with-x' | 'any-with-x';

const modes: readonly string[] = ['all', 'any', 'all-with-x', 'any-with-x'];

/** 406 texts as RabbitMQ's validate_binding words them (Erlang term rendering included). */
export function validateHeadersBinding(args: FieldTable): ModelError | null {
  if (!hasKey(args, 'x-match')) return null;
  const raw = args['x-match'];
  const type = typeNameOf(raw);
  const text = type === 'longstr' || type === 'binary' ? readString(raw) : null;
  if (text !== null) {
    if (modes.includes(text)) return null;
    return errors.bindingInvalid(`Invalid x-match field value <<"${text}">>; `
      + 'expected all, any, all-with-x, or any-with-x');
  }
  return errors.bindingInvalid(
    `Invalid x-match field type ${type} (value ${String(untag(raw))}); expected longstr`);
}

interface HeadersPattern {
  readonly binding: BindingRecord;
  readonly any: boolean;
  readonly keys: readonly string[];
  /** Per key: the expected value, or undefined for a void value (presence only). */
  readonly values: readonly (ArgValue | undefined)[];
}

export function compilePattern(binding: BindingRecord): HeadersPattern {
  const args: ArgTable = binding.arguments;
  const xMatch = args['x-match'];
  // Unvalidated legacy values mean 'all', as in RabbitMQ.
  const mode: HeadersMatchMode = typeof xMatch === 'string' && modes.includes(xMatch)
    ? xMatch as HeadersMatchMode : 'all';
  const withX = mode === 'all-with-x' || mode === 'any-with-x';
  const keys: string[] = [];
  const values: (ArgValue | undefined)[] = [];
  for (const key of Object.keys(args).sort()) {
    if (key === 'x-match') continue;
    if (!withX && key.startsWith('x-')) continue;
    const v = args[key] as ArgValue;
    keys.push(key);
    values.push(v === null ? undefined : v);
  }
  return { binding, any: mode === 'any' || mode === 'any-with-x', keys, values };
}

export function headersMatch(pattern: HeadersPattern, headers: FieldTable | null): boolean {
  const { keys, values } = pattern;
  if (keys.length === 0) return !pattern.any;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    // One property read; own-ness is checked only for a hit (a plain object inherits names
    // such as 'constructor').
    const raw = headers === null ? undefined : headers[key];
    const present = raw !== undefined && Object.prototype.hasOwnProperty.call(headers, key);
    const expected = values[i];
    const matched = present && (expected === undefined || headerValueEquals(expected, raw));
    if (pattern.any && matched) return true;
    if (!pattern.any && !matched) return false;
  }
  return !pattern.any;
}

export class HeadersRouter implements ExchangeRouter {
  private readonly patterns: HeadersPattern[] = [];

  get size(): number {
    return this.patterns.length;
  }

  add(binding: BindingRecord): void {
    this.patterns.push(compilePattern(binding));
  }

  remove(binding: BindingRecord): void {
    const i = this.patterns.findIndex((p) => p.binding === binding);
    assert(i >= 0, 'headers: removing unknown binding');
    this.patterns.splice(i, 1);
  }

  route(_routingKey: string, headers: FieldTable | null, sink: RouteSink): void {
    const list = this.patterns;
    for (let i = 0; i < list.length; i++) {
      const p = list[i] as HeadersPattern;
      if (headersMatch(p, headers)) sink.hit(p.binding);
    }
  }
}
