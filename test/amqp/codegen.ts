// Generates src/amqp/generated-methods.ts from the vendored RabbitMQ spec JSON: one interface per
// method, the union, id tables, straight-line decoders and encoders, and basic properties.
// Run `npx tsx test/amqp/codegen.ts` after changing the spec; a test fails if the file is stale.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface SpecArgument {
  readonly name: string;
  readonly type?: string;
  readonly domain?: string;
  readonly 'default-value'?: unknown;
}
export interface SpecMethod {
  readonly name: string;
  readonly id: number;
  readonly arguments: readonly SpecArgument[];
  readonly synchronous?: boolean;
  readonly content?: boolean;
}
export interface SpecClass {
  readonly name: string;
  readonly id: number;
  readonly methods: readonly SpecMethod[];
  readonly properties?: readonly { readonly name: string; readonly type: string }[];
}
export interface Spec {
  readonly domains: readonly (readonly [string, string])[];
  readonly constants: readonly { readonly name: string; readonly value: number; readonly class?: string }[];
  readonly classes: readonly SpecClass[];
}

export const specPath = fileURLToPath(new URL('../../src/amqp/spec/amqp-rabbitmq-0.9.1.json', import.meta.url));
export const generatedPath = fileURLToPath(new URL('../../src/amqp/generated-methods.ts', import.meta.url));

export function loadSpec(): Spec {
  return JSON.parse(readFileSync(specPath, 'utf8')) as Spec;
}

