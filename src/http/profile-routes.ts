// CPU and heap profiles over HTTP, for administrators (the same profiles ctl takes over the cluster
// port with the cluster secret): GET /api/espresso/profile/cpu?seconds=10[&node=n2] answers the
// .cpuprofile, GET /api/espresso/profile/heap[?node=n2] the .heapsnapshot; gzip-encoded when the
// client accepts it.

import { gunzipSync } from 'node:zlib';
import { isOperatingError, OperatingErrorCode } from '../lib/errors.js';
import type { ObserveService, ProfileKind } from '../observe/observe-service.js';
import { requireUser, type Authenticate } from './basic-auth.js';
import { errorResponse, type HttpListener, type HttpRequest, type HttpResponse } from './server.js';

export function serveProfiles(http: HttpListener, observe: ObserveService, authenticate: Authenticate): void {
  http.route('GET', '/api/espresso/profile/cpu', (req) => profile(req, 'cpu', observe, authenticate));
  http.route('GET', '/api/espresso/profile/heap', (req) => profile(req, 'heap', observe, authenticate));
}

async function profile(req: HttpRequest, kind: ProfileKind, observe: ObserveService, authenticate: Authenticate): Promise<HttpResponse> {
  requireUser(authenticate, req);
  const secondsText = req.query.get('seconds') ?? '10';
  const seconds = Number(secondsText);
  if (kind === 'cpu' && !(Number.isInteger(seconds) && seconds >= 1 && seconds <= 300)) {
    return errorResponse(400, 'bad_request', `seconds must be an integer from 1 to 300, got '${secondsText}'`);
  }
  const node = req.query.get('node') ?? undefined;
  try {
    const { ticket, gzipped } = await observe.takeProfile({ kind, seconds, ...(node !== undefined ? { node } : {}) });
    const file = `${ticket.node}.${kind === 'cpu' ? 'cpuprofile' : 'heapsnapshot'}`;
    const headers = { 'content-type': 'application/json', 'content-disposition': `attachment; filename="${file}"` };
    if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) return { status: 200, headers: { ...headers, 'content-encoding': 'gzip' }, body: gzipped };
    return { status: 200, headers, body: gunzipSync(gzipped) };
  } catch (e) {
    if (!isOperatingError(e)) throw e;
    if (e.code === OperatingErrorCode.BadConfig) return errorResponse(400, 'bad_request', e.message);
    if (e.code === OperatingErrorCode.Unreachable) return errorResponse(404, 'not_found', e.message);
    return errorResponse(503, 'unavailable', e.message);
  }
}
