// One segment file of the write-ahead log as the WAL tracks it: its descriptor, how many bytes
// are assigned, written and durable, and how many of them some group still needs.

export interface Segment {
  readonly id: number;
  readonly path: string;
  /** Read/write descriptor, kept open while the segment exists. */
  readonly fd: number;
  /** Bytes assigned to records (including the batch being built). */
  size: number;
  /** Bytes written to the file (readable with readSync; durable once the batch's fsync ends). */
  written: number;
  /** Header + payload bytes of records that some group still needs. */
  liveBytes: number;
  /** Holds Truncate or Reset records: deleting it could revive superseded entries in older
   * segments, so it is deleted only once every older segment is gone. */
  supersedes: boolean;
  /** Created since the last directory fsync. */
  fresh: boolean;
}
