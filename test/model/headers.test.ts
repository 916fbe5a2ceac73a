// Headers exchange matching tables: x-match all / any / all-with-x / any-with-x, void values,
// values compared across types, and the 406s for a bad x-match.

import { describe, expect, it } from 'vitest';
import { route, type FieldTable } from '../../src/model/index.js';
import { bindQueue, declareExchange, declareQueue, expectError, expectOk, freshState } from './helpers.js';

function headersRoute(binding: FieldTable, headers: FieldTable | null): boolean {
  const s = freshState();
  expectOk(declareExchange(s, 'h', 'headers'));
  expectOk(declareQueue(s, 'q'));
  expectOk(bindQueue(s, 'q', 'h', 'ignored', binding));
  return route(s, '/', 'h', 'any-key', headers).length === 1;
}

const table: Array<[string, FieldTable, FieldTable | null, boolean]> = [
  ['all (default) needs every key', { a: 1, b: 'x' }, { a: 1, b: 'x', c: true }, true],
  ['all fails on one different value', { a: 1, b: 'x' }, { a: 1, b: 'y' }, false],
  ['all fails on one missing key', { 'x-match': 'all', a: 1, b: 'x' }, { a: 1 }, false],
  ['all with no keys matches anything', { 'x-match': 'all' }, null, true],
  ['any with no keys matches nothing', { 'x-match': 'any' }, { a: 1 }, false],
  ['any needs one key', { 'x-match': 'any', a: 1, b: 2 }, { b: 2 }, true],
  ['any fails when none matches', { 'x-match': 'any', a: 1, b: 2 }, { a: 2, c: 1 }, false],
  ['any fails without headers', { 'x-match': 'any', a: 1 }, null, false],
  ['plain modes ignore x- keys in the binding', { 'x-match': 'all', 'x-trace': 'yes', a: 1 }, { a: 1 }, true],
  ['all-with-x compares x- keys', { 'x-match': 'all-with-x', 'x-trace': 'yes', a: 1 }, { a: 1 }, false],
  ['all-with-x matches when x- keys agree', { 'x-match': 'all-with-x', 'x-trace': 'yes' }, { 'x-trace': 'yes' }, true],
  ['any-with-x matches on an x- key', { 'x-match': 'any-with-x', 'x-id': 7, a: 1 }, { 'x-id': 7 }, true],
  ['any ignores x- keys', { 'x-match': 'any', 'x-id': 7 }, { 'x-id': 7 }, false],
  ['void binding value means the key is present', { k: null }, { k: 'anything' }, true],
  ['void binding value fails when the key is absent', { k: null }, { other: 1 }, false],
  ['integers compare by value across types', { n: 5 }, { n: 5n }, true],
  ['tagged header values compare by value', { n: 5 }, { n: { tag: 'l', value: 5n } }, true],
  ['byte strings equal text strings', { s: 'café' }, { s: Buffer.from('café') }, true],
  ['ascii byte strings equal text strings', { s: 'abc' }, { s: Buffer.from('abc') }, true],
  ['byte strings of another text differ', { s: 'abc' }, { s: Buffer.from('abd') }, false],
  ['booleans compare', { b: true }, { b: false }, false],
  ['a number never equals a string', { n: 5 }, { n: '5' }, false],
  ['inherited names are not headers', { constructor: null }, {}, false],
];

describe('headers exchange', () => {
  for (const [name, binding, headers, match] of table) {
    it(name, () => expect(headersRoute(binding, headers)).toBe(match));
  }

  it('routes each matching queue once among several bindings', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q1'));
    expectOk(declareQueue(s, 'q2'));
    expectOk(bindQueue(s, 'q1', 'amq.match', '', { a: 1 }));
    expectOk(bindQueue(s, 'q1', 'amq.match', '', { 'x-match': 'any', a: 1, b: 2 }));
    expectOk(bindQueue(s, 'q2', 'amq.headers', '', { b: 2 }));
    expect(route(s, '/', 'amq.match', '', { a: 1, b: 2 })).toEqual(['q1']);
    expect(route(s, '/', 'amq.headers', '', { a: 1, b: 2 })).toEqual(['q2']);
  });

  it('refuses an unknown x-match value with 406', () => {
    const s = freshState();
    expectOk(declareQueue(s, 'q'));
    expectError(bindQueue(s, 'q', 'amq.headers', '', { 'x-match': 'some' }), 406,
      'PRECONDITION_FAILED - Invalid x-match field value <<"some">>; expected all, any, all-with-x, or any-with-x');
    expectError(bindQueue(s, 'q', 'amq.headers', '', { 'x-match': 1 }), 406,
      'PRECONDITION_FAILED - Invalid x-match field type byte (value 1); expected longstr');
  });
});
