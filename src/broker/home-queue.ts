// A non-replicated queue (exclusive, auto-delete, transient) on its home node in a cluster: the
// LocalQueue that holds it, served to channels of other nodes through the mesh (QueueMesh runs
// their forwarded calls here). Their owners get the caller's node and incarnation, so a node that
// went away or restarted can be downed and its messages return; deliveries and server-side cancels
// of their consumers go back to their node.

import type { CallResult } from '../cluster/queue-wire.js';
import type { ForwardedCommand, HostedCaller, HostedQueue } from '../cluster/queue-service.js';
import type { RemoteConsumer } from '../cluster/replicated-queue.js';
import type { LocalQueue } from './local-queue.js';
import type { DownScope, Owner, QueueStats } from './queue-backend.js';
import type { MessageTrace } from '../lib/trace.js';

const tagKey = (channel: string, tag: string): string => `${channel}\u0000${tag}`;

interface Remote {
  /** node#incarnation of the consumer's node. */
  readonly holderNode: string;
  readonly channel: string;
  readonly tag: string;
  readonly consumer: RemoteConsumer;
}

export class HomeQueue implements HostedQueue {
  /** Consumers of other nodes, by channel and tag. */
  private readonly remotes = new Map<string, Remote>();
  /** node#incarnation of every other node that registered a consumer or took an unacked get here. */
  private readonly callers = new Set<string>();

  constructor(
    readonly queue: LocalQueue,
    /** A consumer of another node went (cancelled, its channel or node down): an auto-delete queue may go. */
    private readonly consumerLost: () => void,
  ) {
    queue.onEvent((event) => {
      if (event.type !== 'consumerCancelled') return;
      const key = tagKey(event.channel, event.consumerTag);
      const r = this.remotes.get(key);
      if (r === undefined) return;
      this.remotes.delete(key);
      r.consumer.cancelled(event.reason);
    });
  }

  async run(c: ForwardedCommand, caller: HostedCaller, trace?: MessageTrace): Promise<CallResult> {
    const holderNode = `${caller.node}#${caller.incarnation}`;
    switch (c.type) {
      case 'enqueue': return { kind: 'enqueue', outcome: await this.queue.enqueue(c.message, trace, c.dedup) };
      case 'register': {
        const key = tagKey(c.owner.channel, c.tag);
        // A retry of a register that arrived before (its answer was lost): registered already.
        if (this.remotes.has(key)) return { kind: 'void' };
        const consumer = caller.consumer(c.owner.channel, c.tag);
        this.remotes.set(key, { holderNode, channel: c.owner.channel, tag: c.tag, consumer });
        this.callers.add(holderNode);
        await this.queue.consume({
          owner: this.owner(c.owner, caller), consumerTag: c.tag, noAck: c.noAck, creditMode: c.creditMode, prefetch: c.prefetch, priority: c.priority,
        }, consumer.sink);
        return { kind: 'void' };
      }
      case 'cancel': {
        const had = this.remotes.delete(tagKey(c.channel, c.tag));
        await this.queue.cancel(c.channel, c.tag);
        if (had) this.consumerLost();
        return { kind: 'void' };
      }
      case 'credit': await this.queue.credit(c.channel, c.tag, c.credit, c.mode); return { kind: 'void' };
      case 'settle': await this.queue.settle(c.channel, c.msgIds); return { kind: 'void' };
      case 'return': await this.queue.requeue(c.channel, c.msgIds); return { kind: 'void' };
      case 'discard': await this.queue.discard(c.channel, c.msgIds); return { kind: 'void' };
      case 'down': return this.down(c.scope, c.id, caller);
      case 'get':
        if (!c.noAck) this.callers.add(holderNode);
        return { kind: 'get', response: await this.queue.get(this.owner(c.owner, caller), c.noAck) };
      case 'purge': return { kind: 'count', count: await this.queue.purge() };
      // Deleting is metadata's: the registry deletes the queue once the delete is applied here.
      case 'delete': return { kind: 'count', count: this.queue.stats().messagesReady };
      case 'touch': this.queue.touch(); return { kind: 'void' };
    }
  }

  stats(): QueueStats {
    return this.queue.stats();
  }

  holderNodes(): Set<string> {
    const out = new Set<string>();
    for (const c of this.callers) out.add(c.slice(0, c.lastIndexOf('#')));
    return out;
  }

  async downStale(node: string, keep: string | null): Promise<Array<{ holderNode: string; channel: string; tag: string }>> {
    const prefix = `${node}#`;
    const stale = [...this.callers].filter((c) => c.startsWith(prefix) && c !== `${prefix}${keep ?? ''}`);
    const ended: Array<{ holderNode: string; channel: string; tag: string }> = [];
    for (const [key, r] of [...this.remotes]) {
      if (!stale.includes(r.holderNode)) continue;
      this.remotes.delete(key);
      ended.push({ holderNode: r.holderNode, channel: r.channel, tag: r.tag });
    }
    for (const c of stale) {
      this.callers.delete(c);
      await this.queue.down('node', c);
    }
    if (ended.length > 0) this.consumerLost();
    return ended;
  }

  /** A remote channel's scopes as this queue keeps them: node with incarnation, connection with node. */
  private owner(o: Owner, caller: HostedCaller): Owner {
    return { node: `${caller.node}#${caller.incarnation}`, connection: `${caller.node}/${o.connection}`, channel: o.channel };
  }

  private async down(scope: DownScope, id: string, caller: HostedCaller): Promise<CallResult> {
    const owner = this.owner({ node: caller.node, connection: id, channel: id }, caller);
    const target = scope === 'channel' ? id : scope === 'connection' ? owner.connection : owner.node;
    let lost = false;
    for (const [key, r] of [...this.remotes]) {
      const hit = scope === 'channel' ? r.channel === id
        : scope === 'connection' ? r.channel.startsWith(`${caller.node}/${id}/`) && r.holderNode === owner.node
        : r.holderNode === owner.node;
      if (!hit) continue;
      this.remotes.delete(key);
      lost = true;
    }
    await this.queue.down(scope, target);
    if (lost) this.consumerLost();
    return { kind: 'void' };
  }
}
