// The node's HTTP listener as a client meets it: registered routes with decoded path parameters,
// RabbitMQ's 404/405 answers and JSON errors, HEAD for GET routes, a failing handler answered 500
// while the listener keeps serving, and a request body above the limit refused with 413.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorResponse, HttpError, HttpListener, jsonResponse } from '../../src/http/server.js';
import { silentLogger } from '../../src/lib/log.js';

let http: HttpListener;
let base: string;

beforeAll(async () => {
  http = await HttpListener.start({ host: '127.0.0.1', port: 0, logger: silentLogger });
  base = `http://127.0.0.1:${http.port}`;
  http.route('GET', '/api/queues/:vhost/:name', (req) => jsonResponse(200, { ...req.params, page: req.query.get('page') }));
  http.route('PUT', '/api/queues/:vhost/:name', async (req) => jsonResponse(201, { bytes: (await req.body(10)).length }));
  http.route('GET', '/boom', () => {
    throw new Error('kaput');
  });
  http.route('GET', '/refused', () => {
    throw new HttpError(errorResponse(401, 'not_authorised', 'no'));
  });
});
afterAll(() => http.close());

describe('http listener', () => {
  it('routes by method and path, decoding parameters (%2F is the default vhost)', async () => {
    const r = await fetch(`${base}/api/queues/%2F/orders%20eu?page=2`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.json()).toEqual({ vhost: '/', name: 'orders eu', page: '2' });
    const head = await fetch(`${base}/api/queues/%2F/x`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('answers unknown paths 404 and other methods 405 as RabbitMQ does', async () => {
    const missing = await fetch(`${base}/api/nothing`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'not_found', reason: 'Not Found' });
    const wrong = await fetch(`${base}/api/queues/%2F/x`, { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, PUT');
    expect((await fetch(`${base}/api/queues/%E0%A4%A/x`)).status).toBe(404);
  });

  it('turns a failing handler into a 500 and keeps serving; refusals thrown as HttpError go out as they are', async () => {
    const r = await fetch(`${base}/boom`);
    expect(r.status).toBe(500);
    expect(await r.json()).toEqual({ error: 'internal_server_error', reason: 'kaput' });
    expect((await fetch(`${base}/refused`)).status).toBe(401);
    expect((await fetch(`${base}/api/queues/v/q`)).status).toBe(200);
  });

  it('reads a body up to the limit and refuses a larger one with 413', async () => {
    const ok = await fetch(`${base}/api/queues/v/q`, { method: 'PUT', body: '12345' });
    expect(await ok.json()).toEqual({ bytes: 5 });
    const big = await fetch(`${base}/api/queues/v/q`, { method: 'PUT', body: 'x'.repeat(100_000) });
    expect(big.status).toBe(413);
    expect(await big.json()).toEqual({ error: 'bad_request', reason: 'request body above 10 bytes' });
  });
});
