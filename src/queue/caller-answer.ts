// What a command's effects tell the caller that issued it (enqueue accepted or refused, how many
// purged or deleted, the message a get took): one reading for the local and the replicated queue.

import { assert } from '../lib/assert.js';
import type { Effect, MsgId } from './types.js';

/** Filled in while the caller's command is applied; `M` is the edge's stored message. */
export interface CallerAnswer<M> {
  enqueue: 'ok' | 'rejected';
  get: { msgId: MsgId; message: M; redelivered: boolean; deliveryCount: number; messageCount: number } | null;
  count: number;
}

/**
 * Records `effect` in `answer` when it answers the caller (`answer` undefined: applied for somebody
 * else). A get always finds its message's body, answered or not.
 */
export function answerCaller<M>(effect: Effect, answer: CallerAnswer<M> | undefined, bodyOf: (id: MsgId) => M | undefined): void {
  switch (effect.type) {
    case 'enqueueResult':
      if (answer !== undefined) answer.enqueue = effect.outcome === 'accepted' ? 'ok' : 'rejected';
      return;
    case 'deleted':
    case 'purged':
      if (answer !== undefined) answer.count = effect.count;
      return;
    case 'getResult': {
      const message = bodyOf(effect.msgId);
      assert(message !== undefined, 'a message handed out has its body');
      if (answer !== undefined) {
        answer.get = { msgId: effect.msgId, message, redelivered: effect.redelivered, deliveryCount: effect.deliveryCount, messageCount: effect.remaining };
      }
      return;
    }
    default:
      return;
  }
}
