// Direct reply-to names: they carry the requester's node, channel and key, any node reads them
// back, and anything else after the prefix is simply no such name (dropped, or NO_ROUTE when
// mandatory): never a throw in the publisher's path.

import { describe, expect, it } from 'vitest';
import { DirectReplyRegistry, parseReplyName, replyName, replyToPrefix } from '../../src/broker/direct-reply-to.js';
import type { StoredMessage } from '../../src/broker/queue-backend.js';

const key = 'AAAAAAAAAAAAAAAAAAAAAA';
const message: StoredMessage = { exchange: '', routingKey: 'x', properties: {}, body: Buffer.from('reply') };

describe('direct reply-to names', () => {
  it('carry the node, channel and key, and read back as they were', () => {
    for (const channel of ['n1/c1/1', 'rabbit@host-ä/c12345/2047', 'node.with.dots/c9/65535']) {
      const name = replyName(channel, key);
      expect(name.startsWith(replyToPrefix)).toBe(true);
      expect(parseReplyName(name)).toEqual({ node: channel.slice(0, channel.indexOf('/')), channel, key });
    }
  });

  it('read anything else after the prefix as no name, without throwing', () => {
    const good = replyName('n1/c1/1', key);
    const encoded = good.slice(replyToPrefix.length, good.lastIndexOf('.'));
    const garbage = [
      'amq.rabbitmq.reply-to', replyToPrefix, `${replyToPrefix}.`, `${replyToPrefix}${key}`, `${replyToPrefix}abc.`,
      `${replyToPrefix}.${key}`, `${replyToPrefix}${encoded}.${key}x`, `${replyToPrefix}${encoded}.${key.slice(1)}`,
      `${replyToPrefix}${encoded}.${key}.more`, `${replyToPrefix}${encoded}=.${key}`, `${replyToPrefix}${encoded}+/.${key}`,
      `${replyToPrefix}${Buffer.from('no-slash').toString('base64url')}.${key}`,
      `${replyToPrefix}${Buffer.from('/c1/1').toString('base64url')}.${key}`,
      `${replyToPrefix}${Buffer.from('n1/').toString('base64url')}.${key}`,
      `${replyToPrefix}${Buffer.from([0xff, 0xfe, 0x2f, 0x41]).toString('base64url')}.${key}`,
      `${replyToPrefix}${'A'.repeat(400)}.${key}`, `${replyToPrefix}\u0000\u00ff.${key}`, `${replyToPrefix}g.${key}\n`,
    ];
    for (const name of garbage) expect(parseReplyName(name), name).toBeNull();
    // Every cut of a good name, and every one-character change, is no name or still a well-formed one.
    for (let i = 0; i < good.length; i++) {
      expect(() => parseReplyName(good.slice(0, i))).not.toThrow();
      for (const c of ['.', '/', '~', 'é', 'A']) expect(() => parseReplyName(good.slice(0, i) + c + good.slice(i + 1))).not.toThrow();
    }
  });

  it('deliver to a registered channel only with its current key, and count what they drop', () => {
    const got: string[] = [];
    const replies = new DirectReplyRegistry('n1');
    const name = replies.register('n1/c1/1', { deliverReply: (m) => got.push(m.body.toString()) > 0 });
    expect(replies.send(name, message)).toBe(true);
    expect(replies.exists(name)).toBe(true);
    const again = replies.register('n1/c1/1', { deliverReply: (m) => got.push(`again ${m.body.toString()}`) > 0 });
    expect(replies.send(name, message)).toBe(false); // the first consumer's key no longer matches
    expect(replies.send(again, message)).toBe(true);
    expect(replies.send(`${replyToPrefix}garbage`, message)).toBe(false);
    expect(replies.sendChecked(replyName('n2/c1/1', key), message)).toBe(false); // another node, and no cluster to reach it
    replies.unregister('n1/c1/1');
    expect(replies.send(again, message)).toBe(false);
    expect(replies.exists(again)).toBe(false);
    expect(got).toEqual(['reply', 'again reply']);
    expect(replies.counters()).toEqual({ delivered: 2, forwarded: 0, dropped: 4, returned: 0 });
  });
});
