// AMQP over TLS with amqplib (amqps://): messages flow over TLS; a client that trusts another CA,
// or offers TLS 1.1 or a CBC cipher, gets no connection; client certificates: verified when sent,
// SASL EXTERNAL logs in as the certificate's CN, one from an untrusted CA is refused, and 'require'
// refuses a client without one; a reload hands new connections the new certificate.

import { copyFileSync } from 'node:fs';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/broker/auth.js';
import type { BrokerServer } from '../../src/broker/server.js';
import { protocolHeader } from '../../src/amqp/index.js';
import { startTestBroker } from './helpers.js';
import { ensureOpenssl, makePki, presentedFingerprint, type TestPki } from './tls-certs.js';

const missing = ensureOpenssl();
if (missing !== null) console.warn(`client TLS tests skipped: ${missing}`);

/** Whether a TLS handshake with these options completes; the error message otherwise. */
function handshake(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ...options }, () => {
      resolve('ok');
      s.destroy();
    });
    s.once('error', (e) => resolve(e.message));
  });
}

async function roundTrip(conn: amqp.ChannelModel): Promise<string> {
  const ch = await conn.createChannel();
  const q = await ch.assertQueue('', { exclusive: true });
  ch.sendToQueue(q.queue, Buffer.from('over tls'));
  for (let i = 0; i < 100; i++) {
    const m = await ch.get(q.queue, { noAck: true });
    if (m !== false) return m.content.toString();
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('no message');
}

describe.skipIf(missing !== null)('AMQP over TLS', () => {
  let pki: TestPki;
  let broker: BrokerServer;
  let verifying: BrokerServer;
  let requiring: BrokerServer;
  let liveCert: { cert: string; key: string };
  beforeAll(async () => {
    pki = makePki();
    const first = pki.server();
    // The node reads its files from these paths; the reload test overwrites them in place.
    liveCert = { cert: `${pki.dir}/live.crt`, key: `${pki.dir}/live.key` };
    copyFileSync(first.cert, liveCert.cert);
    copyFileSync(first.key, liveCert.key);
    const tls = { tlsPort: 0, tlsCert: liveCert.cert, tlsKey: liveCert.key, tlsCa: pki.ca };
    broker = await startTestBroker({ ...tls, tlsVerify: 'none' });
    verifying = await startTestBroker({ ...tls, tlsVerify: 'peer' });
    requiring = await startTestBroker({ ...tls, tlsVerify: 'require', tlsOnly: true });
    for (const b of [verifying, requiring]) {
      await b.context.metadata.apply({ kind: 'addUser', name: 'alice', passwordHash: hashPassword('not-used'), tags: [] });
      await b.context.metadata.apply({ kind: 'setPermissions', user: 'alice', vhost: '/', configure: '.*', write: '.*', read: '.*' });
    }
  }, 60_000);
  afterAll(async () => {
    for (const b of [broker, verifying, requiring]) await b?.close();
  });

  it('carries a message over amqps:// for a client that trusts the CA; the plain port stays too', async () => {
    const conn = await amqp.connect(`amqps://guest:guest@127.0.0.1:${broker.tlsPort!}`, { ca: [pki.read(pki.ca)] });
    expect(await roundTrip(conn)).toBe('over tls');
    await conn.close();
    const plain = await amqp.connect(`amqp://guest:guest@127.0.0.1:${broker.port}`);
    expect(await roundTrip(plain)).toBe('over tls');
    await plain.close();
  });

  it('gives no connection to a client that trusts another CA, and none below TLS 1.2 or with a CBC cipher', async () => {
    await expect(amqp.connect(`amqps://guest:guest@127.0.0.1:${broker.tlsPort!}`, { ca: [pki.read(pki.otherCa)] }))
      .rejects.toThrow(/self.signed|unable to verify|certificate/i);
    const ca = pki.read(pki.ca);
    expect(await handshake(broker.tlsPort!, { ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })).not.toBe('ok');
    expect(await handshake(broker.tlsPort!, { ca, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA' })).not.toBe('ok');
    expect(await handshake(broker.tlsPort!, { ca, maxVersion: 'TLSv1.2' })).toBe('ok');
    expect(await handshake(broker.tlsPort!, { ca, minVersion: 'TLSv1.3' })).toBe('ok');
  });

  it('logs in with SASL EXTERNAL as the CN of a verified client certificate, offered only then', async () => {
    const alice = pki.client('alice');
    const opts = { ca: [pki.read(pki.ca)], cert: pki.read(alice.cert), key: pki.read(alice.key), credentials: amqp.credentials.external() };
    const conn = await amqp.connect(`amqps://127.0.0.1:${verifying.tlsPort!}`, opts);
    expect(await roundTrip(conn)).toBe('over tls');
    await conn.close();
    // A certificate naming no user: refused as RabbitMQ refuses a login.
    const mallory = pki.client('mallory');
    await expect(amqp.connect(`amqps://127.0.0.1:${verifying.tlsPort!}`, { ...opts, cert: pki.read(mallory.cert), key: pki.read(mallory.key) }))
      .rejects.toThrow(/ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL/);
    // Without a certificate (peer mode lets it in with a password) EXTERNAL is not offered.
    expect(await offeredMechanisms(verifying.tlsPort!, { ca: pki.read(pki.ca) })).toBe('PLAIN AMQPLAIN');
    expect(await offeredMechanisms(verifying.tlsPort!, { ca: pki.read(pki.ca), cert: pki.read(alice.cert), key: pki.read(alice.key) })).toBe('PLAIN AMQPLAIN EXTERNAL');
    await expect(amqp.connect(`amqps://127.0.0.1:${verifying.tlsPort!}`, { ca: [pki.read(pki.ca)], credentials: amqp.credentials.external() }))
      .rejects.toThrow(/SASL mechanism EXTERNAL is not provided by the server/);
    const withPassword = await amqp.connect(`amqps://guest:guest@127.0.0.1:${verifying.tlsPort!}`, { ca: [pki.read(pki.ca)] });
    await withPassword.close();
  });

  it('refuses a client certificate from an untrusted CA, and in require mode a client without one', async () => {
    const eve = pki.client('alice', true);
    const ca = pki.read(pki.ca);
    // Closed right after the handshake, before connection.start: no login is attempted.
    await expect(amqp.connect(`amqps://127.0.0.1:${verifying.tlsPort!}`, { ca: [ca], cert: pki.read(eve.cert), key: pki.read(eve.key), credentials: amqp.credentials.external() }))
      .rejects.toThrow(/closed abruptly during opening handshake/);
    await expect(amqp.connect(`amqps://guest:guest@127.0.0.1:${requiring.tlsPort!}`, { ca: [ca] })).rejects.toThrow(/certificate required/);
    const alice = pki.client('alice');
    const conn = await amqp.connect(`amqps://127.0.0.1:${requiring.tlsPort!}`, { ca: [ca], cert: pki.read(alice.cert), key: pki.read(alice.key), credentials: amqp.credentials.external() });
    expect(await roundTrip(conn)).toBe('over tls');
    await conn.close();
  });

  it('with --tls-only opens no plain port', () => {
    expect(requiring.port).toBe(requiring.tlsPort);
  });

  it('hands new connections the reloaded certificate; open ones carry on; a bad file keeps the old one', async () => {
    const ca = pki.read(pki.ca);
    const before = await presentedFingerprint(broker.tlsPort!, ca);
    const open = await amqp.connect(`amqps://guest:guest@127.0.0.1:${broker.tlsPort!}`, { ca: [ca] });
    const renewed = pki.server('espresso-node-renewed');
    copyFileSync(renewed.cert, liveCert.cert);
    copyFileSync(renewed.key, liveCert.key);
    expect(broker.reloadTls()).toBeNull();
    const after = await presentedFingerprint(broker.tlsPort!, ca);
    expect(after).not.toBe(before);
    expect(await roundTrip(open)).toBe('over tls');
    await open.close();
    copyFileSync(pki.ca, liveCert.key); // not a key
    expect(broker.reloadTls()).toMatch(/the TLS key '.*live.key' is not a PEM private key/);
    expect(await presentedFingerprint(broker.tlsPort!, ca)).toBe(after);
  });
});

/** The mechanisms connection.start offers on the TLS port to a client with these options. */
function offeredMechanisms(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ...options }, () => s.write(protocolHeader));
    let got = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      // connection.start: frame header (7) + class/method (4) + versions (2) + server-properties
      // table, then mechanisms as a longstr.
      if (got.length < 7 || got.length < 8 + got.readUInt32BE(3)) return;
      const tableLen = got.readUInt32BE(13);
      const at = 17 + tableLen;
      const len = got.readUInt32BE(at);
      resolve(got.subarray(at + 4, at + 4 + len).toString());
      s.destroy();
    });
    s.once('error', reject);
  });
}
