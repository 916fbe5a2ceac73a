// fast-check arbitraries for AMQP values: field values of every tag, method fields by type, properties.

import fc from 'fast-check';
import type { ArgType, FieldTable, FieldValue, MethodInfo, BasicProperties } from '../../src/amqp/index.js';
import { basicPropertyInfos } from '../../src/amqp/index.js';

/** Short strings that fit in 255 utf-8 bytes. */
export const shortstr = fc.string({ maxLength: 60, unit: 'grapheme' }).filter((s) => Buffer.byteLength(s) <= 255);
export const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
  .map((v) => (v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v));
const uint64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => (v <= 9007199254740991n ? Number(v) : v));
const float32 = fc.float({ noNaN: true }).map((f) => Math.fround(f));

const scalar: fc.Arbitrary<FieldValue> = fc.oneof(
  fc.boolean().map((value) => ({ tag: 't' as const, value })),
  fc.integer({ min: -128, max: 127 }).map((value) => ({ tag: 'b' as const, value })),
  fc.integer({ min: 0, max: 255 }).map((value) => ({ tag: 'B' as const, value })),
  fc.integer({ min: -32768, max: 32767 }).map((value) => ({ tag: 's' as const, value })),
  fc.integer({ min: -32768, max: 32767 }).map((value) => ({ tag: 'U' as const, value })),
  fc.integer({ min: 0, max: 65535 }).map((value) => ({ tag: 'u' as const, value })),
  fc.integer().map((value) => ({ tag: 'I' as const, value })),
  fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((value) => ({ tag: 'i' as const, value })),
  int64.map((value) => ({ tag: 'l' as const, value })),
  int64.map((value) => ({ tag: 'L' as const, value })),
  uint64.map((value) => ({ tag: 'T' as const, value })),
  float32.map((value) => ({ tag: 'f' as const, value })),
  fc.double({ noNaN: true }).map((value) => ({ tag: 'd' as const, value })),
  fc.record({ scale: fc.integer({ min: 0, max: 255 }), value: fc.integer({ min: 0, max: 2 ** 32 - 1 }) })
    .map((value) => ({ tag: 'D' as const, value })),
  bytes.map((value) => ({ tag: 'S' as const, value })),
  bytes.map((value) => ({ tag: 'x' as const, value })),
  fc.constant({ tag: 'V' as const, value: null }),
);

/** Tables with keys that JS keeps in insertion order (no integer-like keys). */
const tableKey = shortstr.filter((k) => !/^(0|[1-9]\d*)$/.test(k));

export const { fieldValue, fieldTable } = fc.letrec<{ fieldValue: FieldValue; fieldTable: FieldTable }>((tie) => ({
  fieldValue: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('fieldValue'), { maxLength: 4 }).map((value) => ({ tag: 'A' as const, value })),
    tie('fieldTable').map((value) => ({ tag: 'F' as const, value })),
  ),
  fieldTable: fc.dictionary(tableKey, tie('fieldValue'), { maxKeys: 5, noNullPrototype: true }),
}));

export function argArbitrary(type: ArgType): fc.Arbitrary<unknown> {
  switch (type) {
    case 'bit': return fc.boolean();
    case 'octet': return fc.integer({ min: 0, max: 255 });
    case 'short': return fc.integer({ min: 0, max: 65535 });
    case 'long': return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case 'longlong': case 'timestamp': return fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    case 'shortstr': return shortstr;
    case 'longstr': return bytes;
    case 'table': return fieldTable;
  }
}

export function methodArbitrary(info: MethodInfo): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of info.fields) fields[f.field] = argArbitrary(f.type);
  return fc.record(fields).map((r) => ({ name: info.name, ...r }));
}

export const basicProperties: fc.Arbitrary<BasicProperties> = fc.record(
  Object.fromEntries(basicPropertyInfos.map((p) => [p.field, p.type === 'table' ? fieldTable : argArbitrary(p.type)])),
  { requiredKeys: [] },
) as fc.Arbitrary<BasicProperties>;
