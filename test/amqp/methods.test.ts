// Methods against a real client's codec (amqplib reads what we write and we read what it writes,
// for every method), and the error values for malformed method payloads.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  channelError, closeMethodFor, connectionError, decodeMethod, encodeMethodFrame, encodeMethodPayload, fromFieldValue, isProtocolError,
  methodInfos, protocolError, ReplyCode, toFieldTable, type AmqpMethod, type FieldTable,
} from '../../src/amqp/index.js';
import { argArbitrary, shortstr } from './arbitraries.js';
import { amqplibDefs } from './amqplib.js';

/** Tables amqplib can encode from plain values and decode back to the same plain values. */
const plainTable = fc.dictionary(shortstr.filter((k) => k.length > 0 && !/^\d+$/.test(k) && k !== '__proto__'),
  fc.oneof(fc.boolean(), fc.integer(), shortstr), { maxKeys: 3 });

function plain(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'name') continue;
    out[k] = typeof v === 'object' && v !== null && !Buffer.isBuffer(v) ? fromFieldValue({ tag: 'F', value: v as FieldTable }) : v;
  }
  return out;
}

describe('methods against amqplib', () => {
  it('amqplib reads every method as we encode it, and we read what amqplib encodes', () => {
    for (const info of methodInfos) {
      const fields: Record<string, fc.Arbitrary<unknown>> = {};
      for (const f of info.fields) fields[f.field] = f.type === 'table' ? plainTable : argArbitrary(f.type);
      fc.assert(fc.property(fc.record(fields), (values) => {
        const id = info.classId * 65536 + info.methodId;
        const ours = { name: info.name, ...values } as Record<string, unknown>;
        for (const f of info.fields) if (f.type === 'table') ours[f.field] = toFieldTable(values[f.field] as Record<string, string>);
        const frame = encodeMethodFrame(3, ours as unknown as AmqpMethod);
        const theirs = amqplibDefs.decode(id, frame.subarray(11, frame.length - 1));
        expect(theirs).toEqual(values);
        const theirFrame = amqplibDefs.encodeMethod(id, 3, values);
        const back = decodeMethod(theirFrame.subarray(7, theirFrame.length - 1));
        expect(isProtocolError(back)).toBe(false);
        expect(plain(back as unknown as Record<string, unknown>)).toEqual(values);
      }), { numRuns: 15 });
    }
  });
});

describe('malformed method payloads', () => {
  const publish = encodeMethodPayload({ name: 'basic.publish', ticket: 0, exchange: 'x', routingKey: 'k', mandatory: false, immediate: false });

  it('unknown class or method ids close the connection with COMMAND_INVALID 503', () => {
    expect(decodeMethod(Buffer.from([0, 60, 0, 99]))).toEqual({ kind: 'protocol-error', scope: 'connection', replyCode: 503,
      replyText: 'COMMAND_INVALID - unknown method: class 60, method 99', classId: 60, methodId: 99 });
    expect(decodeMethod(Buffer.from([0, 77, 0, 10]))).toMatchObject({ replyCode: 503, classId: 77, methodId: 10 });
  });

  it('short, truncated and overlong payloads are FRAME_ERROR 501 naming the method', () => {
    expect(decodeMethod(Buffer.from([0, 60]))).toMatchObject({ replyCode: 501, scope: 'connection' });
    for (let n = 4; n < publish.length; n++) {
      const e = decodeMethod(publish.subarray(0, n));
      expect(e).toMatchObject({ replyCode: 501, classId: 60, methodId: 40 });
      expect(isProtocolError(e) && e.replyText).toMatch(/^FRAME_ERROR - cannot decode basic\.publish: truncated/);
    }
    const long = decodeMethod(Buffer.concat([publish, Buffer.from([0])]));
    expect(isProtocolError(long) && long.replyText).toBe('FRAME_ERROR - cannot decode basic.publish: 1 bytes after the last field');
  });

  it('64-bit fields above 2^53 - 1 are refused rather than rounded', () => {
    const ack = Buffer.from([0, 60, 0, 80, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 1]);
    const e = decodeMethod(ack);
    expect(isProtocolError(e) && e.replyText).toBe('FRAME_ERROR - cannot decode basic.ack: longlong above 2^53 - 1 is not supported');
    ack[5] = 0x1f;
    ack.fill(0xff, 6, 12);
    expect(decodeMethod(ack)).toEqual({ name: 'basic.ack', deliveryTag: Number.MAX_SAFE_INTEGER, multiple: true });
  });

  it('random payloads decode or give 501/503, never throw', () => {
    fc.assert(fc.property(fc.constantFrom(...methodInfos), fc.uint8Array({ maxLength: 40 }), (info, tail) => {
      const payload = Buffer.concat([Buffer.from([info.classId >> 8, info.classId & 255, 0, info.methodId]), tail]);
      const m = decodeMethod(payload);
      if (isProtocolError(m)) expect([501, 503]).toContain(m.replyCode);
      else expect(m.name).toBe(info.name);
    }), { numRuns: 3000 });
  });

  it('encoding an out-of-range value is a bug (assertion), not a frame', () => {
    expect(() => encodeMethodFrame(1, { name: 'basic.qos', prefetchSize: 0, prefetchCount: 70000, global: false })).toThrow(/short out of range/);
    expect(() => encodeMethodFrame(1, { name: 'queue.delete-ok', messageCount: -1 })).toThrow(/long out of range/);
    expect(() => encodeMethodFrame(1, { name: 'basic.cancel-ok', consumerTag: 'x'.repeat(256) })).toThrow(/longer than 255/);
  });
});

describe('protocol errors', () => {
  it('take their scope from the reply code unless given', () => {
    expect(protocolError(ReplyCode.NOT_FOUND, "no queue 'q' in vhost '/'", 50, 10)).toEqual({ kind: 'protocol-error',
      scope: 'channel', replyCode: 404, replyText: "NOT_FOUND - no queue 'q' in vhost '/'", classId: 50, methodId: 10 });
    expect(protocolError(ReplyCode.NOT_ALLOWED, 'x').scope).toBe('connection');
    expect(connectionError(ReplyCode.ACCESS_REFUSED, 'login refused').scope).toBe('connection');
    expect(channelError(ReplyCode.PRECONDITION_FAILED, 'unknown delivery tag 7').replyText).toBe('PRECONDITION_FAILED - unknown delivery tag 7');
  });

  it('become the close method of their scope', () => {
    const soft = channelError(ReplyCode.NOT_FOUND, "no exchange 'x' in vhost '/'", 60, 40);
    expect(closeMethodFor(soft)).toEqual({ name: 'channel.close', replyCode: 404,
      replyText: "NOT_FOUND - no exchange 'x' in vhost '/'", classId: 60, methodId: 40 });
    const hard = decodeMethod(Buffer.from([0, 60, 0, 99]));
    expect(isProtocolError(hard) && closeMethodFor(hard).name).toBe('connection.close');
  });

  it('cut reply texts to 255 bytes on a character boundary', () => {
    const e = protocolError(ReplyCode.NOT_FOUND, 'é'.repeat(300));
    expect(Buffer.byteLength(e.replyText)).toBeLessThanOrEqual(255);
    expect(e.replyText.startsWith('NOT_FOUND - éé')).toBe(true);
    expect(() => encodeMethodFrame(0, { name: 'connection.close', replyCode: e.replyCode, replyText: e.replyText, classId: 0, methodId: 0 })).not.toThrow();
  });
});
