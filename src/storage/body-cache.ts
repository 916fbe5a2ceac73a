// A bounded FIFO of recent entry bodies, so reads of fresh entries (followers that lag a little,
// deliveries) cost no system call. Bodies not yet written to their segment are pinned.

import type { GroupLog } from './group-log.js';

interface Item {
  group: GroupLog;
  index: number;
  body: Uint8Array;
  segment: number;
  offset: number;
}

export class BodyCache {
  private items: Item[] = [];
  private head = 0;
  bytes = 0;

  constructor(
    private readonly bytesMax: number,
    /** True once the record at (segment, offset) is in the file (readable without the cache). */
    private readonly written: (segment: number, offset: number) => boolean,
  ) {}

  add(group: GroupLog, index: number, body: Uint8Array, segment: number, offset: number): void {
    group.bodies.set(index, body);
    this.items.push({ group, index, body, segment, offset });
    this.bytes += body.length;
    this.evict();
  }

  /** Drops the oldest bodies above the bound; stops at the first one still unwritten. */
  evict(): void {
    while (this.bytes > this.bytesMax && this.head < this.items.length) {
      const item = this.items[this.head]!;
      if (!this.written(item.segment, item.offset)) break;
      if (item.group.bodies.get(item.index) === item.body) item.group.bodies.delete(item.index);
      this.bytes -= item.body.length;
      this.items[this.head] = undefined as never;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  get size(): number {
    return this.items.length - this.head;
  }
}