export function camel(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

export function pascal(name: string): string {
  const c = camel(name.replace(/\./g, '-'));
  return c.charAt(0).toUpperCase() + c.slice(1);
}

/** The primitive type of an argument, through its domain. */
export function argType(spec: Spec, a: SpecArgument): string {
  if (a.type !== undefined) return a.type;
  const d = spec.domains.find(([name]) => name === a.domain);
  if (d === undefined) throw new Error(`unknown domain ${String(a.domain)}`);
  return d[1];
}

const tsType: Record<string, string> = {
  bit: 'boolean', octet: 'number', short: 'number', long: 'number', longlong: 'number',
  timestamp: 'number', shortstr: 'string', longstr: 'Buffer', table: 'FieldTable',
};

const readExpr: Record<string, string> = {
  octet: 'r.octet()', short: 'r.short()', long: 'r.long()', longlong: "r.longlong('longlong')",
  timestamp: "r.longlong('timestamp')", shortstr: 'r.shortstr()', longstr: 'r.longstr()', table: 'readFieldTable(r)',
};

const writeStmt: Record<string, (v: string) => string> = {
  octet: (v) => `w.octet(${v});`, short: (v) => `w.short(${v});`, long: (v) => `w.long(${v});`,
  longlong: (v) => `w.longlong(${v});`, timestamp: (v) => `w.longlong(${v});`, shortstr: (v) => `w.shortstr(${v});`,
  longstr: (v) => `w.longstr(${v});`, table: (v) => `writeFieldTable(w, ${v});`,
};

interface Flat {
  readonly cls: SpecClass;
  readonly m: SpecMethod;
  readonly name: string;
  readonly iface: string;
  readonly args: readonly { readonly field: string; readonly wire: string; readonly type: string }[];
}

function flatten(spec: Spec): Flat[] {
  const out: Flat[] = [];
  for (const cls of spec.classes) {
    for (const m of cls.methods) {
      const name = `${cls.name}.${m.name}`;
      const args = m.arguments.map((a) => ({ field: camel(a.name), wire: a.name, type: argType(spec, a) }));
      out.push({ cls, m, name, iface: pascal(name), args });
    }
  }
  return out;
}

function interfaces(methods: readonly Flat[]): string[] {
  const lines: string[] = [];
  for (const f of methods) {
    lines.push(`/** ${f.name} (${f.cls.id}/${f.m.id})${f.m.content === true ? ', followed by content' : ''} */`);
    lines.push(`export interface ${f.iface} {`);
    lines.push(`  readonly name: '${f.name}';`);
    for (const a of f.args) lines.push(`  readonly ${a.field}: ${tsType[a.type]};`);
    lines.push('}', '');
  }
  lines.push('export type AmqpMethod =');
  for (const f of methods) lines.push(`  | ${f.iface}`);
  lines[lines.length - 1] += ';';
  lines.push('');
  return lines;
}

function infoTable(methods: readonly Flat[]): string[] {
  const lines = ['/** Ids, flags and argument layout of every method, in spec order. */',
    'export const methodInfos: readonly MethodInfo[] = ['];
  for (const f of methods) {
    const fields = f.args.map((a) => `{ field: '${a.field}', wire: '${a.wire}', type: '${a.type}' }`).join(', ');
    lines.push(`  { name: '${f.name}', classId: ${f.cls.id}, methodId: ${f.m.id}, synchronous: ${f.m.synchronous === true}, `
      + `content: ${f.m.content === true}, fields: [${fields}] },`);
  }
  lines.push('];', '');
  return lines;
}

/** Groups of adjacent bits share an octet, least significant bit first. */
function decoder(f: Flat): string[] {
  const body: string[] = [];
  const parts: string[] = [];
  let bitVar = '';
  let bit = 8;
  let octets = 0;
  for (const a of f.args) {
    if (a.type === 'bit') {
      if (bit === 8) {
        bitVar = `bits${octets++}`;
        body.push(`      const ${bitVar} = r.octet();`);
        bit = 0;
      }
      parts.push(`${a.field}: (${bitVar} & ${1 << bit}) !== 0`);
      bit++;
      continue;
    }
    bit = 8;
    // Locals get an underscore: a field may be called `arguments`, which strict code cannot bind.
    body.push(`      const ${a.field}_ = ${readExpr[a.type]};`);
    parts.push(`${a.field}: ${a.field}_`);
  }
  const literal = [`name: '${f.name}'`, ...parts].join(', ');
  return [`    case ${f.cls.id * 65536 + f.m.id}: {`, ...body, `      return { ${literal} };`, '    }'];
}

function encoder(f: Flat): string[] {
  const body: string[] = [`      w.short(${f.cls.id});`, `      w.short(${f.m.id});`];
  let group: string[] = [];
  const flush = (): void => {
    if (group.length > 0) body.push(`      w.octet(${group.join(' | ')});`);
    group = [];
  };
  for (const a of f.args) {
    if (a.type === 'bit') {
      if (group.length === 8) flush();
      group.push(`(m.${a.field} ? ${1 << group.length} : 0)`);
      continue;
    }
    flush();
    body.push(`      ${writeStmt[a.type]!(`m.${a.field}`)}`);
  }
  flush();
  return [`    case '${f.name}': {`, ...body, '      return;', '    }'];
}

function properties(spec: Spec): string[] {
  const basic = spec.classes.find((c) => c.name === 'basic');
  if (basic?.properties === undefined) throw new Error('spec has no basic properties');
  const props = basic.properties.map((p, i) => ({ field: camel(p.name), wire: p.name, type: p.type, flag: 1 << (15 - i) }));
  const lines = ['/** Content properties of class basic; absent ones are undefined (flag bit clear). */',
    'export interface BasicProperties {'];
  for (const p of props) lines.push(`  readonly ${p.field}?: ${tsType[p.type]};`);
  lines.push('}', '', '/** Property names, types and flag bits, bit 15 first. */',
    'export const basicPropertyInfos: readonly PropertyInfo[] = [');
  for (const p of props) {
    lines.push(`  { field: '${p.field}', wire: '${p.wire}', type: '${p.type}', flag: 0x${p.flag.toString(16)} },`);
  }
  lines.push('];', '', '/** Reads the properties present in `flags` (the caller read the flags word). */',
    'export function readBasicProperties(flags: number, r: Reader): BasicProperties {',
    '  const p: { -readonly [K in keyof BasicProperties]: BasicProperties[K] } = {};');
  for (const p of props) lines.push(`  if ((flags & 0x${p.flag.toString(16)}) !== 0) p.${p.field} = ${readExpr[p.type]};`);
  lines.push('  return p;', '}', '', '/** Writes the flags word and the properties present. */',
    'export function writeBasicProperties(w: Writer, p: BasicProperties): void {',
    '  const flagsAt = w.pos;', '  w.short(0);', '  let flags = 0;');
  for (const p of props) {
    lines.push(`  if (p.${p.field} !== undefined) {`, `    flags |= 0x${p.flag.toString(16)};`,
      `    ${writeStmt[p.type]!(`p.${p.field}`)}`, '  }');
  }
  lines.push('  w.buf.writeUInt16BE(flags, flagsAt);', '}', '');
  return lines;
}

export function generate(spec: Spec): string {
  const methods = flatten(spec);
  const lines = [
    '// GENERATED by test/amqp/codegen.ts from src/amqp/spec/amqp-rabbitmq-0.9.1.json: do not edit by hand.',
    '// One interface per AMQP method, the AmqpMethod union, ids and layouts, decoders, encoders, basic properties.',
    '',
    "import { readFieldTable, writeFieldTable, type FieldTable } from './field-table.js';",
    "import type { Reader, Writer } from './wire.js';",
    '',
    "export type ArgType = 'bit' | 'octet' | 'short' | 'long' | 'longlong' | 'shortstr' | 'longstr' | 'table' | 'timestamp';",
    '',
    'export interface MethodInfo {',
    "  readonly name: AmqpMethod['name'];",
    '  readonly classId: number;',
    '  readonly methodId: number;',
    '  readonly synchronous: boolean;',
    '  /** Followed by a content header and body frames. */',
    '  readonly content: boolean;',
    '  readonly fields: readonly { readonly field: string; readonly wire: string; readonly type: ArgType }[];',
    '}',
    '',
    'export interface PropertyInfo {',
    '  readonly field: keyof BasicProperties;',
    '  readonly wire: string;',
    "  readonly type: 'shortstr' | 'table' | 'octet' | 'timestamp';",
    '  readonly flag: number;',
    '}',
    '',
    '/** Class ids by class name. */',
    'export const classIds = {',
    ...spec.classes.map((c) => `  ${camel(c.name)}: ${c.id},`),
    '} as const;',
    '',
    ...interfaces(methods),
    ...infoTable(methods),
    '/** Decodes the fields after class and method id; undefined for an id pair the spec does not define. */',
    'export function readMethodFields(classId: number, methodId: number, r: Reader): AmqpMethod | undefined {',
    '  switch (classId * 65536 + methodId) {',
    ...methods.flatMap(decoder),
    '    default:',
    '      return undefined;',
    '  }',
    '}',
    '',
    '/** Writes class id, method id and fields. */',
    'export function writeMethodFields(w: Writer, m: AmqpMethod): void {',
    '  switch (m.name) {',
    ...methods.flatMap(encoder),
    '  }',
    '}',
    '',
    ...properties(spec),
  ];
  return lines.join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(generatedPath, generate(loadSpec()));
  console.log(`wrote ${generatedPath}`);
}
