// The few file calls the write-ahead log's writer makes on segment descriptors, behind one
// interface: the node passes the real ones; tests pass a wrapper that injects ENOSPC, EIO or
// EACCES into real files to check what the log does when the disk fails it.

import { fdatasync, ftruncateSync, write } from 'node:fs';

export interface WalIo {
  /** pwrite: bytes [offset, offset + length) of `buf` at `position`; resolves with bytes written. */
  write(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** fdatasync: resolves once the written bytes are on stable storage. */
  datasync(fd: number): Promise<void>;
  /** Cuts the file at `length` (undoing what a failed write may have left behind). */
  truncate(fd: number, length: number): void;
}

export const nodeWalIo: WalIo = {
  write: (fd, buf, offset, length, position) => new Promise((resolve, reject) => {
    write(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  }),
  datasync: (fd) => new Promise((resolve, reject) => {
    fdatasync(fd, (err) => (err ? reject(err) : resolve()));
  }),
  truncate: (fd, length) => ftruncateSync(fd, length),
};
