// /metrics authentication as RabbitMQ's prometheus.authentication: open by default; when required,
// HTTP Basic with a broker user carrying a management tag (no credentials: 401 with a challenge;
// a wrong password or unknown user: 401 not_authorized; a user without a management tag: 401
// "Not management user"; guest only from loopback), and the administrator-only profile routes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { hashPassword } from '../../src/broker/auth.js';
import type { BrokerServer } from '../../src/broker/server.js';
import { basicCredentials, brokerAuthenticator, requireUser } from '../../src/http/basic-auth.js';
import { serveMetrics } from '../../src/http/metrics-routes.js';
import { HttpListener, jsonResponse } from '../../src/http/server.js';
import { silentLogger } from '../../src/lib/log.js';
import { registerAll } from '../../src/observe/read-metric.js';
import { startTestBroker } from '../broker/helpers.js';

let broker: BrokerServer;
let open: HttpListener;
let closed: HttpListener;

const basic = (user: string, pass: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });

beforeAll(async () => {
  broker = await startTestBroker();
  await broker.context.metadata.apply({ kind: 'addUser', name: 'app', passwordHash: hashPassword('pw'), tags: [] });
  await broker.context.metadata.apply({ kind: 'addUser', name: 'watcher', passwordHash: hashPassword('pw'), tags: ['monitoring'] });
  const registry = new Registry();
  let scrapes = 0;
  registerAll([registry], [{ name: 'espresso_scrapes', help: 'scrapes so far', type: 'counter', read: () => [{ value: ++scrapes }] }]);
  const metrics = { aggregated: () => registry.metrics(), perObject: () => registry.metrics(), contentType: registry.contentType };
  open = await HttpListener.start({ host: '127.0.0.1', port: 0, logger: silentLogger });
  serveMetrics(open, metrics, null);
  closed = await HttpListener.start({ host: '127.0.0.1', port: 0, logger: silentLogger });
  serveMetrics(closed, metrics, brokerAuthenticator(broker.context));
  const admin = brokerAuthenticator(broker.context, ['administrator']);
  closed.route('GET', '/admin', (req) => jsonResponse(200, requireUser(admin, req)));
});
afterAll(async () => {
  await open.close();
  await closed.close();
  await broker.close();
});

describe('metrics authentication', () => {
  it('serves /metrics to anyone by default, in the Prometheus text format', async () => {
    const r = await fetch(`http://127.0.0.1:${open.port}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    expect(await r.text()).toMatch(/# TYPE espresso_scrapes counter\nespresso_scrapes \d+/);
  });

  it('when required, refuses missing, wrong and untagged credentials and serves a management user', async () => {
    const url = `http://127.0.0.1:${closed.port}/metrics`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Basic realm="espresso"');
    const wrong = await fetch(url, { headers: basic('guest', 'nope') });
    expect([wrong.status, await wrong.json()]).toEqual([401, { error: 'not_authorized', reason: 'Not_Authorized' }]);
    expect((await fetch(url, { headers: basic('nobody', 'pw') })).status).toBe(401);
    const untagged = await fetch(url, { headers: basic('app', 'pw') });
    expect([untagged.status, await untagged.json()]).toEqual([401, { error: 'not_authorised', reason: 'Not management user' }]);
    expect((await fetch(url, { headers: basic('watcher', 'pw') })).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${closed.port}/metrics/per-object`, { headers: basic('guest', 'guest') })).status).toBe(200);
  });

  it('keeps administrator routes from monitoring users', async () => {
    const r = await fetch(`http://127.0.0.1:${closed.port}/admin`, { headers: basic('watcher', 'pw') });
    expect([r.status, await r.json()]).toEqual([401, { error: 'not_authorised', reason: 'Not administrator user' }]);
    expect(await (await fetch(`http://127.0.0.1:${closed.port}/admin`, { headers: basic('guest', 'guest') })).json()).toEqual({ name: 'guest', tags: ['administrator'] });
  });

  it('reads Basic credentials (passwords may hold colons), nothing else', () => {
    expect(basicCredentials(`Basic ${Buffer.from('u:p:q').toString('base64')}`)).toEqual({ user: 'u', pass: 'p:q' });
    expect(basicCredentials('Bearer abc')).toBeNull();
    expect(basicCredentials(undefined)).toBeNull();
  });
});
