// The codec against the vendored RabbitMQ spec: the generated file is what the spec produces, every
// class, method, field, constant and reply code matches, and every method round-trips.

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  basicPropertyInfos, classIds, decodeMethod, encodeMethodFrame, FrameType, frameEndOctet, isProtocolError, limits,
  methodInfoById, methodInfos, ReplyCode, isSoftError, type AmqpMethod,
} from '../../src/amqp/index.js';
import { argType, camel, generate, generatedPath, loadSpec } from './codegen.js';
import { methodArbitrary } from './arbitraries.js';

const spec = loadSpec();

describe('the codec follows the RabbitMQ spec data', () => {
  it('has a generated-methods.ts identical to what the spec generates', () => {
    expect(readFileSync(generatedPath, 'utf8')).toBe(generate(spec));
  });

  it('knows every class and method with its ids, flags and fields in order', () => {
    let count = 0;
    for (const cls of spec.classes) {
      expect(classIds[camel(cls.name) as keyof typeof classIds]).toBe(cls.id);
      for (const m of cls.methods) {
        const info = methodInfoById(cls.id, m.id);
        expect(info?.name).toBe(`${cls.name}.${m.name}`);
        expect(info?.synchronous).toBe(m.synchronous === true);
        expect(info?.content).toBe(m.content === true);
        expect(info?.fields.map((f) => [f.wire, f.field, f.type])).toEqual(
          m.arguments.map((a) => [a.name, camel(a.name), argType(spec, a)]));
        count++;
      }
    }
    expect(methodInfos.length).toBe(count);
    expect(Object.keys(classIds).length).toBe(spec.classes.length);
  });

  it('has the basic properties in flag order', () => {
    const props = spec.classes.find((c) => c.name === 'basic')?.properties ?? [];
    expect(basicPropertyInfos.map((p) => [p.wire, p.type, p.flag])).toEqual(
      props.map((p, i) => [p.name, p.type, 1 << (15 - i)]));
  });

  it('has every constant and reply code with its soft/hard class', () => {
    const frameConstants: Record<string, number> = {
      'FRAME-METHOD': FrameType.method, 'FRAME-HEADER': FrameType.header, 'FRAME-BODY': FrameType.body,
      'FRAME-HEARTBEAT': FrameType.heartbeat, 'FRAME-MIN-SIZE': limits.frameMinBytes, 'FRAME-END': frameEndOctet,
    };
    for (const c of spec.constants) {
      if (c.name in frameConstants) {
        expect(frameConstants[c.name], c.name).toBe(c.value);
        continue;
      }
      const name = c.name.replace(/-/g, '_') as keyof typeof ReplyCode;
      expect(ReplyCode[name], c.name).toBe(c.value);
      if (c.class !== undefined) expect(isSoftError(c.value), c.name).toBe(c.class === 'soft-error');
    }
    expect(Object.keys(ReplyCode).length).toBe(spec.constants.length - Object.keys(frameConstants).length);
  });

  it('round-trips every method with random field values', () => {
    for (const info of methodInfos) {
      fc.assert(fc.property(methodArbitrary(info), fc.integer({ min: 0, max: 65535 }), (m, channel) => {
        const frame = encodeMethodFrame(channel, m as unknown as AmqpMethod);
        expect(frame[0]).toBe(FrameType.method);
        expect(frame.readUInt16BE(1)).toBe(channel);
        expect(frame.readUInt32BE(3)).toBe(frame.length - 8);
        expect(frame[frame.length - 1]).toBe(frameEndOctet);
        const payload = frame.subarray(7, frame.length - 1);
        expect(payload.readUInt16BE(0)).toBe(info.classId);
        expect(payload.readUInt16BE(2)).toBe(info.methodId);
        const back = decodeMethod(payload);
        expect(isProtocolError(back)).toBe(false);
        expect(back).toEqual(m);
        expect(encodeMethodFrame(channel, back as AmqpMethod)).toEqual(frame);
      }), { numRuns: 40 });
    }
  });

  it('packs adjacent bits into one octet, least significant first', () => {
    const frame = encodeMethodFrame(0, {
      name: 'exchange.declare', ticket: 0, exchange: 'e', type: 'topic', passive: false, durable: true,
      autoDelete: false, internal: true, nowait: true, arguments: {},
    });
    // ticket(2) 'e'(2) 'topic'(6) then the bit octet, then the empty table's size
    expect(frame[7 + 4 + 2 + 2 + 6]).toBe(0b11010);
  });
});
