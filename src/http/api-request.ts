// What every management API handler shares: who asks and what they may see (RabbitMQ's tag
// classes: administrator, monitoring, policymaker, management, and per-vhost permissions), JSON
// bodies read and checked with RabbitMQ's 400s, model errors turned into RabbitMQ's statuses, and
// list answers sorted, trimmed to `columns` and paged as RabbitMQ pages them.

import type { HttpUser } from './basic-auth.js';
import { errorResponse, HttpError, jsonResponse, type HttpRequest, type HttpResponse } from './server.js';
import type { MetadataState, ModelError } from '../model/index.js';

export const apiLimits = {
  /** RabbitMQ's page_size maximum. */
  pageSizeMax: 500,
  pageSizeDefault: 100,
  /** Request bodies of the API (definitions imports are the large ones). */
  bodyBytesMax: 64 * 1024 * 1024,
} as const;

export const noContent: HttpResponse = { status: 204 };
export const created: HttpResponse = { status: 201 };

export function fail(status: number, error: string, reason: string): never {
  throw new HttpError(errorResponse(status, error, reason));
}

export function isAdmin(u: HttpUser): boolean {
  return u.tags.includes('administrator');
}

export function isMonitor(u: HttpUser): boolean {
  return u.tags.includes('administrator') || u.tags.includes('monitoring');
}

export function requireAdmin(u: HttpUser): void {
  if (!isAdmin(u)) fail(401, 'not_authorised', 'Not administrator user');
}

export function requireMonitor(u: HttpUser): void {
  if (!isMonitor(u)) fail(401, 'not_authorised', 'Not monitor user');
}

export function requirePolicymaker(u: HttpUser): void {
  if (!isAdmin(u) && !u.tags.includes('policymaker')) fail(401, 'not_authorised', 'User not authorised to access object');
}

/** Whether the user sees the vhost's objects: administrators all, others where they have permissions. */
export function seesVhost(state: MetadataState, u: HttpUser, vhost: string): boolean {
  const v = state.vhosts.get(vhost);
  return v !== undefined && (isAdmin(u) || v.permissions.has(u.name));
}

/** A vhost-scoped URL: 404 for a vhost that does not exist or that the user may not see, as RabbitMQ. */
export function requireVhost(state: MetadataState, u: HttpUser, vhost: string): void {
  if (!state.vhosts.has(vhost)) fail(404, 'not_found', 'Not Found');
  if (!seesVhost(state, u, vhost)) fail(404, 'not_found', 'Not Found');
}

/** The vhosts a listing covers: the one of the URL, or every one the user sees. */
export function vhostsOf(state: MetadataState, u: HttpUser, vhost: string | undefined): string[] {
  if (vhost !== undefined) {
    requireVhost(state, u, vhost);
    return [vhost];
  }
  return [...state.vhosts.keys()].filter((v) => seesVhost(state, u, v));
}

