// A fault-injecting WalIo for tests: the real file calls on real segment files, with ENOSPC,
// EACCES or EIO switched on and off by the test (optionally after half a write reached the file).

import { nodeWalIo, type WalIo } from '../../src/storage/index.js';

/** The real file calls, with failures switched on and off by the test. */
export class FaultyIo implements WalIo {
  /** errno thrown by writes while set; with `partial`, half the bytes reach the file first. */
  writeErrno: string | undefined;
  partial = false;
  syncErrno: string | undefined;
  failedWrites = 0;
  private waiter: (() => void) | undefined;
  /** fdatasync calls held back by holdSyncs(), released together. */
  private heldSyncs: Array<() => void> | undefined;

  /** Holds every fdatasync (a disk that cannot keep up) until the returned function is called. */
  holdSyncs(): () => void {
    this.heldSyncs ??= [];
    return () => {
      const held = this.heldSyncs ?? [];
      this.heldSyncs = undefined;
      for (const release of held) release();
    };
  }

  /** Resolves at the next injected write failure. */
  nextFailure(): Promise<void> {
    return new Promise((resolve) => { this.waiter = resolve; });
  }

  write(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    const errno = this.writeErrno;
    if (errno === undefined) return nodeWalIo.write(fd, buf, offset, length, position);
    this.failedWrites++;
    const half = Math.floor(length / 2);
    const before = this.partial && half > 0 ? nodeWalIo.write(fd, buf, offset, half, position) : Promise.resolve(0);
    return before.then(() => {
      this.waiter?.();
      this.waiter = undefined;
      throw errnoError(errno);
    });
  }

  datasync(fd: number): Promise<void> {
    const held = this.heldSyncs;
    if (held !== undefined) return new Promise<void>((resolve) => held.push(resolve)).then(() => this.datasync(fd));
    return this.syncErrno === undefined ? nodeWalIo.datasync(fd) : Promise.reject(errnoError(this.syncErrno));
  }

  /** Lengths the writer cut the segment back to, in order. */
  readonly truncations: number[] = [];

  truncate(fd: number, length: number): void {
    this.truncations.push(length);
    nodeWalIo.truncate(fd, length);
  }
}

function errnoError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}
