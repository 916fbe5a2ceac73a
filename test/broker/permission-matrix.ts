// The permission matrix: every AMQP method that touches a resource, with the permissions a user
// holds and the outcome RabbitMQ gives (rabbit_channel's check_*_permitted calls, in its order, and
// rabbit_access_control's texts). Shared by the one-node test and the three-node one.

import type amqp from 'amqplib';

export interface Perms {
  configure: string;
  write: string;
  read: string;
}

export interface MatrixRow {
  what: string;
  perms: Perms;
  op: (ch: amqp.ConfirmChannel) => Promise<unknown>;
  /** 'ok', or the reply code and text of the channel close. */
  expect: string;
}

const all = '.*';
const none = '';
export const p = (configure: string, write: string, read: string): Perms => ({ configure, write, read });
const refused = (permission: string, kind: string, name: string, user = 'bob'): string =>
  `403 ACCESS_REFUSED - ${permission} access to ${kind} '${name}' in vhost '/' refused for user '${user}'`;

/** Resources the rows use, declared by an administrator first. */
export async function declareFixtures(ch: amqp.Channel): Promise<void> {
  for (const q of ['q.existing', 'q.doomed']) await ch.assertQueue(q, { durable: false });
  await ch.assertExchange('x.src', 'direct', { durable: false });
  await ch.assertExchange('x.dest', 'fanout', { durable: false });
  await ch.assertExchange('x.ae', 'fanout', { durable: false });
  await ch.bindQueue('q.existing', 'x.src', 'bound');
}

const publishTo = (exchange: string, key: string, headers?: Record<string, unknown>) => async (ch: amqp.ConfirmChannel): Promise<void> => {
  ch.publish(exchange, key, Buffer.from('m'), headers === undefined ? {} : { headers });
  await ch.waitForConfirms();
};

