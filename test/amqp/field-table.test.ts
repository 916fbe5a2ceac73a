// Field tables: every tag round-trips byte-identically, tables written by amqplib, amqp-client and
// pika decode to the values they meant, broker-made tables use only the tags clients read.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AMQPView } from '@cloudamqp/amqp-client/amqp-view';
import {
  decodeFieldTable, encodeFieldTable, fromFieldValue, isProtocolError, toFieldTable, type FieldTable,
} from '../../src/amqp/index.js';
import { fieldTable } from './arbitraries.js';
import { amqplibCodec } from './amqplib.js';


function decoded(bytes: Buffer): FieldTable {
  const t = decodeFieldTable(bytes);
  if (isProtocolError(t)) throw new Error(t.replyText);
  return t;
}

function amqplibTable(val: unknown): Buffer {
  const buf = Buffer.alloc(65536);
  const n = amqplibCodec.encodeTable(buf, val, 0);
  return Buffer.from(buf.subarray(0, n));
}

function amqpClientTable(val: Record<string, unknown>): Buffer {
  const view = new AMQPView(new ArrayBuffer(65536));
  const n = view.setTable(0, val as Parameters<AMQPView["setTable"]>[1]);
  return Buffer.from(view.buffer, 0, n);
}

const tag = (t: FieldTable, key: string): string => t[key]!.tag;

