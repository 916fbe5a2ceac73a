// GET /metrics (every family summed over this node's queues: constant size) and
// GET /metrics/per-object (one sample per queue and Raft group; ?vhost=V, repeatable, keeps the
// queues of those vhosts only, as RabbitMQ's /metrics/detailed), in Prometheus' text format,
// gzipped when the scraper accepts it. Open by default, as RabbitMQ's Prometheus plugin; with
// --metrics-auth a user with a management tag must send HTTP Basic credentials.

import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { MetricsText, NodeMetrics } from '../observe/node-metrics.js';
import { requireUser, type Authenticate } from './basic-auth.js';
import type { HttpListener, HttpRequest, HttpResponse } from './server.js';

const gzipAsync = promisify(gzip);
/** Bodies smaller than this go uncompressed. */
const gzipAboveBytes = 4096;

export function serveMetrics(http: HttpListener, metrics: NodeMetrics, authenticate: Authenticate | null): void {
  http.route('GET', '/metrics', (req) => scrape(req, metrics.aggregated, metrics.contentType, authenticate));
  http.route('GET', '/metrics/per-object', (req) => {
    const vhosts = req.query.getAll('vhost');
    return scrape(req, () => metrics.perObject(vhosts.length > 0 ? { vhosts: new Set(vhosts) } : {}), metrics.contentType, authenticate);
  });
}

async function scrape(req: HttpRequest, render: MetricsText, contentType: string, authenticate: Authenticate | null): Promise<HttpResponse> {
  if (authenticate !== null) requireUser(authenticate, req);
  const text = await render();
  const headers: Record<string, string> = { 'content-type': contentType };
  if (text.length >= gzipAboveBytes && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
    return { status: 200, headers: { ...headers, 'content-encoding': 'gzip' }, body: await gzipAsync(text, { level: 1 }) };
  }
  return { status: 200, headers, body: text };
}
