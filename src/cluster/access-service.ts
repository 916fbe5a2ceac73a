// Users, vhosts and permissions as operators change them (`espresso ctl add-user ...` over the
// cluster port, the management API over HTTP): each change is one metadata entry, committed by the
// metadata group and applied on every node, with rabbitmqctl's rules on top of the model's upsert
// (add-user of an existing user and change-password of a missing one are refused). Passwords
// arrive already hashed (RabbitMQ's salted SHA-256): the plain text never crosses the cluster.

import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import {
  findUser, listVhosts, type MetadataCommand, type MetadataOk, type MetadataResult, type MetadataState, type PermissionRecord,
} from '../model/index.js';
import { decodeJson, encodeJson } from './metadata-entries.js';
import type { ClusterRpc } from './rpc.js';

export const AccessMethod = {
  change: 'ctl.access-change',
  list: 'ctl.access-list',
} as const;

/** The metadata door access changes need (the replicated metadata client is one). */
export interface AccessMetadata {
  apply(command: MetadataCommand): Promise<MetadataResult>;
  /** Read barrier: what the cluster committed before the call is applied here after it. */
  sync(): Promise<void>;
  readonly state: MetadataState;
}

export type AccessChange =
  | { op: 'add-user'; name: string; passwordHash: string; tags: string[] }
  /** Creates or replaces (PUT /api/users/{name}); passwordHash '' = no password login. */
  | { op: 'put-user'; name: string; passwordHash: string; tags: string[] }
  | { op: 'delete-user'; name: string }
  | { op: 'change-password'; name: string; passwordHash: string }
  | { op: 'set-user-tags'; name: string; tags: string[] }
  | { op: 'add-vhost'; name: string }
  | { op: 'delete-vhost'; name: string }
  | { op: 'set-permissions'; user: string; vhost: string; configure: string; write: string; read: string }
  | { op: 'clear-permissions'; user: string; vhost: string };

export interface AccessListRequest {
  what: 'users' | 'vhosts' | 'permissions';
  /** permissions: only this vhost's. */
  vhost?: string;
}

export interface UserRow { name: string; tags: string[] }
export type AccessRows = UserRow[] | string[] | PermissionRecord[];

/** What a change answers: whether it made something new. */
export interface AccessAnswer { created: boolean }

/** A refused change: `notFound` says the user or vhost named does not exist (HTTP 404 vs 400). */
export class AccessRefused extends OperatingError {
  constructor(message: string, readonly notFound: boolean) {
    super(OperatingErrorCode.BadConfig, message, { notFound: notFound ? 1 : 0 });
  }
}

/** Applies one change, or throws AccessRefused naming what is wrong. */
export async function changeAccess(m: AccessMetadata, c: AccessChange): Promise<AccessAnswer> {
  await m.sync(); // checks below read a state that holds every change committed before this one
  const user = (name: string): { tags: readonly string[]; passwordHash: string } => {
    const u = findUser(m.state, name);
    if (u === undefined) throw new AccessRefused(`user '${name}' does not exist`, true);
    return u;
  };
  switch (c.op) {
    case 'add-user':
      if (findUser(m.state, c.name) !== undefined) throw new AccessRefused(`user '${c.name}' already exists`, false);
      return applied(m, { kind: 'addUser', name: checkedName(c.name, 'user'), passwordHash: c.passwordHash, tags: cleanTags(c.tags) });
    case 'put-user':
      return applied(m, { kind: 'addUser', name: checkedName(c.name, 'user'), passwordHash: c.passwordHash, tags: cleanTags(c.tags) });
    case 'delete-user':
      user(c.name);
      return applied(m, { kind: 'deleteUser', name: c.name });
    case 'change-password':
      return applied(m, { kind: 'addUser', name: c.name, passwordHash: c.passwordHash, tags: [...user(c.name).tags] });
    case 'set-user-tags':
      return applied(m, { kind: 'addUser', name: c.name, passwordHash: user(c.name).passwordHash, tags: cleanTags(c.tags) });
    case 'add-vhost':
      return applied(m, { kind: 'addVhost', name: checkedName(c.name, 'vhost') });
    case 'delete-vhost':
      if (!m.state.vhosts.has(c.name)) throw new AccessRefused(`vhost '${c.name}' does not exist`, true);
      return applied(m, { kind: 'deleteVhost', name: c.name });
    case 'set-permissions':
      user(c.user);
      if (!m.state.vhosts.has(c.vhost)) throw new AccessRefused(`vhost '${c.vhost}' does not exist`, true);
      return applied(m, { kind: 'setPermissions', user: c.user, vhost: c.vhost, configure: c.configure, write: c.write, read: c.read });
    case 'clear-permissions':
      user(c.user);
      if (!m.state.vhosts.has(c.vhost)) throw new AccessRefused(`vhost '${c.vhost}' does not exist`, true);
      return applied(m, { kind: 'clearPermissions', user: c.user, vhost: c.vhost });
  }
}

