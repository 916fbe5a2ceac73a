// Assembling a channel's frames into commands: methods alone, content methods with header and body
// over any split, and the errors RabbitMQ gives for frames out of order or bodies that overrun.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CommandAssembler, encodeBasicProperties, encodeContentFrames, encodeMethodFrame, FrameDecoder, isProtocolError,
  type Command, type Frame, type ProtocolError,
} from '../../src/amqp/index.js';

const publish = { name: 'basic.publish', ticket: 0, exchange: 'ex', routingKey: 'rk', mandatory: true, immediate: false } as const;
const raw = encodeBasicProperties({ contentType: 'text/plain' });

function frames(...buffers: Buffer[]): Frame[] {
  const out: Frame[] = [];
  const d = new FrameDecoder(131072);
  for (const b of buffers) expect(d.push(b, out)).toBeNull();
  return out;
}

function feed(a: CommandAssembler, fs: Frame[]): Array<Command | ProtocolError> {
  const out: Array<Command | ProtocolError> = [];
  for (const f of fs) {
    const r = a.push(f);
    if (r !== null) out.push(r);
  }
  return out;
}

describe('CommandAssembler', () => {
  it('assembles publishes of any size and frame_max, interleaved with plain methods', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 40_000 }), fc.constantFrom(4096, 8192, 131072), (size, frameMax) => {
      const body = Buffer.alloc(size, 5);
      const a = new CommandAssembler(1 << 20);
      const got = feed(a, frames(
        ...encodeContentFrames(1, publish, raw, body, frameMax),
        encodeMethodFrame(1, { name: 'basic.ack', deliveryTag: 1, multiple: false }),
      ));
      expect(got).toHaveLength(2);
      const [msg, ack] = got as [Command, Command];
      expect(msg.method).toEqual(publish);
      expect(msg.content?.header.properties).toEqual({ contentType: 'text/plain' });
      expect(msg.content?.body.equals(body)).toBe(true);
      expect(ack).toEqual({ method: { name: 'basic.ack', deliveryTag: 1, multiple: false }, content: null });
      expect(a.inContent).toBe(false);
    }), { numRuns: 40 });
  });

  it('tolerates an empty body frame after an empty message', () => {
    const a = new CommandAssembler(100);
    const empty = Buffer.from([3, 0, 1, 0, 0, 0, 0, 0xce]);
    const got = feed(a, frames(...encodeContentFrames(1, publish, raw, Buffer.alloc(0), 8192), empty));
    expect(got).toHaveLength(1);
    expect((got[0] as Command).content?.body.length).toBe(0);
  });

  it('refuses frames out of order with UNEXPECTED_FRAME 505', () => {
    const [method, header, body] = frames(...encodeContentFrames(1, publish, raw, Buffer.from('hello'), 8192));
    const cases: Array<[Frame[], RegExp]> = [
      [[header!], /expected a method on channel 1, got a content header frame/],
      [[body!], /expected a method on channel 1, got a content body frame/],
      [[method!, body!], /expected a content header after basic\.publish on channel 1, got a content body frame/],
      [[method!, method!], /expected a content header after basic\.publish/],
      [[method!, header!, method!], /expected a content body for basic\.publish on channel 1, got a method frame/],
    ];
    for (const [fs, text] of cases) {
      const got = feed(new CommandAssembler(100), fs);
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ kind: 'protocol-error', scope: 'connection', replyCode: 505 });
      expect(isProtocolError(got[0]) && got[0].replyText).toMatch(text);
    }
  });

  it('refuses a header of another class and a body that overruns its declared size', () => {
    const [method, header] = frames(...encodeContentFrames(1, publish, raw, Buffer.from('hello'), 8192));
    const wrongClass = Buffer.from(header!.payload);
    wrongClass.writeUInt16BE(50, 0);
    const a = new CommandAssembler(100);
    expect(feed(a, [method!, { ...header!, payload: wrongClass }])[0]).toMatchObject({ replyCode: 505, classId: 60, methodId: 40 });
    const long = frames(Buffer.from([3, 0, 1, 0, 0, 0, 6, 1, 2, 3, 4, 5, 6, 0xce]))[0]!;
    const over = feed(new CommandAssembler(100), [method!, header!, long]);
    expect(over[0]).toMatchObject({ replyCode: 501 });
    expect(isProtocolError(over[0]) && over[0].replyText).toMatch(/6 bytes overruns the 5 bytes left/);
  });

  it('refuses a declared body above 512 MiB with FRAME_ERROR whatever the configured maximum', () => {
    const [method, header] = frames(...encodeContentFrames(1, publish, raw, Buffer.from('x'), 8192));
    const huge = Buffer.from(header!.payload);
    huge.writeUInt32BE(0, 4); // body size: high then low 32 bits, 512 MiB + 1 byte
    huge.writeUInt32BE(512 * 1024 * 1024 + 1, 8);
    const [e] = feed(new CommandAssembler(2 ** 40), [method!, { ...header!, payload: huge }]);
    expect(e).toMatchObject({ replyCode: 501, scope: 'connection' });
    expect(isProtocolError(e) && e.replyText).toMatch(/declared body size 536870913 is above/);
  });

  it('refuses a message above the configured maximum as a channel error, then carries on', () => {
    const a = new CommandAssembler(4);
    const [method, header] = frames(...encodeContentFrames(2, publish, raw, Buffer.from('hello'), 8192));
    const [e] = feed(a, [method!, header!]);
    expect(e).toEqual({ kind: 'protocol-error', scope: 'channel', replyCode: 406, classId: 60, methodId: 40,
      replyText: 'PRECONDITION_FAILED - message size 5 is larger than configured max size 4' });
    expect(a.inContent).toBe(false);
    const next = feed(a, frames(encodeMethodFrame(2, { name: 'channel.close-ok' })));
    expect(next).toEqual([{ method: { name: 'channel.close-ok' }, content: null }]);
  });
});

describe('decoder and assembler on mutated streams', () => {
  const valid = Buffer.concat([
    encodeMethodFrame(1, { name: 'queue.declare', ticket: 0, queue: 'q', passive: false, durable: true, exclusive: false,
      autoDelete: false, nowait: false, arguments: { 'x-max-length': { tag: 'I', value: 10 } } }),
    ...encodeContentFrames(1, publish, raw, Buffer.alloc(3000, 7), 4096),
    encodeMethodFrame(1, { name: 'basic.ack', deliveryTag: 1, multiple: true }),
  ]);

  it('never throw: every outcome is a command or an error value with a RabbitMQ code', () => {
    const mutation = fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 });
    fc.assert(fc.property(mutation, fc.array(fc.nat(), { maxLength: 6 }), (flips, cuts) => {
      const bytes = Buffer.from(valid);
      for (const f of flips) bytes[f.at % bytes.length] = f.byte;
      const points = [...new Set(cuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
      const chunks = [0, ...points].map((p, i, all) => bytes.subarray(p, all[i + 1] ?? bytes.length));
      const d = new FrameDecoder(4096);
      const assemblers = new Map<number, CommandAssembler>();
      const codes: number[] = [];
      for (const c of chunks) {
        const out: Frame[] = [];
        const err = d.push(c, out);
        for (const f of out) {
          const a = assemblers.get(f.channel) ?? new CommandAssembler(1 << 20);
          assemblers.set(f.channel, a);
          const r = a.push(f);
          if (isProtocolError(r)) codes.push(r.replyCode);
        }
        if (err !== null) { codes.push(err.replyCode); break; }
      }
      for (const code of codes) expect([406, 501, 503, 505]).toContain(code);
    }), { numRuns: 1500 });
  });
});