export const matrix: MatrixRow[] = [
  // queue.declare: configure on the queue; a new queue with a dead-letter exchange also needs
  // read on itself and write on the exchange; passive: any one permission.
  { what: 'queue.declare without configure', perms: p(none, all, all), op: (ch) => ch.assertQueue('q.new1', { durable: false }), expect: refused('configure', 'queue', 'q.new1') },
  { what: 'queue.declare with configure on the name', perms: p('^q\\.', none, none), op: (ch) => ch.assertQueue('q.new2', { durable: false }), expect: 'ok' },
  { what: 'queue.declare with a DLX, no read on the queue', perms: p(all, all, none), op: (ch) => ch.assertQueue('q.dlx1', { durable: false, deadLetterExchange: 'dlx' }), expect: refused('read', 'queue', 'q.dlx1') },
  { what: 'queue.declare with a DLX, no write on it', perms: p(all, '^q\\.', all), op: (ch) => ch.assertQueue('q.dlx2', { durable: false, deadLetterExchange: 'dlx' }), expect: refused('write', 'exchange', 'dlx') },
  { what: 'queue.declare with a DLX, all granted', perms: p(all, '^dlx$', all), op: (ch) => ch.assertQueue('q.dlx3', { durable: false, deadLetterExchange: 'dlx' }), expect: 'ok' },
  { what: 'passive queue.declare with read only', perms: p(none, none, all), op: (ch) => ch.checkQueue('q.existing'), expect: 'ok' },
  { what: 'passive queue.declare with write only', perms: p(none, all, none), op: (ch) => ch.checkQueue('q.existing'), expect: 'ok' },
  { what: 'passive queue.declare with nothing', perms: p(none, none, none), op: (ch) => ch.checkQueue('q.existing'), expect: refused('configure', 'queue', 'q.existing') },
  // queue.delete: configure; queue.purge: read.
  { what: 'queue.delete without configure', perms: p(none, all, all), op: (ch) => ch.deleteQueue('q.doomed'), expect: refused('configure', 'queue', 'q.doomed') },
  { what: 'queue.purge without read', perms: p(all, all, none), op: (ch) => ch.purgeQueue('q.existing'), expect: refused('read', 'queue', 'q.existing') },
  { what: 'queue.purge with read', perms: p(none, none, '^q\\.existing$'), op: (ch) => ch.purgeQueue('q.existing'), expect: 'ok' },
  // queue.bind / unbind: write on the queue first, then read on the exchange.
  { what: 'queue.bind without write on the queue', perms: p(all, none, all), op: (ch) => ch.bindQueue('q.existing', 'amq.direct', 'k'), expect: refused('write', 'queue', 'q.existing') },
  { what: 'queue.bind without read on the exchange', perms: p(all, all, '^q\\.'), op: (ch) => ch.bindQueue('q.existing', 'amq.direct', 'k'), expect: refused('read', 'exchange', 'amq.direct') },
  { what: 'queue.bind with write on the queue and read on the exchange', perms: p(none, '^q\\.existing$', '^amq\\.direct$'), op: (ch) => ch.bindQueue('q.existing', 'amq.direct', 'k'), expect: 'ok' },
  { what: 'queue.unbind without write on the queue', perms: p(all, none, all), op: (ch) => ch.unbindQueue('q.existing', 'x.src', 'bound'), expect: refused('write', 'queue', 'q.existing') },
  { what: 'queue.unbind without read on the exchange', perms: p(all, all, none), op: (ch) => ch.unbindQueue('q.existing', 'x.src', 'bound'), expect: refused('read', 'exchange', 'x.src') },
  // exchange.declare: configure; a new one with an alternate exchange also read on itself and
  // write on the alternate; passive: any one permission.
  { what: 'exchange.declare without configure', perms: p(none, all, all), op: (ch) => ch.assertExchange('x.new1', 'direct', { durable: false }), expect: refused('configure', 'exchange', 'x.new1') },
  { what: 'exchange.declare with an AE, no read on itself', perms: p(all, all, none), op: (ch) => ch.assertExchange('x.new2', 'direct', { durable: false, alternateExchange: 'x.ae' }), expect: refused('read', 'exchange', 'x.new2') },
  { what: 'exchange.declare with an AE, no write on it', perms: p(all, none, all), op: (ch) => ch.assertExchange('x.new3', 'direct', { durable: false, alternateExchange: 'x.ae' }), expect: refused('write', 'exchange', 'x.ae') },
  { what: 'exchange.declare with an AE, all granted', perms: p('^x\\.new4$', '^x\\.ae$', '^x\\.new4$'), op: (ch) => ch.assertExchange('x.new4', 'direct', { durable: false, alternateExchange: 'x.ae' }), expect: 'ok' },
  { what: 'passive exchange.declare with nothing', perms: p(none, none, none), op: (ch) => ch.checkExchange('x.src'), expect: refused('configure', 'exchange', 'x.src') },
  { what: 'passive exchange.declare with read only', perms: p(none, none, all), op: (ch) => ch.checkExchange('x.src'), expect: 'ok' },
  { what: 'exchange.delete without configure', perms: p(none, all, all), op: (ch) => ch.deleteExchange('x.src'), expect: refused('configure', 'exchange', 'x.src') },
  // exchange.bind / unbind (exchange to exchange): write on the destination, read on the source.
  { what: 'exchange.bind without write on the destination', perms: p(all, none, all), op: (ch) => ch.bindExchange('x.dest', 'x.src', 'k'), expect: refused('write', 'exchange', 'x.dest') },
  { what: 'exchange.bind without read on the source', perms: p(all, all, none), op: (ch) => ch.bindExchange('x.dest', 'x.src', 'k'), expect: refused('read', 'exchange', 'x.src') },
  { what: 'exchange.bind with write on the destination and read on the source', perms: p(none, '^x\\.dest$', '^x\\.src$'), op: (ch) => ch.bindExchange('x.dest', 'x.src', 'k'), expect: 'ok' },
  { what: 'exchange.unbind without write on the destination', perms: p(all, none, all), op: (ch) => ch.unbindExchange('x.dest', 'x.src', 'k'), expect: refused('write', 'exchange', 'x.dest') },
  // basic.publish: write on the exchange ('' is amq.default); consume and get: read on the queue.
  { what: 'basic.publish without write on the exchange', perms: p(all, none, all), op: publishTo('x.src', 'bound'), expect: refused('write', 'exchange', 'x.src') },
  { what: 'basic.publish to the default exchange without write on amq.default', perms: p(all, '^x\\.', all), op: publishTo('', 'q.existing'), expect: refused('write', 'exchange', 'amq.default') },
  { what: 'basic.publish with write on the exchange only', perms: p(none, '^x\\.src$', none), op: publishTo('x.src', 'bound'), expect: 'ok' },
  { what: 'basic.consume without read', perms: p(all, all, none), op: (ch) => ch.consume('q.existing', () => undefined), expect: refused('read', 'queue', 'q.existing') },
  { what: 'basic.consume with read only', perms: p(none, none, '^q\\.existing$'), op: (ch) => ch.consume('q.existing', () => undefined), expect: 'ok' },
  { what: 'basic.get without read', perms: p(all, all, none), op: (ch) => ch.get('q.existing'), expect: refused('read', 'queue', 'q.existing') },
  { what: 'basic.get with read only', perms: p(none, none, '^q\\.existing$'), op: (ch) => ch.get('q.existing', { noAck: true }), expect: 'ok' },
];

