// SASL responses, password hashes and the loopback rule, plus an AMQPLAIN login over a socket
// (php-amqplib and py-amqp pick AMQPLAIN).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPassword, hashPassword, isLoopback, parseAmqPlain, parsePlain } from '../../src/broker/auth.js';
import type { BrokerServer } from '../../src/broker/server.js';
import { protocolHeader } from '../../src/amqp/index.js';
import { startTestBroker } from './helpers.js';
import { RawClient } from './raw-client.js';

function amqPlain(login: string, pass: string): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of [['LOGIN', login], ['PASSWORD', pass]] as const) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(Buffer.byteLength(v));
    parts.push(Buffer.from([k.length]), Buffer.from(k), Buffer.from('S'), len, Buffer.from(v));
  }
  return Buffer.concat(parts);
}

describe('SASL parsing and passwords', () => {
  it('reads PLAIN and AMQPLAIN responses and refuses malformed ones', () => {
    expect(parsePlain(Buffer.from('\0bob\0secret'))).toEqual({ user: 'bob', pass: 'secret' });
    expect(parsePlain(Buffer.from('bob'))).toBeNull();
    expect(parseAmqPlain(amqPlain('bob', 'secret'))).toEqual({ user: 'bob', pass: 'secret' });
    expect(parseAmqPlain(amqPlain('bob', 'secret').subarray(0, 10))).toBeNull();
  });

  it('checks salted hashes and tells loopback addresses apart', () => {
    const h = hashPassword('guest');
    expect(checkPassword('guest', h)).toBe(true);
    expect(checkPassword('Guest', h)).toBe(false);
    expect(hashPassword('guest')).not.toBe(h); // salted
    expect(['127.0.0.1', '::1', '::ffff:127.0.0.1'].every(isLoopback)).toBe(true);
    expect(['10.0.0.1', '::ffff:192.168.1.2', undefined].some(isLoopback)).toBe(false);
  });
});

describe('AMQPLAIN login', () => {
  let broker: BrokerServer;
  beforeAll(async () => {
    broker = await startTestBroker();
  });
  afterAll(async () => {
    await broker.close();
  });

  it('logs in with AMQPLAIN and refuses an unknown mechanism with 503', async () => {
    const c = await RawClient.open(broker.port);
    c.write(protocolHeader);
    const start = await c.method('connection.start');
    expect(start.mechanisms.toString()).toBe('PLAIN AMQPLAIN');
    c.send(0, { name: 'connection.start-ok', clientProperties: {}, mechanism: 'AMQPLAIN', response: amqPlain('guest', 'guest'), locale: 'en_US' });
    await c.method('connection.tune');
    c.destroy();
    const d = await RawClient.open(broker.port);
    d.write(protocolHeader);
    await d.method('connection.start');
    d.send(0, { name: 'connection.start-ok', clientProperties: {}, mechanism: 'GSSAPI', response: Buffer.alloc(0), locale: 'en_US' });
    expect((await d.close()).replyCode).toBe(503);
  });
});
