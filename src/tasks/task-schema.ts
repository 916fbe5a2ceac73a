// Task input validation against a task type's JSON schema: the subset of JSON Schema (draft
// 2020-12 keywords) that task inputs need — type, properties, required, additionalProperties,
// items, enum, const, minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength,
// pattern, minItems, maxItems. Every violation is named by its path (`input.count`), so a 400 can
// list them all. A schema that uses a keyword outside the subset is refused when it is defined.

export interface SchemaProblem {
  readonly path: string;
  readonly message: string;
}

const known = new Set([
  '$schema', '$id', 'title', 'description', 'default', 'examples', 'type', 'properties', 'required', 'additionalProperties',
  'items', 'enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength',
  'pattern', 'minItems', 'maxItems',
]);
const types = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);
const problemsMax = 50;

/** Problems of the schema itself (unknown keywords, wrong shapes); empty when usable. */
export function checkSchema(schema: unknown, path = 'schema'): SchemaProblem[] {
  if (typeof schema === 'boolean') return [];
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return [{ path, message: 'must be an object or a boolean' }];
  const out: SchemaProblem[] = [];
  const s = schema as Record<string, unknown>;
  for (const k of Object.keys(s)) if (!known.has(k)) out.push({ path: `${path}.${k}`, message: `keyword '${k}' is not supported` });
  const t = s['type'];
  const tl = Array.isArray(t) ? t : t === undefined ? [] : [t];
  for (const x of tl) if (typeof x !== 'string' || !types.has(x)) out.push({ path: `${path}.type`, message: `unknown type ${JSON.stringify(x)}` });
  if (s['properties'] !== undefined) {
    const p = s['properties'];
    if (p === null || typeof p !== 'object' || Array.isArray(p)) out.push({ path: `${path}.properties`, message: 'must be an object' });
    else for (const [k, v] of Object.entries(p)) out.push(...checkSchema(v, `${path}.properties.${k}`));
  }
  if (s['required'] !== undefined && (!Array.isArray(s['required']) || !s['required'].every((r) => typeof r === 'string'))) {
    out.push({ path: `${path}.required`, message: 'must be an array of strings' });
  }
  if (s['additionalProperties'] !== undefined) out.push(...checkSchema(s['additionalProperties'], `${path}.additionalProperties`));
  if (s['items'] !== undefined) out.push(...checkSchema(s['items'], `${path}.items`));
  if (s['enum'] !== undefined && !Array.isArray(s['enum'])) out.push({ path: `${path}.enum`, message: 'must be an array' });
  for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems', 'maxItems']) {
    if (s[k] !== undefined && typeof s[k] !== 'number') out.push({ path: `${path}.${k}`, message: 'must be a number' });
  }
  if (s['pattern'] !== undefined) {
    try {
      new RegExp(String(s['pattern']), 'u');
    } catch {
      out.push({ path: `${path}.pattern`, message: 'is not a valid regular expression' });
    }
  }
  return out;
}

/** Every way `value` fails `schema` (at most problemsMax), each with its path. */
export function validate(schema: unknown, value: unknown, path = 'input'): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  check(schema, value, path, out);
  return out;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function hasType(t: string, v: unknown): boolean {
  if (t === 'integer') return typeof v === 'number' && Number.isInteger(v);
  if (t === 'number') return typeof v === 'number' && Number.isFinite(v);
  return typeOf(v) === t;
}

function check(schema: unknown, v: unknown, path: string, out: SchemaProblem[]): void {
  if (out.length >= problemsMax || schema === true || schema === undefined) return;
  if (schema === false) return void out.push({ path, message: 'is not allowed' });
  const s = schema as Record<string, unknown>;
  const t = s['type'];
  if (t !== undefined) {
    const tl = (Array.isArray(t) ? t : [t]) as string[];
    if (!tl.some((x) => hasType(x, v))) return void out.push({ path, message: `must be ${tl.join(' or ')} (got ${typeOf(v)})` });
  }
  if (Array.isArray(s['enum']) && !s['enum'].some((e) => same(e, v))) out.push({ path, message: `must be one of ${JSON.stringify(s['enum'])}` });
  if ('const' in s && !same(s['const'], v)) out.push({ path, message: `must be ${JSON.stringify(s['const'])}` });
  if (typeof v === 'number') checkNumber(s, v, path, out);
  if (typeof v === 'string') checkString(s, v, path, out);
  if (Array.isArray(v)) checkArray(s, v, path, out);
  else if (v !== null && typeof v === 'object') checkObject(s, v as Record<string, unknown>, path, out);
}

function checkNumber(s: Record<string, unknown>, v: number, path: string, out: SchemaProblem[]): void {
  const n = (k: string): number | undefined => (typeof s[k] === 'number' ? (s[k] as number) : undefined);
  const min = n('minimum'), max = n('maximum'), xmin = n('exclusiveMinimum'), xmax = n('exclusiveMaximum');
  if (min !== undefined && v < min) out.push({ path, message: `must be >= ${min}` });
  if (max !== undefined && v > max) out.push({ path, message: `must be <= ${max}` });
  if (xmin !== undefined && v <= xmin) out.push({ path, message: `must be > ${xmin}` });
  if (xmax !== undefined && v >= xmax) out.push({ path, message: `must be < ${xmax}` });
}

function checkString(s: Record<string, unknown>, v: string, path: string, out: SchemaProblem[]): void {
  const len = [...v].length;
  if (typeof s['minLength'] === 'number' && len < s['minLength']) out.push({ path, message: `must have at least ${s['minLength']} characters` });
  if (typeof s['maxLength'] === 'number' && len > s['maxLength']) out.push({ path, message: `must have at most ${s['maxLength']} characters` });
  if (typeof s['pattern'] === 'string' && !new RegExp(s['pattern'], 'u').test(v)) out.push({ path, message: `must match ${s['pattern']}` });
}

function checkArray(s: Record<string, unknown>, v: unknown[], path: string, out: SchemaProblem[]): void {
  if (typeof s['minItems'] === 'number' && v.length < s['minItems']) out.push({ path, message: `must have at least ${s['minItems']} items` });
  if (typeof s['maxItems'] === 'number' && v.length > s['maxItems']) out.push({ path, message: `must have at most ${s['maxItems']} items` });
  if (s['items'] !== undefined) v.forEach((x, i) => check(s['items'], x, `${path}[${i}]`, out));
}

function checkObject(s: Record<string, unknown>, v: Record<string, unknown>, path: string, out: SchemaProblem[]): void {
  const props = (s['properties'] ?? {}) as Record<string, unknown>;
  for (const r of (s['required'] ?? []) as string[]) if (!Object.hasOwn(v, r)) out.push({ path: `${path}.${r}`, message: 'is required' });
  for (const [k, x] of Object.entries(v)) {
    if (Object.hasOwn(props, k)) check(props[k], x, `${path}.${k}`, out);
    else if (s['additionalProperties'] !== undefined) check(s['additionalProperties'], x, `${path}.${k}`, out);
  }
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
