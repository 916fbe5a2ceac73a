// An auth backend compatible with RabbitMQ's rabbitmq_auth_backend_http: the broker asks an HTTP
// service at four paths (user, vhost, resource, topic) with the same parameters, by GET (query
// string, the default) or POST (form-encoded), and reads the same answers: HTTP 200/201 with the
// trimmed body "allow", "allow <tag> <tag>...", "deny" or "deny <reason>" (case-insensitive). Any
// other status or body, a timeout or a refused connection counts as an error: access is refused.
// Settings (api.config, from pluginConfig["auth-http"]): http_method, user_path, vhost_path,
// resource_path, topic_path, request_timeout (ms), as RabbitMQ's auth_http.* keys.

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AuthzRequest, EspressoPlugin } from '../src/broker/plugin-api.js';

interface Settings {
  readonly method: 'GET' | 'POST';
  readonly userPath: string;
  readonly vhostPath: string;
  readonly resourcePath: string;
  readonly topicPath: string;
  readonly timeoutMs: number;
}

function settingsOf(c: { readonly [key: string]: unknown }): Settings {
  const str = (key: string, fallback: string): string => (typeof c[key] === 'string' && c[key] !== '' ? c[key] as string : fallback);
  const method = str('http_method', 'get').toUpperCase();
  if (method !== 'GET' && method !== 'POST') throw new Error(`http_method must be get or post, got '${method.toLowerCase()}'`);
  const timeout = c['request_timeout'] ?? 15_000;
  if (typeof timeout !== 'number' || !(timeout > 0)) throw new Error(`request_timeout must be a positive number of ms, got ${JSON.stringify(timeout)}`);
  const s: Settings = {
    method,
    userPath: str('user_path', 'http://localhost:8000/auth/user'),
    vhostPath: str('vhost_path', 'http://localhost:8000/auth/vhost'),
    resourcePath: str('resource_path', 'http://localhost:8000/auth/resource'),
    topicPath: str('topic_path', 'http://localhost:8000/auth/topic'),
    timeoutMs: timeout,
  };
  for (const path of [s.userPath, s.vhostPath, s.resourcePath, s.topicPath]) new URL(path); // throws on a bad URL
  return s;
}

/** One question to the service: the trimmed body of a 200/201 answer; throws on anything else. */
function ask(s: Settings, path: string, params: Record<string, string>): Promise<string> {
  const form = new URLSearchParams(params).toString();
  const url = new URL(path);
  if (s.method === 'GET') url.search = url.search === '' ? form : `${url.search}&${form}`;
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method: s.method,
      timeout: s.timeoutMs,
      headers: s.method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(form) } : {},
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8').trim();
        if (res.statusCode === 200 || res.statusCode === 201) resolve(body);
        else reject(new Error(`${path} answered HTTP ${res.statusCode ?? '?'}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${path} did not answer within ${s.timeoutMs} ms`)));
    req.on('error', reject);
    if (s.method === 'POST') req.write(form);
    req.end();
  });
}

type Answer = { allow: true; words: string[] } | { allow: false; reason: string };

function parse(path: string, body: string): Answer {
  const [first = '', ...rest] = body.split(/\s+/);
  if (first.toLowerCase() === 'allow') return { allow: true, words: rest.filter((w) => w !== '') };
  if (first.toLowerCase() === 'deny') return { allow: false, reason: rest.join(' ') };
  throw new Error(`${path} answered neither allow nor deny: '${body.slice(0, 80)}'`);
}

function authzParams(r: AuthzRequest): { path: 'vhost' | 'resource' | 'topic'; params: Record<string, string> } {
  const base = { username: r.user, vhost: r.vhost, tags: r.tags.join(' ') };
  switch (r.kind) {
    case 'vhost': return { path: 'vhost', params: { ...base, ip: r.ip } };
    case 'resource': return { path: 'resource', params: { ...base, resource: r.resource, name: r.name, permission: r.permission } };
    case 'topic': return {
      path: 'topic',
      params: {
        ...base, resource: 'topic', name: r.name, permission: r.permission, routing_key: r.routingKey,
        'variable_map.username': r.user, 'variable_map.vhost': r.vhost,
      },
    };
  }
}

const plugin: EspressoPlugin = {
  name: 'auth-http',
  version: '1.0.0',
  setup(api) {
    const s = settingsOf(api.config);
    const paths = { vhost: s.vhostPath, resource: s.resourcePath, topic: s.topicPath };
    api.authBackend({
      name: 'http',
      async authenticate(user, password) {
        const a = parse(s.userPath, await ask(s, s.userPath, { username: user, password }));
        if (a.allow) return { allow: true, tags: a.words };
        return { allow: false, reason: a.reason === '' ? 'denied by the HTTP auth service' : a.reason };
      },
      async authorize(r) {
        const { path, params } = authzParams(r);
        const a = parse(paths[path], await ask(s, paths[path], params));
        if (!a.allow && a.reason !== '') api.log.info('access denied by the HTTP auth service', { user: r.user, kind: r.kind, reason: a.reason });
        return a.allow;
      },
    });
  },
};

export default plugin;
