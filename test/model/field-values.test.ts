// Field-table values read independently of the codec: plain and tagged values, integers as number
// or bigint, strings as text or bytes; normalised storage is plain JSON-safe data.

import { describe, expect, it } from 'vitest';
import {
  argEquals, normalize, normalizeTable, readBool, readInt, readString, typeNameOf,
} from '../../src/model/index.js';

describe('field values', () => {
  it('normalise every accepted form to JSON-safe data', () => {
    const table = normalizeTable({
      big: 123n, bytes: Buffer.from('héllo'), tagged: { tag: 'I', value: 7 }, amqplib: { '!': 'long', value: 9 },
      when: new Date(1_700_000_000_500), nested: { list: [1n, Buffer.from('x'), { type: 'V', value: undefined }] },
      nothing: null, flag: true,
    });
    expect(table).toEqual({
      big: 123, bytes: 'héllo', tagged: 7, amqplib: 9, when: 1_700_000_000,
      nested: { list: [1, 'x', null] }, nothing: null, flag: true,
    });
    expect(JSON.parse(JSON.stringify(table))).toEqual(table);
  });

  it('keep a table with other keys than a tag and a value as a table', () => {
    expect(normalize({ type: 'I', value: 1, extra: 2 })).toEqual({ type: 'I', value: 1, extra: 2 });
    expect(normalize({ type: 'x' })).toEqual({ type: 'x' });
  });

  it("name types as RabbitMQ does, inferring plain numbers the way amqplib encodes them", () => {
    expect([100, 1000, 60000, 2 ** 40, 1.5].map(typeNameOf)).toEqual(['byte', 'short', 'signedint', 'long', 'double']);
    expect([5n, 'a', Buffer.from('a'), true, null, [1], { a: 1 }].map(typeNameOf))
      .toEqual(['long', 'longstr', 'longstr', 'bool', 'void', 'array', 'table']);
    expect([{ tag: 'l', value: 1n }, { tag: 'u', value: 1 }, { tag: 'x', value: Buffer.from('') }].map(typeNameOf))
      .toEqual(['long', 'unsignedshort', 'binary']);
  });

  it('read integers only from integer types, strings from text or bytes, booleans from booleans', () => {
    expect(readInt(5)).toBe(5);
    expect(readInt(5n)).toBe(5);
    expect(readInt({ tag: 'B', value: 200 })).toBe(200);
    expect(readInt(1.5)).toBeNull();
    expect(readInt('5')).toBeNull();
    expect(readInt({ tag: 'd', value: 5 })).toBeNull();
    expect(readString(Buffer.from('abc'))).toBe('abc');
    expect(readString(5)).toBeNull();
    expect(readBool({ tag: 't', value: false })).toBe(false);
    expect(readBool(0)).toBeNull();
  });

  it('compare normalised values deeply', () => {
    expect(argEquals({ a: [1, 'x'], b: null }, { b: null, a: [1, 'x'] })).toBe(true);
    expect(argEquals({ a: [1, 'x'] }, { a: [1, 'y'] })).toBe(false);
    expect(argEquals({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(argEquals([1], { 0: 1 })).toBe(false);
  });
});
