// HTTP Basic authentication against the broker's own users, as RabbitMQ's management and
// Prometheus endpoints do it: the user's password hash, the loopback-only users (guest), and a
// management tag (administrator, monitoring, policymaker or management) to use HTTP at all.
// Failures answer with RabbitMQ's statuses and error bodies (401, with WWW-Authenticate when no
// credentials came).

import { checkPassword, isLoopback } from '../broker/auth.js';
import type { NodeContext } from '../broker/node-context.js';
import { findUser } from '../model/index.js';
import { errorResponse, HttpError, type HttpRequest, type HttpResponse } from './server.js';

export const managementTags: readonly string[] = ['administrator', 'monitoring', 'policymaker', 'management'];

export interface HttpUser {
  readonly name: string;
  readonly tags: readonly string[];
}

/** The user of a request, or the response refusing it. */
export type Authenticate = (req: HttpRequest) => HttpUser | HttpResponse;

const challenge: HttpResponse = { status: 401, headers: { 'www-authenticate': 'Basic realm="espresso"' } };

/** user:password of an Authorization: Basic header; null when absent or not Basic. */
export function basicCredentials(header: string | undefined): { user: string; pass: string } | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (m === null) return null;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return null;
  return { user: text.slice(0, colon), pass: text.slice(colon + 1) };
}

/** Checks credentials against the node's users (metadata): one of `tags` is required. */
export function brokerAuthenticator(ctx: NodeContext, tags: readonly string[] = managementTags): Authenticate {
  return (req) => {
    const creds = basicCredentials(req.headers.authorization);
    if (creds === null) return challenge;
    const user = findUser(ctx.metadata.state, creds.user);
    if (user === undefined || !checkPassword(creds.pass, user.passwordHash)) return errorResponse(401, 'not_authorized', 'Not_Authorized');
    if (ctx.config.loopbackUsers.includes(creds.user) && !isLoopback(req.remoteAddress)) {
      return errorResponse(401, 'not_authorised', 'User can only log in via localhost');
    }
    if (!user.tags.some((t) => tags.includes(t))) {
      const reason = tags.length === 1 && tags[0] === 'administrator' ? 'Not administrator user' : 'Not management user';
      return errorResponse(401, 'not_authorised', reason);
    }
    return { name: user.name, tags: user.tags };
  };
}

/** The authenticated user, or throws the refusal (HttpListener answers it). */
export function requireUser(authenticate: Authenticate, req: HttpRequest): HttpUser {
  const r = authenticate(req);
  if ('status' in r) throw new HttpError(r);
  return r;
}