describe('field tables', () => {
  it('re-encode random tables of every tag byte-identically', () => {
    fc.assert(fc.property(fieldTable, (table) => {
      const bytes = encodeFieldTable(table);
      const back = decoded(bytes);
      expect(back).toEqual(table);
      expect(encodeFieldTable(back)).toEqual(bytes);
    }), { numRuns: 300 });
  });

  it('keep what amqplib writes: the smallest integer tag, doubles, bytes, explicit types', () => {
    const bytes = amqplibTable({
      small: 100, short: 1000, int: 60000, big: 2 ** 40, neg: -5, dbl: 1.5, str: 'héllo', yes: true, none: null,
      bin: Buffer.from([0, 255]), list: [1, 'a', [false]], nested: { 'x-match': 'any' },
      ts: { '!': 'timestamp', value: 1700000000 }, f32: { '!': 'float', value: 0.25 },
      dec: { '!': 'decimal', value: { places: 2, digits: 12345 } }, u8: { '!': 'uint8', value: 200 },
      u16: { '!': 'uint16', value: 65535 }, u32: { '!': 'uint32', value: 4000000000 },
    });
    const t = decoded(bytes);
    expect(['small', 'short', 'int', 'big', 'neg', 'dbl', 'str', 'yes', 'none', 'bin', 'list', 'nested', 'ts', 'f32',
      'dec', 'u8', 'u16', 'u32'].map((k) => tag(t, k))).toEqual(
      ['b', 's', 'I', 'l', 'b', 'd', 'S', 't', 'V', 'x', 'A', 'F', 'T', 'f', 'D', 'B', 'u', 'i']);
    expect(fromFieldValue({ tag: 'F', value: t })).toEqual({
      small: 100, short: 1000, int: 60000, big: 2 ** 40, neg: -5, dbl: 1.5, str: 'héllo', yes: true, none: null,
      bin: '\u0000\ufffd', list: [1, 'a', [false]], nested: { 'x-match': 'any' }, ts: 1700000000, f32: 0.25,
      dec: { scale: 2, value: 12345 }, u8: 200, u16: 65535, u32: 4000000000,
    });
    expect(encodeFieldTable(t)).toEqual(bytes);
  });

  it('keep what @cloudamqp/amqp-client writes', () => {
    const bytes = amqpClientTable({ n: 7, big: 2 ** 35, f: 2.5, s: 'x', b: false, arr: [1, 'two'], tbl: { k: 1 }, bi: 123n });
    const t = decoded(bytes);
    expect(fromFieldValue({ tag: 'F', value: t })).toMatchObject({ n: 7, big: 2 ** 35, f: 2.5, s: 'x', b: false,
      arr: [1, 'two'], tbl: { k: 1 }, bi: 123 });
    expect(encodeFieldTable(t)).toEqual(bytes);
  });

  it('keep what pika writes (I for ints, l beyond 32 bits, x for bytes, D, T)', () => {
    // Built by hand as pika 1.x encodes {'i': 5, 'l': 2**40, 'raw': b'\x01', 'd': Decimal('1.5'), 't': datetime}.
    const entry = (key: string, tagByte: string, value: number[]): number[] => [key.length, ...Buffer.from(key), tagByte.charCodeAt(0), ...value];
    const body = [
      ...entry('i', 'I', [0, 0, 0, 5]), ...entry('l', 'l', [0, 0, 1, 0, 0, 0, 0, 0]), ...entry('raw', 'x', [0, 0, 0, 1, 1]),
      ...entry('d', 'D', [1, 0, 0, 0, 15]), ...entry('t', 'T', [0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00]),
    ];
    const bytes = Buffer.from([0, 0, 0, body.length, ...body]);
    const t = decoded(bytes);
    expect(t).toEqual({ i: { tag: 'I', value: 5 }, l: { tag: 'l', value: 2 ** 40 }, raw: { tag: 'x', value: Buffer.from([1]) },
      d: { tag: 'D', value: { scale: 1, value: 15 } }, t: { tag: 'T', value: 0x6553f100 } });
    expect(encodeFieldTable(t)).toEqual(bytes);
  });

  it('keep what the Java client writes (s for Short, b for Byte, f for Float, x for byte[])', () => {
    const entry = (key: string, tagByte: string, value: number[]): number[] => [key.length, ...Buffer.from(key), tagByte.charCodeAt(0), ...value];
    const body = [...entry('sh', 's', [0xff, 0xfe]), ...entry('by', 'b', [0x80]), ...entry('fl', 'f', [0x3f, 0xc0, 0, 0]),
      ...entry('ba', 'x', [0, 0, 0, 2, 9, 8]), ...entry('lo', 'l', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])];
    const bytes = Buffer.from([0, 0, 0, body.length, ...body]);
    const t = decoded(bytes);
    expect(t).toEqual({ sh: { tag: 's', value: -2 }, by: { tag: 'b', value: -128 }, fl: { tag: 'f', value: 1.5 },
      ba: { tag: 'x', value: Buffer.from([9, 8]) }, lo: { tag: 'l', value: -1 } });
    expect(encodeFieldTable(t)).toEqual(bytes);
  });

  it('give numbers exactly up to 2^53 - 1 and bigints from there on, both signs', () => {
    const cases: Array<[bigint, number | bigint]> = [
      [2n ** 53n - 1n, Number.MAX_SAFE_INTEGER], [2n ** 53n, 2n ** 53n], [-(2n ** 53n) + 1n, Number.MIN_SAFE_INTEGER],
      [-(2n ** 53n), -(2n ** 53n)], [-1n, -1], [-(2n ** 63n), -(2n ** 63n)], [2n ** 32n, 2 ** 32],
    ];
    for (const [wire, value] of cases) {
      const bytes = Buffer.from([0, 0, 0, 11, 1, 0x6b, 0x6c, 0, 0, 0, 0, 0, 0, 0, 0]);
      bytes.writeBigInt64BE(wire, 7);
      const t = decoded(bytes);
      expect(t.k).toEqual({ tag: 'l', value });
      expect(encodeFieldTable(t)).toEqual(bytes);
    }
  });

  it('keep 64-bit integers beyond 2^53 exactly, as bigint', () => {
    const bytes = amqplibTable({ big: { '!': 'long', value: 2n ** 62n + 1n } });
    const t = decoded(bytes);
    expect(t.big).toEqual({ tag: 'l', value: 2n ** 62n + 1n });
    expect(encodeFieldTable(t)).toEqual(bytes);
  });

  it('make broker tables with only t S l F A V, which amqplib and amqp-client read back', () => {
    const plain = { capabilities: { publisher_confirms: true }, product: 'espresso', count: 3, list: [{ q: 'a' }], gone: null };
    const bytes = encodeFieldTable(toFieldTable(plain));
    const tags = new Set<string>();
    const walk = (t: FieldTable): void => {
      for (const k in t) {
        const v = t[k]!;
        tags.add(v.tag);
        if (v.tag === 'F') walk(v.value);
        if (v.tag === 'A') for (const item of v.value) { tags.add(item.tag); if (item.tag === 'F') walk(item.value); }
      }
    };
    walk(decoded(bytes));
    expect([...tags].sort()).toEqual(['A', 'F', 'S', 'V', 'l', 't']);
    const viaAmqplib = amqplibCodec.decodeFields(bytes.subarray(4));
    expect(viaAmqplib).toEqual({ capabilities: { publisher_confirms: true }, product: 'espresso', count: 3,
      list: [{ q: 'a' }], gone: null });
    const [viaClient] = new AMQPView(bytes.buffer, bytes.byteOffset, bytes.length).getTable(0);
    expect(viaClient).toEqual({ capabilities: { publisher_confirms: true }, product: 'espresso', count: 3, list: [{ q: 'a' }], gone: null });
  });

  it('treat a key named __proto__ as an ordinary entry', () => {
    const bytes = Buffer.from([0, 0, 0, 12, 9, ...Buffer.from('__proto__'), 0x74, 1]);
    const t = decoded(bytes);
    expect(Object.keys(t)).toEqual(['__proto__']);
    expect(encodeFieldTable(t)).toEqual(bytes);
  });

  it('refuse an unknown tag, truncation and runaway nesting with FRAME_ERROR', () => {
    const unknown = decodeFieldTable(Buffer.from([0, 0, 0, 3, 1, 0x6b, 0x7a]));
    expect(unknown).toMatchObject({ replyCode: 501, scope: 'connection' });
    expect(isProtocolError(unknown) && unknown.replyText).toMatch(/^FRAME_ERROR - .*unknown field table type tag 0x7a \('z'\)/);
    expect(decodeFieldTable(Buffer.from([0, 0, 0, 9, 1, 0x6b, 0x53, 0, 0, 0, 9, 1, 2]))).toMatchObject({ replyCode: 501 });
    expect(decodeFieldTable(Buffer.from([0, 0, 0, 2, 1, 0x6b]))).toMatchObject({ replyCode: 501 });
    let deep = Buffer.from([0, 0, 0, 0]);
    for (let i = 0; i < 70; i++) {
      const head = Buffer.from([0, 0, 0, 0, 1, 0x6b, 0x46]);
      head.writeUInt32BE(deep.length + 3, 0);
      deep = Buffer.concat([head, deep]);
    }
    const nested = decodeFieldTable(deep);
    expect(isProtocolError(nested) && nested.replyText).toMatch(/nested deeper than 64/);
  });

  it('never throw on random bytes: a table or a FRAME_ERROR', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (arr) => {
      const bytes = Buffer.from([0, 0, 0, arr.length, ...arr]);
      const t = decodeFieldTable(bytes);
      if (isProtocolError(t)) {
        expect(t.replyCode).toBe(501);
      } else if (!JSON.stringify(t, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)).includes('\ufffd')) {
        // Keys are utf-8 short strings: invalid sequences come back replaced (U+FFFD), a documented loss.
        expect(encodeFieldTable(t)).toEqual(bytes);
      }
    }), {
      numRuns: 2000,
      // An int64 past 2^53 decodes as a bigint: the check itself must not choke on it (it once did).
      examples: [[Uint8Array.from([0, 76, 0, 32, 0, 0, 0, 0, 0, 0])]],
    });
  });
});
