// Drives the queue state machine the way a log would: increasing indexes, a leader clock that
// the test moves by hand. Helpers pick effects out by type.
import { apply, createQueueState, defaultQueueConfig, type Command, type Effect, type Owner, type QueueConfig, type QueueState } from '../../src/queue/index.js';

export class Harness {
  readonly state: QueueState;
  index = 0;
  timeMs = 1_000;
  readonly log: Array<{ command: Command; index: number; timeMs: number }> = [];

  constructor(config: Partial<QueueConfig> = {}) {
    this.state = createQueueState({ ...defaultQueueConfig, ...config }, this.timeMs);
  }

  run(command: Command): Effect[] {
    this.index++;
    this.log.push({ command, index: this.index, timeMs: this.timeMs });
    return apply(this.state, command, { index: this.index, timeMs: this.timeMs });
  }

  /** Enqueues and returns the new message id. */
  publish(opts: { size?: number; priority?: number; ttlMs?: number | null } = {}): number {
    this.run({ type: 'enqueue', sizeBytes: opts.size ?? 10, priority: opts.priority ?? 0, ttlMs: opts.ttlMs ?? null });
    return this.index;
  }

  /** Registers a consumer and returns its key. */
  consume(channel: string, opts: Partial<{ prefetch: number; priority: number; noAck: boolean; granted: boolean; node: string; connection: string }> = {}): { key: number; effects: Effect[] } {
    const effects = this.run({
      type: 'register',
      owner: owner(channel, opts.connection, opts.node),
      tag: `ctag-${channel}-${this.index + 1}`,
      creditMode: opts.granted === true ? 'granted' : 'auto',
      prefetch: opts.prefetch ?? 0,
      priority: opts.priority ?? 0,
      noAck: opts.noAck ?? false,
    });
    return { key: this.index, effects };
  }
}

export function owner(channel: string, connection?: string, node?: string): Owner {
  return { channel, connection: connection ?? `conn-of-${channel}`, node: node ?? 'n1' };
}

export function deliveries(effects: Effect[]): Array<{ consumerKey: number; msgId: number; redelivered: boolean; deliveryCount: number }> {
  return effects.flatMap((e) => (e.type === 'deliver' ? [{ consumerKey: e.consumerKey, msgId: e.msgId, redelivered: e.redelivered, deliveryCount: e.deliveryCount }] : []));
}

export function ofType<T extends Effect['type']>(effects: Effect[], type: T): Array<Extract<Effect, { type: T }>> {
  return effects.filter((e): e is Extract<Effect, { type: T }> => e.type === type);
}
