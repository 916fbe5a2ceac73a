// Topic routing against a reference matcher over random binding and routing keys (fast-check),
// including empty words, '*' and '#', removal of bindings, and the 406 on more than two '#'.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyMetadata, route } from '../../src/model/index.js';
import { bindQueue, declareExchange, declareQueue, expectError, expectOk, freshState } from './helpers.js';

// RabbitMQ's semantics written the plainest way: recursion over word lists.
function referenceMatch(pattern: readonly string[], words: readonly string[]): boolean {
  if (pattern.length === 0) return words.length === 0;
  const [head, ...rest] = pattern;
  if (head === '#') {
    for (let i = 0; i <= words.length; i++) if (referenceMatch(rest, words.slice(i))) return true;
    return false;
  }
  if (words.length === 0) return false;
  return (head === '*' || head === words[0]) && referenceMatch(rest, words.slice(1));
}

const split = (key: string): string[] => (key === '' ? [] : key.split('.'));

const wordArb = fc.constantFrom('a', 'b', 'c', '');
const keyArb = fc.array(wordArb, { maxLength: 6 }).map((w) => w.join('.'));
const patternArb = fc.array(fc.constantFrom('a', 'b', '', '*', '#', '*'), { maxLength: 6 })
  .filter((w) => w.filter((x) => x === '#').length <= 2)
  .map((w) => w.join('.'));

function topicWith(patterns: readonly string[]) {
  const s = freshState();
  expectOk(declareExchange(s, 't', 'topic'));
  patterns.forEach((p, i) => {
    expectOk(declareQueue(s, `q${i}`));
    expectOk(bindQueue(s, `q${i}`, 't', p));
  });
  return s;
}

const expected = (patterns: readonly string[], key: string, alive: (i: number) => boolean = () => true) =>
  patterns.map((p, i) => (alive(i) && referenceMatch(split(p), split(key)) ? `q${i}` : null))
    .filter((x): x is string => x !== null).sort();

describe('topic exchange', () => {
  it('matches like the reference for random bindings and keys', () => {
    fc.assert(fc.property(fc.array(patternArb, { minLength: 1, maxLength: 12 }),
      fc.array(keyArb, { minLength: 1, maxLength: 10 }), (patterns, keys) => {
        const s = topicWith(patterns);
        for (const key of keys) expect(route(s, '/', 't', key).sort()).toEqual(expected(patterns, key));
      }), { numRuns: 300 });
  });

  it('still matches like the reference after random unbinds', () => {
    fc.assert(fc.property(fc.array(patternArb, { minLength: 1, maxLength: 12 }),
      fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }), fc.array(keyArb, { minLength: 1, maxLength: 8 }),
      (patterns, drop, keys) => {
        const s = topicWith(patterns);
        patterns.forEach((p, i) => {
          if (drop[i] === true) {
            expectOk(applyMetadata(s, { kind: 'unbindQueue', vhost: '/', queue: `q${i}`, exchange: 't',
              routingKey: p, arguments: {}, connection: null }));
          }
        });
        for (const key of keys) {
          expect(route(s, '/', 't', key).sort()).toEqual(expected(patterns, key, (i) => drop[i] !== true));
        }
      }), { numRuns: 200 });
  });

  const cases: Array<[string, string, boolean]> = [
    ['#', '', true], ['#', 'a.b', true], ['*', '', false], ['*', 'a', true], ['*', 'a.b', false],
    ['*.*', '.', true], ['a.*.b', 'a..b', true], ['a.#', 'a', true], ['a.#.b', 'a.b', true],
    ['#.a.#', 'x.a.y.z', true], ['a', 'a.', false], ['', '', true], ['', 'a', false],
    ['a.*', 'a', false], ['#.#', 'a.b.c', true], ['*.#.*', 'a', false], ['*.#.*', 'a.b', true],
  ];
  for (const [pattern, key, match] of cases) {
    it(`binding '${pattern}' ${match ? 'matches' : 'does not match'} '${key}'`, () => {
      expect(route(topicWith([pattern]), '/', 't', key)).toEqual(match ? ['q0'] : []);
    });
  }

  it('reports a queue once even when several of its bindings match', () => {
    const s = topicWith(['#']);
    expectOk(bindQueue(s, 'q0', 't', 'a.*'));
    expectOk(bindQueue(s, 'q0', 't', '#.#'));
    expect(route(s, '/', 't', 'a.b')).toEqual(['q0']);
  });

  it('refuses a binding key with more than two # with 406', () => {
    const s = topicWith([]);
    expectOk(declareQueue(s, 'q'));
    expectOk(bindQueue(s, 'q', 't', '#.a.#'));
    expectError(bindQueue(s, 'q', 't', '#.#.#'), 406,
      "PRECONDITION_FAILED - binding key '#.#.#' has 3 '#' wildcards, at most 2 are allowed");
  });
});
