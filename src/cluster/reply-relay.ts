// Direct reply-to across nodes: a reply published on one node for a requester channel on another
// travels as one notification on the delivery lane and is handed to that channel by the broker
// there (ReplyTargets): at most once, nothing buffered, dropped there if the channel or its reply
// consumer is gone. A mandatory reply and a check of a reply name (queue.declare) ask instead, so
// the replier learns whether the channel still listens. The broker's counters of replies are
// served to ctl callers as 'ctl.direct-reply-to'.

import type { NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import { Lane } from '../transport/index.js';
import { encodeJson } from './metadata-entries.js';
import { decodeReply, encodeReply, type ReplyItem } from './queue-wire.js';
import type { ClusterRpc } from './rpc.js';

export const replyMethods = {
  /** A reply, fire and forget. */
  reply: 'r.reply',
  /** A reply whose outcome the sender waits for (mandatory): answers 1 delivered, 0 dropped. */
  replyChecked: 'r.reply-checked',
  /** Does the channel still listen with this key: answers 1 or 0. */
  listening: 'r.listening',
  /** The node's reply counters, as JSON. */
  counters: 'ctl.direct-reply-to',
} as const;

type ReplyMessage = NonNullable<ReplyItem['message']>;

/** The requester channels of this node, as the broker keeps them. */
export interface ReplyTargets {
  /** Hands a reply to the channel if its reply consumer still has this key; false: dropped (and counted). */
  deliver(channel: string, key: string, message: ReplyMessage): boolean;
  listening(channel: string, key: string): boolean;
  counters(): Readonly<Record<string, number>>;
}

const yes = Uint8Array.of(1);
const no = Uint8Array.of(0);

export class ReplyRelay {
  constructor(
    private readonly rpc: ClusterRpc,
    targets: ReplyTargets,
    private readonly logger: Logger,
    /** A checked reply or a listening check with no answer by then counts as not delivered. */
    private readonly callTimeoutMs = 5_000,
  ) {
    rpc.onNotify(replyMethods.reply, (from, payload) => {
      const r = this.decoded(from, payload);
      if (r?.message !== undefined) targets.deliver(r.channel, r.key, r.message);
    });
    rpc.handle(replyMethods.replyChecked, (from, payload) => {
      const r = this.decoded(from, payload);
      return r?.message !== undefined && targets.deliver(r.channel, r.key, r.message) ? yes : no;
    });
    rpc.handle(replyMethods.listening, (from, payload) => {
      const r = this.decoded(from, payload);
      return r !== undefined && targets.listening(r.channel, r.key) ? yes : no;
    });
    rpc.handle(replyMethods.counters, () => encodeJson(targets.counters()));
  }

  /** Sends a reply to `node`; false when it could not leave (no stream to the node, or too large). */
  send(node: NodeId, channel: string, key: string, message: ReplyMessage): boolean {
    return this.rpc.notify(node, replyMethods.reply, encodeReply({ channel, key, message }), Lane.delivery);
  }

  /** Sends a reply to `node` and learns whether the channel took it (false on any failure too). */
  sendChecked(node: NodeId, channel: string, key: string, message: ReplyMessage): Promise<boolean> {
    return this.ask(node, replyMethods.replyChecked, encodeReply({ channel, key, message }));
  }

  /** Whether the channel on `node` still listens with this key (false when the node does not answer). */
  listening(node: NodeId, channel: string, key: string): Promise<boolean> {
    return this.ask(node, replyMethods.listening, encodeReply({ channel, key }));
  }

  private ask(node: NodeId, method: string, payload: Uint8Array): Promise<boolean> {
    // The delivery lane, as plain replies: a checked reply stays in order behind the unchecked ones before it.
    return this.rpc.call(node, method, payload, this.callTimeoutMs, Lane.delivery).then((a) => a[0] === 1, () => false);
  }

  /** A payload a peer encoded wrong (a bug on one side) is logged and dropped, never thrown into the transport. */
  private decoded(from: NodeId, payload: Uint8Array): ReplyItem | undefined {
    try {
      return decodeReply(payload);
    } catch (e) {
      this.logger.warn('dropped a malformed direct reply-to payload', { from, error: e instanceof Error ? e.message : String(e) });
      return undefined;
    }
  }
}