/** Topic permissions on amq.topic for bob (write and read patterns), and the rows that test them. */
export const topicPerms = { exchange: 'amq.topic', write: '^(allowed|{username})\\.', read: '^allowed\\.' };
const topicRefused = (permission: string, key: string): string =>
  `403 ACCESS_REFUSED - ${permission} access to topic '${key}' in exchange 'amq.topic' in vhost '/' refused for user 'bob'`;
export const topicMatrix: MatrixRow[] = [
  { what: 'publish to a topic exchange with a key the write pattern allows', perms: p(all, all, all), op: publishTo('amq.topic', 'allowed.k'), expect: 'ok' },
  { what: 'publish with {username} expanded in the pattern', perms: p(all, all, all), op: publishTo('amq.topic', 'bob.k'), expect: 'ok' },
  { what: 'publish with a key the write pattern refuses', perms: p(all, all, all), op: publishTo('amq.topic', 'denied.k'), expect: topicRefused('write', 'denied.k') },
  { what: 'publish with an allowed key but a refused CC key', perms: p(all, all, all), op: publishTo('amq.topic', 'allowed.k', { CC: ['denied.cc'] }), expect: topicRefused('write', 'denied.cc') },
  { what: 'publish with a refused BCC key', perms: p(all, all, all), op: publishTo('amq.topic', 'allowed.k', { BCC: ['denied.bcc'] }), expect: topicRefused('write', 'denied.bcc') },
  { what: 'bind to a topic exchange with a key the read pattern refuses', perms: p(all, all, all), op: (ch) => ch.bindQueue('q.existing', 'amq.topic', 'denied.#'), expect: topicRefused('read', 'denied.#') },
  { what: 'bind with a key the read pattern allows', perms: p(all, all, all), op: (ch) => ch.bindQueue('q.existing', 'amq.topic', 'allowed.#'), expect: 'ok' },
  { what: 'topic permissions do not apply to other exchange types', perms: p(all, all, all), op: publishTo('amq.direct', 'denied.k'), expect: 'ok' },
];

/** Runs `op` on a fresh confirm channel: 'ok', or "code text" of the channel's close. */
export async function outcome(conn: amqp.ChannelModel, op: MatrixRow['op']): Promise<string> {
  const ch = await conn.createConfirmChannel();
  let closedWith: string | undefined;
  ch.on('error', (e: Error) => {
    const m = /^Channel closed by server: (\d+) \([^)]*\) with message "(.*)"$/s.exec(e.message);
    closedWith = m === null ? e.message : `${m[1]!} ${m[2]!}`;
  });
  try {
    await op(ch);
  } catch (e) {
    // The close arrives with (or just before) the failed reply.
    for (let i = 0; i < 100 && closedWith === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    return closedWith ?? `failed without a channel close: ${String(e)}`;
  }
  await ch.close();
  return 'ok';
}