/** The request's JSON body: an object, or 400 as RabbitMQ answers (not_json). An empty body is {}. */
export async function jsonBody(req: HttpRequest): Promise<Record<string, unknown>> {
  const bytes = await req.body(apiLimits.bodyBytesMax);
  if (bytes.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    fail(400, 'bad_request', `not_json: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(400, 'bad_request', 'not_json');
  return value as Record<string, unknown>;
}

/** A field of a body that must have a type when present: 400 naming the field otherwise. */
export function field<T extends 'string' | 'boolean' | 'number' | 'object'>(body: Record<string, unknown>, key: string, type: T,
  required = false): (T extends 'string' ? string : T extends 'boolean' ? boolean : T extends 'number' ? number : Record<string, unknown>) | undefined {
  const v = body[key];
  if (v === undefined || v === null) {
    if (required) fail(400, 'bad_request', `[{key_missing,${key}}]`);
    return undefined;
  }
  const ok = type === 'object' ? typeof v === 'object' && !Array.isArray(v) : typeof v === type;
  if (!ok) fail(400, 'bad_request', `field '${key}' must be a ${type === 'object' ? 'JSON object' : type}, got ${JSON.stringify(v)}`);
  return v as never;
}

/** A model refusal as RabbitMQ's API answers it: 404 not found, 401 for access refused, else 400. */
export function modelFailure(e: ModelError): never {
  if (e.replyCode === 404) fail(404, 'not_found', e.replyText);
  if (e.replyCode === 403 || e.replyCode === 530) fail(401, 'not_authorised', 'Access refused.');
  fail(400, 'bad_request', e.replyText);
}

type Row = Record<string, unknown>;

function pathValue(row: Row, path: string): unknown {
  let v: unknown = row;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Row)[part];
  }
  return v;
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === undefined || a === null) return -1;
  if (b === undefined || b === null) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Keeps the given columns of a row (dotted paths keep the nested field). */
function pick(row: Row, columns: readonly string[]): Row {
  const out: Row = {};
  for (const c of columns) {
    const parts = c.split('.');
    const v = pathValue(row, c);
    if (v === undefined) continue;
    let at = out;
    for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Row;
    at[parts[parts.length - 1]!] = v;
  }
  return out;
}

/**
 * A list answer as RabbitMQ gives it: sorted by `sort` (default `defaultSort`), `sort_reverse`,
 * `columns`; with `page`, an object {filtered_count, item_count, items, page, page_count,
 * page_size, total_count} filtered by `name` (substring, or `use_regex`).
 */
export function listResponse(rows: Row[], query: URLSearchParams, defaultSort: readonly string[] = ['vhost', 'name']): HttpResponse {
  const sortKeys = query.get('sort') !== null && query.get('sort') !== '' ? [query.get('sort')!] : defaultSort;
  const sorted = rows.sort((a, b) => {
    for (const k of sortKeys) {
      const c = compare(pathValue(a, k), pathValue(b, k));
      if (c !== 0) return c;
    }
    return 0;
  });
  if (query.get('sort_reverse') === 'true') sorted.reverse();
  const columnsText = query.get('columns');
  const shape = (list: Row[]): Row[] => (columnsText === null || columnsText === '' ? list : list.map((r) => pick(r, columnsText.split(','))));
  const pageText = query.get('page');
  if (pageText === null) return jsonResponse(200, shape(sorted));
  const sizeText = query.get('page_size') ?? String(apiLimits.pageSizeDefault);
  const page = Number(pageText);
  const size = Number(sizeText);
  if (!Number.isInteger(page) || page < 1 || !Number.isInteger(size) || size < 1 || size > apiLimits.pageSizeMax) {
    fail(400, 'invalid_pagination_parameters', `Invalid pagination parameters: page number ${pageText}, page size ${sizeText}`);
  }
  const name = query.get('name') ?? '';
  let filtered = sorted;
  if (name !== '') {
    if (query.get('use_regex') === 'true') {
      let re: RegExp;
      try {
        re = new RegExp(name, 'i');
      } catch {
        fail(400, 'bad_request', `invalid regular expression '${name}'`);
      }
      filtered = sorted.filter((r) => re.test(String(r['name'] ?? '')));
    } else {
      const lower = name.toLowerCase();
      filtered = sorted.filter((r) => String(r['name'] ?? '').toLowerCase().includes(lower));
    }
  }
  const pageCount = Math.max(1, Math.ceil(filtered.length / size));
  if (page > pageCount) fail(400, 'page_out_of_range', `Page out of range, page: ${page} page size: ${size}, len: ${filtered.length}`);
  const items = shape(filtered.slice((page - 1) * size, page * size));
  return jsonResponse(200, {
    filtered_count: filtered.length, item_count: items.length, items, page, page_count: pageCount, page_size: size, total_count: rows.length,
  });
}

/** The user a route needs, or the refusal. */
export type Who = (req: HttpRequest) => HttpUser;
