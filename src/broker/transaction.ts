// tx.select/commit/rollback of one channel: publishes and acks/nacks/rejects are buffered in
// order and only run on commit; rollback drops them (it does not requeue, as RabbitMQ).

import { limits } from './limits.js';

export type TxOperation = () => void;

export class Transaction {
  private ops: TxOperation[] = [];

  get size(): number {
    return this.ops.length;
  }

  /** Buffers one operation; false when the buffer is full (the channel answers 406). */
  add(op: TxOperation): boolean {
    if (this.ops.length >= limits.txBufferedMax) return false;
    this.ops.push(op);
    return true;
  }

  /** Runs every buffered operation in order and starts a new transaction. */
  commit(): void {
    const ops = this.ops;
    this.ops = [];
    for (const op of ops) op();
  }

  rollback(): void {
    this.ops = [];
  }
}
