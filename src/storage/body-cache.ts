// A bounded FIFO of recent entry bodies, so reads of fresh entries (followers that lag a little,
// deliveries) cost no system call. Bodies not yet written to their segment are pinned, so the
// cache can exceed its bound by what is buffered and in flight.

import type { GroupLog } from './group-log.js';

export class BodyCache {
  // Parallel arrays instead of one object per item: this runs once per appended entry.
  private groups: Array<GroupLog | undefined> = [];
  private indexes: number[] = [];
  private bodies: Array<Uint8Array | undefined> = [];
  private segments: number[] = [];
  private offsets: number[] = [];
  private head = 0;
  bytes = 0;

  constructor(
    private readonly bytesMax: number,
    /** True once the record at (segment, offset) is in the file (readable without the cache). */
    private readonly written: (segment: number, offset: number) => boolean,
  ) {}

  add(group: GroupLog, index: number, body: Uint8Array, segment: number, offset: number): void {
    group.setBody(index, body);
    this.groups.push(group);
    this.indexes.push(index);
    this.bodies.push(body);
    this.segments.push(segment);
    this.offsets.push(offset);
    this.bytes += body.length;
    if (this.bytes > this.bytesMax) this.evict();
  }

  /** Drops the oldest bodies above the bound; stops at the first one still unwritten. */
  evict(): void {
    const n = this.groups.length;
    while (this.bytes > this.bytesMax && this.head < n) {
      const h = this.head;
      if (!this.written(this.segments[h]!, this.offsets[h]!)) break;
      const group = this.groups[h]!;
      const body = this.bodies[h]!;
      group.dropBody(this.indexes[h]!, this.segments[h]!, this.offsets[h]!);
      this.bytes -= body.length;
      this.groups[h] = undefined;
      this.bodies[h] = undefined;
      this.head++;
    }
    if (this.head > 4096 && this.head * 2 > n) {
      this.groups = this.groups.slice(this.head);
      this.indexes = this.indexes.slice(this.head);
      this.bodies = this.bodies.slice(this.head);
      this.segments = this.segments.slice(this.head);
      this.offsets = this.offsets.slice(this.head);
      this.head = 0;
    }
  }

  get size(): number {
    return this.groups.length - this.head;
  }
}
