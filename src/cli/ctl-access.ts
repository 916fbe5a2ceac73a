// `espresso ctl` for users, vhosts and permissions, as rabbitmqctl names them: add-user,
// delete-user, change-password, set-user-tags, list-users, add-vhost, delete-vhost, list-vhosts,
// set-permissions, clear-permissions, list-permissions. The password is hashed here (RabbitMQ's
// salted SHA-256), so the node is sent the hash, never the password.

import { hashPassword } from '../broker/auth.js';
import { AccessMethod, type AccessChange, type AccessListRequest, type UserRow } from '../cluster/access-service.js';
import type { PermissionRecord } from '../model/index.js';
import { ConfigError, ExitCode } from './config-loader.js';
import type { SmallArgs } from './small-flags.js';

export const accessHelp = `  add-user NAME PASSWORD      create a user (no tags, no permissions) [--tags a,b]
  delete-user NAME            delete a user and its permissions
  change-password NAME PASSWORD   set a user's password
  set-user-tags NAME [TAG...] set a user's tags (administrator, monitoring, policymaker, management,
                              or none: only AMQP)
  list-users                  users and their tags
  add-vhost NAME              create a virtual host
  delete-vhost NAME           delete a vhost: its queues on every node, its exchanges, bindings,
                              policies and permissions; its connections are closed (320)
  list-vhosts                 the virtual hosts
  set-permissions USER CONF WRITE READ   regexes over resource names a user may configure, write
                              and read in --vhost (default /); '' permits nothing
  clear-permissions USER      remove a user's permissions in --vhost (default /)
  list-permissions            every user's permissions in --vhost, or in every vhost
`;

export const accessFlags = ['--tags'] as const;

/** The request of an access command, or undefined when `command` is not one. */
export function accessRequest(command: string, args: SmallArgs): { method: string; payload: AccessChange | AccessListRequest } | undefined {
  const words = args.words.slice(1);
  const vhost = args.flags.get('--vhost') ?? '/';
  const arity = (n: number, usage: string): string[] => {
    if (words.length !== n) throw new ConfigError(`espresso ctl ${command} needs ${usage}`, ExitCode.Usage);
    return words;
  };
  const change = (payload: AccessChange): { method: string; payload: AccessChange } => ({ method: AccessMethod.change, payload });
  const list = (payload: AccessListRequest): { method: string; payload: AccessListRequest } => {
    arity(0, 'no argument');
    return { method: AccessMethod.list, payload };
  };
  switch (command) {
    case 'add-user': {
      const [name, password] = arity(2, 'NAME PASSWORD');
      return change({ op: 'add-user', name: name!, passwordHash: hashPassword(password!), tags: (args.flags.get('--tags') ?? '').split(',') });
    }
    case 'delete-user': return change({ op: 'delete-user', name: arity(1, 'NAME')[0]! });
    case 'change-password': {
      const [name, password] = arity(2, 'NAME PASSWORD');
      return change({ op: 'change-password', name: name!, passwordHash: hashPassword(password!) });
    }
    case 'set-user-tags': {
      if (words.length < 1) throw new ConfigError('espresso ctl set-user-tags needs NAME [TAG...]', ExitCode.Usage);
      return change({ op: 'set-user-tags', name: words[0]!, tags: words.slice(1).flatMap((t) => t.split(',')) });
    }
    case 'list-users': return list({ what: 'users' });
    case 'add-vhost': return change({ op: 'add-vhost', name: arity(1, 'NAME')[0]! });
    case 'delete-vhost': return change({ op: 'delete-vhost', name: arity(1, 'NAME')[0]! });
    case 'list-vhosts': return list({ what: 'vhosts' });
    case 'set-permissions': {
      const [user, configure, write, read] = arity(4, 'USER CONF WRITE READ (regexes; quote them)');
      return change({ op: 'set-permissions', user: user!, vhost, configure: configure!, write: write!, read: read! });
    }
    case 'clear-permissions': return change({ op: 'clear-permissions', user: arity(1, 'USER')[0]!, vhost });
    case 'list-permissions': return list({ what: 'permissions', ...(args.flags.has('--vhost') ? { vhost } : {}) });
    default: return undefined;
  }
}

/** What the command printed: a line for a change, a table for a listing. */
export function formatAccess(request: { payload: AccessChange | AccessListRequest }, value: unknown, table: (head: string[], rows: string[][]) => string): string {
  const p = request.payload;
  if ('op' in p) {
    const created = (value as { created: boolean }).created;
    switch (p.op) {
      case 'add-user': return `user '${p.name}' added\n`;
      case 'add-vhost': return created ? `vhost '${p.name}' added\n` : `vhost '${p.name}' exists already\n`;
      case 'delete-vhost': return `vhost '${p.name}' deleted\n`;
      case 'set-permissions': return `permissions of '${p.user}' in vhost '${p.vhost}' set\n`;
      default: return 'ok\n';
    }
  }
  switch (p.what) {
    case 'users': return table(['USER', 'TAGS'], (value as UserRow[]).map((u) => [u.name, u.tags.join(',')]));
    case 'vhosts': return table(['NAME'], (value as string[]).map((v) => [v]));
    case 'permissions': return table(['VHOST', 'USER', 'CONFIGURE', 'WRITE', 'READ'], (value as PermissionRecord[]).map((r) => [r.vhost, r.user, r.configure, r.write, r.read]));
  }
}