/** Users (name, tags; never hashes), vhost names, or permissions (of one vhost), sorted. */
export async function listAccess(m: AccessMetadata, r: AccessListRequest): Promise<AccessRows> {
  await m.sync(); // a user added through another node a moment ago is listed
  const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  switch (r.what) {
    case 'users':
      return [...m.state.users.values()].map((u) => ({ name: u.name, tags: [...u.tags] })).sort((a, b) => byName(a.name, b.name));
    case 'vhosts':
      return listVhosts(m.state).sort(byName);
    case 'permissions': {
      if (r.vhost !== undefined && !m.state.vhosts.has(r.vhost)) throw new AccessRefused(`vhost '${r.vhost}' does not exist`, true);
      const vhosts = r.vhost === undefined ? listVhosts(m.state).sort(byName) : [r.vhost];
      return vhosts.flatMap((v) => [...(m.state.vhosts.get(v)?.permissions.values() ?? [])].sort((a, b) => byName(a.user, b.user)));
    }
  }
}

/** Registers the two ctl methods; `metadata` is undefined while the node still starts. */
export function serveAccess(rpc: ClusterRpc, metadata: () => AccessMetadata | undefined): void {
  const started = (): AccessMetadata => {
    const m = metadata();
    if (m !== undefined) return m;
    throw new OperatingError(OperatingErrorCode.NotLeader, 'the node is still starting: it waits for the metadata group to elect a leader', { leader: '' });
  };
  rpc.handle(AccessMethod.change, async (_from, p) => encodeJson(await changeAccess(started(), decodeJson<AccessChange>(p))));
  rpc.handle(AccessMethod.list, async (_from, p) => encodeJson(await listAccess(started(), decodeJson<AccessListRequest>(p))));
}

async function applied(m: AccessMetadata, command: MetadataCommand): Promise<AccessAnswer> {
  const r = await m.apply(command);
  if (!r.ok) throw new AccessRefused(r.replyText.replace(/^[A-Z_]+ - /, ''), r.replyCode === 404);
  return { created: (r as MetadataOk).created };
}

/** Names as RabbitMQ takes them: any non-empty UTF-8 up to 255 bytes (an AMQP shortstr). */
function checkedName(name: string, what: 'user' | 'vhost'): string {
  if (typeof name !== 'string' || name === '') throw new AccessRefused(`a ${what} name must not be empty`, false);
  if (Buffer.byteLength(name, 'utf8') > 255) throw new AccessRefused(`the ${what} name '${name.slice(0, 40)}...' is longer than 255 bytes`, false);
  return name;
}

/** Tags from a list, trimmed, empty ones and duplicates dropped (order kept). */
function cleanTags(tags: readonly string[]): string[] {
  return [...new Set(tags.map((t) => t.trim()).filter((t) => t !== ''))];
}
