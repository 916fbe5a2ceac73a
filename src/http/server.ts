// The node's one HTTP listener (RabbitMQ's management port: AMQP + 10000 by default), bound like
// AMQP. It owns no routes: the parts that serve HTTP (/metrics now; the management API, the task
// API and the dashboard later) register a method and a path pattern each. Answers as RabbitMQ's
// web dispatch; HTTPS with the node's client TLS files when it has them. Unknown path 404, known path with another method 405, JSON error bodies
// {"error", "reason"}; a handler that throws is a 500 (logged), and the node carries on.

import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Logger } from '../lib/log.js';

export interface HttpRequest {
  readonly method: string;
  /** The path as sent, undecoded. */
  readonly path: string;
  /** `:name` segments of the route pattern, URI-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string;
  /** The request body, at most `limitBytes` (413 beyond). */
  body(limitBytes?: number): Promise<Buffer>;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer | Readable;
}

export type HttpHandler = (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;

export interface HttpListenerOptions {
  readonly host: string;
  /** 0 picks a free port (read `port`). */
  readonly port: number;
  readonly logger: Logger;
  /** HTTPS with these files (the client TLS certificate and key); plain HTTP without. */
  readonly tls?: SecureContextOptions;
}

interface Route {
  readonly method: string;
  readonly segments: readonly string[];
  readonly handler: HttpHandler;
}

export const httpLimits = {
  /** Sockets at once; more are refused by the kernel's backlog and then closed. */
  connectionsMax: 1024,
  /** Time to receive a request's headers and body. */
  requestTimeoutMs: 30_000,
  /** Request bodies read by body() unless told otherwise. */
  bodyBytesMax: 16 * 1024 * 1024,
} as const;

export function jsonResponse(status: number, value: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) };
}

/** RabbitMQ's error body. */
export function errorResponse(status: number, error: string, reason: string, headers: Record<string, string> = {}): HttpResponse {
  return jsonResponse(status, { error, reason }, headers);
}

export class HttpError extends Error {
  constructor(readonly response: HttpResponse) {
    super(`http ${response.status}`);
  }
}

export class HttpListener {
  private readonly routes: Route[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server | HttpsServer, readonly port: number, private readonly logger: Logger) {}

  /** True when it serves HTTPS. */
  get secure(): boolean {
    return 'setSecureContext' in this.server;
  }

  /** HTTPS: the certificate for connections from now on (a reload); no-op on plain HTTP. */
  setSecureContext(tls: SecureContextOptions): void {
    if ('setSecureContext' in this.server) this.server.setSecureContext(tls);
  }

  static async start(o: HttpListenerOptions): Promise<HttpListener> {
    const logger = o.logger.child('http');
    const holder: { l?: HttpListener } = {};
    const serve = (req: IncomingMessage, res: ServerResponse): void => {
      if (holder.l === undefined) return void res.writeHead(503).end();
      void holder.l.dispatch(req, res);
    };
    const server = o.tls === undefined ? createServer({ requestTimeout: httpLimits.requestTimeoutMs }, serve)
      : createHttpsServer({ ...o.tls, requestTimeout: httpLimits.requestTimeoutMs }, serve);
    server.maxConnections = httpLimits.connectionsMax;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const l = new HttpListener(server, typeof address === 'object' && address !== null ? address.port : o.port, logger);
    holder.l = l;
    // HTTPS: 'connection' is the TCP socket before TLS; closing it closes the TLS one.
    server.on('connection', (s: Socket) => {
      l.sockets.add(s);
      s.once('close', () => l.sockets.delete(s));
    });
    server.on('error', (e) => logger.error('http server error', { error: e.message }));
    logger.debug('http listening', { bind: o.host, port: l.port });
    return l;
  }

  /** Serves `method` on paths matching `pattern` ('/metrics', '/api/queues/:vhost/:name'); GET serves HEAD too. */
  route(method: string, pattern: string, handler: HttpHandler): void {
    const segments = pattern.split('/').slice(1);
    if (this.routes.some((r) => r.method === method && r.segments.join('/') === segments.join('/'))) throw new Error(`route ${method} ${pattern} registered twice`);
    this.routes.push({ method, segments, handler });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let response: HttpResponse;
    try {
      response = await this.answer(req);
    } catch (e) {
      if (e instanceof HttpError) response = e.response;
      else {
        this.logger.error('http handler failed', { method: req.method ?? '', path: req.url ?? '', error: e instanceof Error ? e.stack ?? e.message : String(e) });
        response = errorResponse(500, 'internal_server_error', e instanceof Error ? e.message : String(e));
      }
    }
    this.send(req, res, response);
  }

  private answer(req: IncomingMessage): HttpResponse | Promise<HttpResponse> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const segments = url.pathname.split('/').slice(1);
    const allowed: string[] = [];
    for (const r of this.routes) {
      const params = match(r.segments, segments);
      if (params === null) continue;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) {
        return r.handler({
          method, path: url.pathname, params, query: url.searchParams, headers: req.headers,
          remoteAddress: req.socket.remoteAddress ?? '', body: (limit) => readBody(req, limit ?? httpLimits.bodyBytesMax),
        });
      }
      allowed.push(r.method);
    }
    if (allowed.length > 0) return { status: 405, headers: { allow: [...new Set(allowed)].join(', ') } };
    return errorResponse(404, 'not_found', 'Not Found');
  }

  private send(req: IncomingMessage, res: ServerResponse, r: HttpResponse): void {
    res.writeHead(r.status, r.headers);
    const body = r.body;
    if (body instanceof Readable) {
      body.once('error', (e) => {
        this.logger.warn('http response stream failed', { path: req.url ?? '', error: e.message });
        res.destroy(e);
      });
      body.pipe(res);
      return;
    }
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

/** Params of a matching path, or null. Bad %-escapes do not match. */
function match(pattern: readonly string[], path: readonly string[]): Record<string, string> | null {
  if (pattern.length !== path.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const s = path[i]!;
    if (p.startsWith(':')) {
      try {
        params[p.slice(1)] = decodeURIComponent(s);
      } catch {
        return null;
      }
    } else if (p !== s) {
      return null;
    }
  }
  return params;
}

function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const onData = (c: Buffer): void => {
      n += c.length;
      if (n <= limitBytes) return void chunks.push(c);
      // The rest is read and dropped (memory stays bounded), the answer says why, the socket closes.
      req.off('data', onData);
      req.resume();
      chunks.length = 0;
      reject(new HttpError(errorResponse(413, 'bad_request', `request body above ${limitBytes} bytes`, { connection: 'close' })));
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}
