// The topic exchange: binding keys are dot-separated words where '*' matches exactly one word
// and '#' zero or more. Keys split on '.', keeping empty words ("" is zero words, "a..b" three).
// Bindings live in a trie of words with separate '*' and '#' edges, so a publish walks only the
// branches its words can take.

import { assert } from '../lib/assert.js';
import { errors, type ModelError } from './errors.js';
import { limits } from './limits.js';
import type { ExchangeRouter, RouteSink } from './router.js';
import { removeByIdentity } from './router.js';
import type { BindingRecord } from './types.js';

/** RabbitMQ's split: "" is no words at all; otherwise every '.' separates (empty words kept). */
export function topicWords(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

/** 406 for binding keys RabbitMQ 4.x refuses (more than two '#'). */
export function validateTopicBindingKey(key: string): ModelError | null {
  const words = topicWords(key);
  let hashes = 0;
  for (const w of words) if (w === '#') hashes++;
  if (hashes > limits.topicHashesMax) {
    return errors.bindingInvalid(
      `binding key '${key}' has ${hashes} '#' wildcards, at most ${limits.topicHashesMax} are allowed`);
  }
  if (words.length > limits.topicWordsMax) {
    return errors.bindingInvalid(`binding key '${key}' has more than ${limits.topicWordsMax} words`);
  }
  return null;
}

class TopicNode {
  words: Map<string, TopicNode> | null = null;
  star: TopicNode | null = null;
  hash: TopicNode | null = null;
  bindings: BindingRecord[] | null = null;

  isEmpty(): boolean {
    return this.bindings === null && this.star === null && this.hash === null
      && (this.words === null || this.words.size === 0);
  }
}

export class TopicRouter implements ExchangeRouter {
  private readonly root = new TopicNode();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(binding: BindingRecord): void {
    let node = this.root;
    for (const w of topicWords(binding.routingKey)) node = child(node, w, true) as TopicNode;
    if (node.bindings === null) node.bindings = [binding];
    else node.bindings.push(binding);
    this.count++;
  }

  remove(binding: BindingRecord): void {
    const words = topicWords(binding.routingKey);
    const path: TopicNode[] = [this.root];
    let node = this.root;
    for (const w of words) {
      const next = child(node, w, false);
      assert(next !== null, 'topic: removing a binding whose path is missing');
      node = next;
      path.push(node);
    }
    assert(node.bindings !== null && removeByIdentity(node.bindings, binding),
      'topic: removing unknown binding');
    if (node.bindings.length === 0) node.bindings = null;
    this.count--;
    // Prune the nodes the removal emptied, deepest first.
    for (let i = words.length; i > 0; i--) {
      const n = path[i] as TopicNode;
      if (!n.isEmpty()) break;
      detach(path[i - 1] as TopicNode, words[i - 1] as string);
    }
  }

  route(routingKey: string, _headers: unknown, sink: RouteSink): void {
    if (this.count === 0) return;
    matchFrom(this.root, topicWords(routingKey), 0, sink);
  }
}

function child(node: TopicNode, word: string, create: boolean): TopicNode | null {
  if (word === '*') {
    if (node.star === null && create) node.star = new TopicNode();
    return node.star;
  }
  if (word === '#') {
    if (node.hash === null && create) node.hash = new TopicNode();
    return node.hash;
  }
  let next = node.words?.get(word) ?? null;
  if (next === null && create) {
    next = new TopicNode();
    (node.words ??= new Map()).set(word, next);
  }
  return next;
}

function detach(parent: TopicNode, word: string): void {
  if (word === '*') parent.star = null;
  else if (word === '#') parent.hash = null;
  else parent.words?.delete(word);
}

// Depth-first walk. '#' tries every split point; with at most two '#' per key this stays
// polynomial. A binding may be reported more than once; the sink deduplicates destinations.
function matchFrom(node: TopicNode, words: readonly string[], i: number, sink: RouteSink): void {
  if (node.hash !== null) {
    for (let j = i; j <= words.length; j++) matchFrom(node.hash, words, j, sink);
  }
  if (i === words.length) {
    const list = node.bindings;
    if (list !== null) for (let k = 0; k < list.length; k++) sink.hit(list[k] as BindingRecord);
    return;
  }
  const next = node.words?.get(words[i] as string);
  if (next !== undefined) matchFrom(next, words, i + 1, sink);
  if (node.star !== null) matchFrom(node.star, words, i + 1, sink);
}
