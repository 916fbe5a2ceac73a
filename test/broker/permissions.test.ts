// The permission matrix against one node with amqplib: for each method the outcome RabbitMQ gives
// (permission-matrix.ts), the user's permissions changed between rows while its connection stays
// open; a user without permissions in the vhost, or without credentials, reaches no queue.

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/broker/auth.js';
import type { BrokerServer } from '../../src/broker/server.js';
import { protocolHeader } from '../../src/amqp/index.js';
import { startTestBroker } from './helpers.js';
import { RawClient } from './raw-client.js';
import { declareFixtures, matrix, outcome, topicMatrix, topicPerms, type Perms } from './permission-matrix.js';

let broker: BrokerServer;
let bob: amqp.ChannelModel;

async function grant(perms: Perms): Promise<void> {
  const r = await broker.context.metadata.apply({ kind: 'setPermissions', user: 'bob', vhost: '/', ...perms });
  expect(r.ok).toBe(true);
}

beforeAll(async () => {
  broker = await startTestBroker();
  const admin = await amqp.connect(`amqp://guest:guest@127.0.0.1:${broker.port}`);
  await declareFixtures(await admin.createChannel());
  await admin.close();
  await broker.context.metadata.apply({ kind: 'addUser', name: 'bob', passwordHash: hashPassword('bob-secret'), tags: [] });
  await grant({ configure: '.*', write: '.*', read: '.*' });
  bob = await amqp.connect(`amqp://bob:bob-secret@127.0.0.1:${broker.port}`);
});
afterAll(async () => {
  await bob?.close().catch(() => undefined);
  await broker.close();
});

describe('permissions of every AMQP method on one node', () => {
  for (const row of matrix) {
    it(`${row.what}: ${row.expect === 'ok' ? 'allowed' : '403'}`, async () => {
      await grant(row.perms);
      expect(await outcome(bob, row.op)).toBe(row.expect);
    });
  }
});

describe('topic permissions', () => {
  beforeAll(async () => {
    await grant({ configure: '.*', write: '.*', read: '.*' });
    const r = await broker.context.metadata.apply({ kind: 'setTopicPermissions', user: 'bob', vhost: '/', ...topicPerms });
    expect(r.ok).toBe(true);
  });
  for (const row of topicMatrix) {
    it(`${row.what}: ${row.expect === 'ok' ? 'allowed' : '403'}`, async () => {
      await grant(row.perms);
      expect(await outcome(bob, row.op)).toBe(row.expect);
    });
  }
});

describe('who reaches no queue at all', () => {
  it('a user without permissions in the vhost is refused at connection.open with 530', async () => {
    await broker.context.metadata.apply({ kind: 'addUser', name: 'carol', passwordHash: hashPassword('carol-secret'), tags: [] });
    await expect(amqp.connect(`amqp://carol:carol-secret@127.0.0.1:${broker.port}`)).rejects.toThrow(/ConnectionClose/);
    // amqplib does not show the close's text: read it off the wire.
    const c = await RawClient.open(broker.port);
    c.write(protocolHeader);
    await c.method('connection.start');
    c.send(0, { name: 'connection.start-ok', clientProperties: {}, mechanism: 'PLAIN', response: Buffer.from('\0carol\0carol-secret'), locale: 'en_US' });
    await c.method('connection.tune');
    c.send(0, { name: 'connection.tune-ok', channelMax: 2047, frameMax: 131072, heartbeat: 0 });
    c.send(0, { name: 'connection.open', virtualHost: '/', capabilities: '', insist: false });
    expect(await c.close()).toMatchObject({ replyCode: 530, replyText: "NOT_ALLOWED - access to vhost '/' refused for user 'carol'" });
    c.destroy();
  });

  it('a client with a wrong password or no such user is refused at login with 403', async () => {
    for (const creds of ['bob:wrong', 'nobody:x', 'bob:']) {
      await expect(amqp.connect(`amqp://${creds}@127.0.0.1:${broker.port}`))
        .rejects.toThrow(/ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN/);
    }
  });
});
