// Field-table values as the model reads them: independent of the codec's representation.
// Incoming tables are structural (`FieldTable`); values may be plain JS values (integers as number
// or bigint, strings as string or bytes) or tagged ({tag|type|'!': 'I', value: 5}). The model
// stores them normalised (`ArgValue`: plain JSON-safe data) and compares integers by value
// across field types, as RabbitMQ does.

/** A field table as it comes from the codec or a client library. */
export type FieldTable = { readonly [key: string]: unknown };

/** A normalised, JSON-safe value: void = null, every integer and float a number, bytes utf-8. */
export type ArgValue = null | boolean | number | string | readonly ArgValue[] | ArgTable;
export type ArgTable = { readonly [key: string]: ArgValue };

/** RabbitMQ's type names per wire tag (what its error texts print). */
const tagTypeName: Readonly<Record<string, string>> = {
  t: 'bool', b: 'byte', B: 'unsignedbyte', s: 'short', u: 'unsignedshort', U: 'short',
  I: 'signedint', i: 'unsignedint', l: 'long', L: 'long', f: 'float', d: 'double',
  D: 'decimal', S: 'longstr', x: 'binary', A: 'array', T: 'timestamp', F: 'table', V: 'void',
};

const integerTypes = new Set(['byte', 'unsignedbyte', 'short', 'unsignedshort', 'signedint',
  'unsignedint', 'long', 'int', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32']);

const tagKeys = ['tag', 'type', '!'] as const;

const utf8 = new TextDecoder('utf-8');

/** The tag key of a tagged value ('tag', 'type' or '!'), or undefined for a plain value. */
function tagKeyOf(v: object): (typeof tagKeys)[number] | undefined {
  if (Array.isArray(v) || v instanceof Uint8Array || v instanceof Date) return undefined;
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return undefined;
  if (!('value' in v)) return undefined;
  let count = 0;
  for (const key in v) if (Object.prototype.hasOwnProperty.call(v, key)) count++;
  if (count !== 2) return undefined;
  for (const k of tagKeys) {
    if (typeof (v as Record<string, unknown>)[k] === 'string') return k;
  }
  return undefined;
}

/** The value inside a tagged value; plain values come back unchanged. No allocation. */
export function untag(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  return tagKeyOf(v) === undefined ? v : (v as { value: unknown }).value;
}

/** RabbitMQ's name for the field type of a value (for error texts and type checks). */
export function typeNameOf(v: unknown): string {
  if (typeof v === 'object' && v !== null) {
    const k = tagKeyOf(v);
    if (k !== undefined) {
      const tag = (v as Record<string, string>)[k] ?? '';
      return tagTypeName[tag] ?? tag;
    }
  }
  return inferredTypeName(v);
}

// Plain numbers get the type amqplib would encode them with (smallest signed integer type).
function inferredTypeName(v: unknown): string {
  switch (typeof v) {
    case 'boolean': return 'bool';
    case 'bigint': return 'long';
    case 'string': return 'longstr';
    case 'number':
      if (!Number.isInteger(v)) return 'double';
      if (v >= -0x80 && v < 0x80) return 'byte';
      if (v >= -0x8000 && v < 0x8000) return 'short';
      if (v >= -0x80000000 && v < 0x80000000) return 'signedint';
      return 'long';
    case 'undefined': return 'void';
    case 'object':
      if (v === null) return 'void';
      if (v instanceof Uint8Array) return 'longstr';
      if (v instanceof Date) return 'timestamp';
      if (Array.isArray(v)) return 'array';
      return 'table';
    default: return 'longstr';
  }
}

/** Normalises any accepted value to plain JSON-safe data. Bigints beyond 2^53 lose precision. */
export function normalize(v: unknown): ArgValue {
  const inner = untag(v);
  switch (typeof inner) {
    case 'undefined': return null;
    case 'boolean': case 'string': return inner;
    // -0 as 0: the metadata log's JSON writes -0 as 0, and every replica must hold what the proposer held.
    case 'number': return inner === 0 ? 0 : inner;
    case 'bigint': return Number(inner);
    case 'object': {
      if (inner === null) return null;
      if (inner instanceof Uint8Array) return utf8.decode(inner);
      if (inner instanceof Date) return Math.floor(inner.getTime() / 1000);
      if (Array.isArray(inner)) return inner.map(normalize);
      return normalizeTable(inner as FieldTable);
    }
    default: return String(inner);
  }
}

export function normalizeTable(table: FieldTable | undefined | null): ArgTable {
  const out: Record<string, ArgValue> = {};
  if (table === undefined || table === null) return out;
  for (const key of Object.keys(table)) out[key] = normalize(table[key]);
  return out;
}

/** An integer value of any integer field type, else null (floats and strings are not integers). */
export function readInt(v: unknown): number | null {
  const type = typeNameOf(v);
  if (!integerTypes.has(type)) return null;
  const inner = untag(v);
  if (typeof inner === 'bigint') return Number(inner);
  if (typeof inner === 'number' && Number.isInteger(inner)) return inner;
  return null;
}

/** A string from a longstr (string or bytes), else null. */
export function readString(v: unknown): string | null {
  const inner = untag(v);
  if (typeof inner === 'string') return inner;
  if (inner instanceof Uint8Array) return utf8.decode(inner);
  return null;
}

export function readBool(v: unknown): boolean | null {
  const inner = untag(v);
  return typeof inner === 'boolean' ? inner : null;
}

export function hasKey(table: FieldTable | ArgTable, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(table, key) && table[key] !== undefined;
}

// Integers and floats are one class: normalised storage no longer tells 5 from 5.0.
type TypeClass = 'number' | 'string' | 'bool' | 'void' | 'array' | 'table' | 'other';

function typeClassOf(type: string): TypeClass {
  if (integerTypes.has(type)) return 'number';
  if (type === 'float' || type === 'double' || type === 'decimal') return 'number';
  if (type === 'longstr' || type === 'binary' || type === 'string') return 'string';
  if (type === 'bool' || type === 'boolean') return 'bool';
  if (type === 'void') return 'void';
  if (type === 'array') return 'array';
  if (type === 'table') return 'table';
  return 'other';
}

/** Deep equality of two normalised values. */
export function argEquals(a: ArgValue, b: ArgValue): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!argEquals(a[i] as ArgValue, b[i] as ArgValue)) return false;
    return true;
  }
  const ta = a as ArgTable;
  const tb = b as ArgTable;
  const ka = Object.keys(ta);
  if (ka.length !== Object.keys(tb).length) return false;
  for (const k of ka) {
    if (!hasKey(tb, k) || !argEquals(ta[k] as ArgValue, tb[k] as ArgValue)) return false;
  }
  return true;
}

