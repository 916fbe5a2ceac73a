// The trusted metadata operations a plugin exchange type may use on the vhost of its exchange
// (x-delayed-message keeps its held messages in queues of its own): commands go through the
// node's metadata client like a client's, without permission checks.

import { lookupQueue } from '../model/index.js';
import { nodeId as toNodeId } from '../lib/ids.js';
import type { NodeContext } from './node-context.js';
import type { VhostAdmin } from './plugin-api.js';

export function vhostAdmin(ctx: NodeContext, vhost: string): VhostAdmin {
  return {
    hasQueue: (name) => lookupQueue(ctx.metadata.state, vhost, name) !== undefined,
    declareQueue: async (name, o) => {
      if (lookupQueue(ctx.metadata.state, vhost, name) !== undefined) return;
      const r = await ctx.metadata.apply({
        kind: 'declareQueue', vhost, name, passive: false, durable: o.durable, exclusive: false, autoDelete: false,
        arguments: o.arguments, connection: { connectionId: 'plugin', nodeId: toNodeId(ctx.nodeId) },
      });
      if (!r.ok) throw new Error(r.replyText);
      const record = r.queue ?? lookupQueue(ctx.metadata.state, vhost, name);
      if (record !== undefined) ctx.queues.ensure(record);
    },
    deleteQueue: async (name) => {
      if (lookupQueue(ctx.metadata.state, vhost, name) === undefined) return;
      const r = await ctx.metadata.apply({
        kind: 'deleteQueue', vhost, name, ifUnused: false, ifEmpty: false, consumerCount: 0, messageCount: 0,
        connection: { connectionId: 'plugin', nodeId: toNodeId(ctx.nodeId) },
      });
      if (!r.ok) throw new Error(r.replyText);
      ctx.queues.dropDeleted(r.deletedQueues);
    },
  };
}
