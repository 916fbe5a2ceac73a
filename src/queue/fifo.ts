// A growable ring buffer: O(1) push at the tail and shift at the head, no per-item allocation,
// iteration from head to tail. The queue keeps its message references and service rings in these.

import { assert } from '../lib/assert.js';

const capacityInitial = 16;

export class Fifo<T> {
  private items: Array<T | undefined>;
  private head = 0;
  private count = 0;

  constructor(capacity = capacityInitial) {
    assert(capacity > 0 && (capacity & (capacity - 1)) === 0, 'fifo capacity must be a power of two');
    this.items = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = item;
    this.count++;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined; // let the GC have it
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
    if (this.count === 0) this.head = 0;
    return item;
  }

  /** Items from head to tail (a copy; callers may mutate the fifo afterwards). */
  toArray(): T[] {
    const out: T[] = [];
    const mask = this.items.length - 1;
    for (let i = 0; i < this.count; i++) out.push(this.items[(this.head + i) & mask] as T);
    return out;
  }

  clear(): void {
    this.items = new Array<T | undefined>(capacityInitial);
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    const old = this.items;
    const mask = old.length - 1;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = old[(this.head + i) & mask];
    this.items = next;
    this.head = 0;
  }
}