/**
 * Equivalence of a received raw argument and a stored one (RabbitMQ assert_args_equivalence):
 * same type class (all numeric types are one class) and the same value.
 */
export function argEquivalent(received: unknown, stored: ArgValue): boolean {
  const receivedClass = typeClassOf(typeNameOf(received));
  const storedClass = typeClassOf(inferredTypeName(stored));
  if (receivedClass !== storedClass) return false;
  return argEquals(normalize(received), stored);
}

/** RabbitMQ's rendering in inequivalence texts: `the value '5' of type 'long'` or `none`. */
export function describeRaw(v: unknown): string {
  if (v === undefined) return 'none';
  return `the value '${formatValue(normalize(v))}' of type '${typeNameOf(v)}'`;
}

export function describeStored(v: ArgValue | undefined): string {
  if (v === undefined) return 'none';
  return `the value '${formatValue(v)}' of type '${inferredTypeName(v)}'`;
}

export function formatValue(v: ArgValue): string {
  if (typeof v === 'string') return v;
  if (v === null) return 'void';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Type-agnostic equality of a stored binding value and a raw message header (headers exchange).
 *  Allocation-free for numbers, strings and ASCII bytes. */
export function headerValueEquals(stored: ArgValue, raw: unknown): boolean {
  const inner = untag(raw);
  switch (typeof inner) {
    case 'number': return typeof stored === 'number' && stored === inner;
    case 'bigint': return typeof stored === 'number' && Number.isInteger(stored)
      && BigInt(stored) === inner;
    case 'string': return stored === inner;
    case 'boolean': return stored === inner;
    case 'object':
      if (inner === null) return stored === null;
      if (inner instanceof Uint8Array) return typeof stored === 'string' && bytesEqualString(inner, stored);
      return argEquals(stored, normalize(inner));
    default: return false;
  }
}

function bytesEqualString(bytes: Uint8Array, s: string): boolean {
  let ascii = true;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) { ascii = false; break; }
  if (!ascii) return utf8.decode(bytes) === s;
  if (bytes.length !== s.length) return false;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== s.charCodeAt(i)) return false;
  return true;
}
