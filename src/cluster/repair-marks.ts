// Which groups of this node are being rebuilt from their peers after their log was found damaged,
// kept in <raft dir>/repairs.json so that a restart in the middle of a rebuild never hosts the
// emptied log as a full voter (it would vote with a log that lacks entries it once acknowledged).

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { GroupId } from '../lib/ids.js';
import { groupId } from '../lib/ids.js';

export interface RepairMark {
  /** Wall-clock start of the rebuild (ms since the epoch), for the log line at its end. */
  readonly sinceMs: number;
  /** Index of the leader's AddLearner for this node once it answered; null before. */
  readonly rebuiltAfter: number | null;
}

export class RepairMarks {
  private readonly marks = new Map<GroupId, RepairMark>();
  private readonly file: string;

  constructor(dir: string) {
    this.file = join(dir, 'repairs.json');
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    const parsed = JSON.parse(text) as Record<string, RepairMark>;
    for (const [id, m] of Object.entries(parsed)) this.marks.set(groupId(id), { sinceMs: m.sinceMs, rebuiltAfter: m.rebuiltAfter });
  }

  get(id: GroupId): RepairMark | undefined {
    return this.marks.get(id);
  }

  ids(): GroupId[] {
    return [...this.marks.keys()];
  }

  set(id: GroupId, mark: RepairMark): void {
    this.marks.set(id, mark);
    this.save();
  }

  delete(id: GroupId): void {
    if (this.marks.delete(id)) this.save();
  }

  /** Durable before it returns: written aside, synced, renamed over the old file. */
  private save(): void {
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(Object.fromEntries(this.marks)));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
  }
}
