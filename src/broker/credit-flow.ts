// Credit flow of one connection (RabbitMQ's connection state 'flow'): the work a connection has
// started and the node has not finished yet (enqueues awaiting their Raft commit, or a forwarded
// call awaiting the queue's leader). Above a bound the connection stops being read, below half of
// it it is read again: a publisher runs as fast as the node keeps up, never faster. How many
// messages a queue holds never holds a publisher back (a queue is a buffer; max-length and overflow
// bound it); only the node's own pace and the resource alarms do.

import { assert } from '../lib/assert.js';
import { limits } from './limits.js';

export class CreditFlow {
  private messages = 0;
  private bytes = 0;
  private held = false;
  /** Times the connection was held (for tests and metrics). */
  holds = 0;

  constructor(
    private readonly messagesMax: number = limits.inFlightMessagesMax,
    private readonly bytesMax: number = limits.inFlightBytesMax,
  ) {
    assert(messagesMax >= 1 && bytesMax >= 1, 'credit bounds must be positive');
  }

  /** Messages started and not finished. */
  get inFlight(): number {
    return this.messages;
  }

  get inFlightBytes(): number {
    return this.bytes;
  }

  /** True while the connection should not be read. */
  get holding(): boolean {
    return this.held;
  }

  /** One enqueue of `bytes` started; true when this start put the connection on hold. */
  started(bytes: number): boolean {
    this.messages++;
    this.bytes += bytes;
    if (this.held || (this.messages < this.messagesMax && this.bytes < this.bytesMax)) return false;
    this.held = true;
    this.holds++;
    return true;
  }

  /** One enqueue finished (committed, refused or failed); true when the hold ends here. */
  finished(bytes: number): boolean {
    assert(this.messages > 0 && this.bytes >= bytes, 'finished more work than started');
    this.messages--;
    this.bytes -= bytes;
    if (!this.held || this.messages > this.messagesMax / 2 || this.bytes > this.bytesMax / 2) return false;
    this.held = false;
    return true;
  }
}
