// Request/response and one-way notifications between nodes, on the transport's shared stream per
// peer: mesh forwarding, metadata forwarding and ctl all call named methods through this one place.
//
// Envelope (proto/cluster.proto RpcEnvelope): kind, id, method, payload, and for a failed call the
// error's code, message and details. Requests and their responses ride Lane.forward (or the lane
// the caller picks); notifications ride Lane.delivery unless told otherwise. A call fails fast when
// the peer has no stream (Unreachable), when a stream with it ends while waiting (Unreachable), or
// when no answer comes in time (Timeout): the caller decides whether the operation may be retried,
// since the remote side may have carried it out. Items from one node to another arrive in send
// order, except across the moment a peer's second stream comes up (the transport then switches).

import { assert } from '../lib/assert.js';
import { OperatingError, OperatingErrorCode, isOperatingError } from '../lib/errors.js';
import type { NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import { Lane, ProtoDecodeError, ProtoReader, ProtoWriter, decodeString, type Transport } from '../transport/index.js';

export interface RpcLimits {
  /** A call with no answer by then fails with Timeout. */
  readonly callTimeoutMs: number;
  /** Calls waiting for an answer, over all peers; more fail at once with Overloaded. */
  readonly pendingCallsMax: number;
}

export const defaultRpcLimits: RpcLimits = { callTimeoutMs: 10_000, pendingCallsMax: 100_000 };

export type RpcHandler = (from: NodeId, payload: Uint8Array) => Promise<Uint8Array> | Uint8Array;
export type NotifyHandler = (from: NodeId, payload: Uint8Array) => void;

export interface RpcStats {
  callsSent: number;
  callsFailed: number;
  requestsServed: number;
  notifiesSent: number;
  notifiesReceived: number;
  malformed: number;
  /** Payload bytes of requests + responses + notifications, both ways, envelopes included. */
  bytesSent: number;
}

const Kind = { request: 1, response: 2, notify: 3 } as const;
type Kind = (typeof Kind)[keyof typeof Kind];

interface Envelope {
  kind: Kind;
  id: number;
  method: string;
  payload: Uint8Array;
  errorCode: string;
  errorMessage: string;
  errorDetails: string;
}

interface PendingCall {
  readonly peer: NodeId;
  readonly method: string;
  readonly resolve: (payload: Uint8Array) => void;
  readonly reject: (e: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

const empty = new Uint8Array(0);
const knownCodes = new Set<string>(Object.values(OperatingErrorCode));

export class ClusterRpc {
  private readonly handlers = new Map<string, RpcHandler>();
  private readonly notifyHandlers = new Map<string, NotifyHandler>();
  private readonly pending = new Map<number, PendingCall>();
  private readonly limits: RpcLimits;
  private nextId = 1;
  readonly counters: RpcStats = { callsSent: 0, callsFailed: 0, requestsServed: 0, notifiesSent: 0, notifiesReceived: 0, malformed: 0, bytesSent: 0 };

  constructor(
    private readonly transport: Transport,
    private readonly logger: Logger,
    limits: Partial<RpcLimits> = {},
  ) {
    this.limits = { ...defaultRpcLimits, ...limits };
    transport.onMessage((from, lane, payload) => {
      if (lane === Lane.forward || lane === Lane.delivery || lane === Lane.control) this.receive(from, lane, payload);
    });
    transport.onPeerState((peer, state) => {
      if (state === 'down') this.failPeer(peer);
    });
    // A request or its answer may have been on the stream that ended: fail now rather than at the
    // timeout, so the caller's retry (idempotent where it matters) keeps its calls in order.
    transport.onStreamLost((peer) => this.failPeer(peer));
  }

  /** Serves `method` (one handler per method). A throw or rejection becomes the caller's error. */
  handle(method: string, handler: RpcHandler): void {
    assert(!this.handlers.has(method), `rpc method ${method} already has a handler`);
    this.handlers.set(method, handler);
  }

  onNotify(method: string, handler: NotifyHandler): void {
    assert(!this.notifyHandlers.has(method), `rpc notification ${method} already has a handler`);
    this.notifyHandlers.set(method, handler);
  }

  /** Calls `method` on `peer`; see the file header for the errors. */
  call(peer: NodeId, method: string, payload: Uint8Array, timeoutMs = this.limits.callTimeoutMs, lane: Lane = Lane.forward): Promise<Uint8Array> {
    if (this.pending.size >= this.limits.pendingCallsMax) {
      this.counters.callsFailed++;
      return Promise.reject(new OperatingError(OperatingErrorCode.Overloaded, `rpc ${method} to ${peer}: too many calls waiting`, { peer }));
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 2 ** 48 ? 1 : this.nextId + 1;
    const bytes = encodeEnvelope({ kind: Kind.request, id, method, payload, errorCode: '', errorMessage: '', errorDetails: '' });
    if (!this.send(peer, lane, bytes)) {
      this.counters.callsFailed++;
      return Promise.reject(unreachable(peer, method));
    }
    this.counters.callsSent++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.counters.callsFailed++;
        reject(new OperatingError(OperatingErrorCode.Timeout, `rpc ${method} to ${peer}: no answer within ${timeoutMs} ms`, { peer }));
      }, timeoutMs);
      this.pending.set(id, { peer, method, resolve, reject, timer });
    });
  }

  /** Sends a one-way notification; false when the peer has no stream or its queue is full. */
  notify(peer: NodeId, method: string, payload: Uint8Array, lane: Lane = Lane.delivery): boolean {
    const bytes = encodeEnvelope({ kind: Kind.notify, id: 0, method, payload, errorCode: '', errorMessage: '', errorDetails: '' });
    const sent = this.send(peer, lane, bytes);
    if (sent) this.counters.notifiesSent++;
    return sent;
  }

  /** Fails every call still waiting (the node is shutting down). */
  close(): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new OperatingError(OperatingErrorCode.Closed, `rpc ${p.method} to ${p.peer}: this node is shutting down`, { peer: p.peer }));
    }
  }

  private send(peer: NodeId, lane: Lane, bytes: Uint8Array): boolean {
    if (bytes.length > this.transport.limits.payloadBytesMax) return false;
    const ok = this.transport.send(peer, lane, bytes);
    if (ok) this.counters.bytesSent += bytes.length;
    return ok;
  }

  private receive(from: NodeId, lane: Lane, bytes: Uint8Array): void {
    let e: Envelope;
    try {
      e = decodeEnvelope(bytes);
    } catch (err) {
      if (!(err instanceof ProtoDecodeError)) throw err;
      this.counters.malformed++;
      this.logger.warn('dropped a malformed rpc envelope', { from, error: err.message });
      return;
    }
    if (e.kind === Kind.response) return this.settle(from, e);
    if (e.kind === Kind.notify) return this.deliverNotify(from, e);
    this.serve(from, lane, e);
  }

  private settle(from: NodeId, e: Envelope): void {
    const p = this.pending.get(e.id);
    if (p === undefined || p.peer !== from) return; // timed out, or not ours
    this.pending.delete(e.id);
    clearTimeout(p.timer);
    if (e.errorCode === '') return p.resolve(e.payload);
    this.counters.callsFailed++;
    p.reject(remoteError(e));
  }

  private deliverNotify(from: NodeId, e: Envelope): void {
    const h = this.notifyHandlers.get(e.method);
    if (h === undefined) {
      this.logger.debug('notification without a handler', { from, method: e.method });
      return;
    }
    this.counters.notifiesReceived++;
    h(from, e.payload);
  }

  private serve(from: NodeId, lane: Lane, e: Envelope): void {
    const h = this.handlers.get(e.method);
    const answer = (payload: Uint8Array, error?: { code: string; message: string; details: string }): void => {
      const bytes = encodeEnvelope({
        kind: Kind.response, id: e.id, method: '', payload,
        errorCode: error?.code ?? '', errorMessage: error?.message ?? '', errorDetails: error?.details ?? '',
      });
      // The caller's stream is gone: it has failed the call on its side already.
      this.send(from, lane, bytes);
    };
    if (h === undefined) {
      return answer(empty, { code: OperatingErrorCode.BadConfig, message: `no rpc method '${e.method}' on this node (a newer version?)`, details: '' });
    }
    this.counters.requestsServed++;
    let result: Promise<Uint8Array> | Uint8Array;
    try {
      result = h(from, e.payload);
    } catch (err) {
      return answer(empty, describe(err));
    }
    if (result instanceof Uint8Array) return answer(result);
    result.then((payload) => answer(payload), (err: unknown) => answer(empty, describe(err)));
  }

  private failPeer(peer: NodeId): void {
    for (const [id, p] of this.pending) {
      if (p.peer !== peer) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      this.counters.callsFailed++;
      p.reject(unreachable(peer, p.method));
    }
  }
}

function unreachable(peer: NodeId, method: string): OperatingError {
  return new OperatingError(OperatingErrorCode.Unreachable, `rpc ${method}: node ${peer} is not connected`, { peer });
}

function describe(err: unknown): { code: string; message: string; details: string } {
  if (isOperatingError(err)) return { code: err.code, message: err.message, details: JSON.stringify(err.details) };
  return { code: OperatingErrorCode.Io, message: err instanceof Error ? err.message : String(err), details: '' };
}

function remoteError(e: Envelope): OperatingError {
  const code = knownCodes.has(e.errorCode) ? (e.errorCode as OperatingErrorCode) : OperatingErrorCode.Io;
  let details: Record<string, string | number> = {};
  if (e.errorDetails !== '') {
    try {
      const parsed = JSON.parse(e.errorDetails) as unknown;
      if (typeof parsed === 'object' && parsed !== null) details = parsed as Record<string, string | number>;
    } catch {
      // Details are advisory; a garbled set is dropped, the code and message stand.
    }
  }
  return new OperatingError(code, e.errorMessage, details);
}

// ---- envelope codec (RpcEnvelope in proto/cluster.proto) ----

export function encodeEnvelope(e: Envelope): Uint8Array {
  const w = new ProtoWriter(32 + e.method.length + e.payload.length + e.errorMessage.length);
  w.uint(1, e.kind).uint(2, e.id).string(3, e.method);
  if (e.payload.length > 0) w.bytes(4, e.payload);
  w.string(5, e.errorCode).string(6, e.errorMessage).string(7, e.errorDetails);
  return w.finish();
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const e: Envelope = { kind: Kind.request, id: 0, method: '', payload: empty, errorCode: '', errorMessage: '', errorDetails: '' };
  let kind = 0;
  const r = new ProtoReader(bytes);
  while (!r.done()) {
    const f = r.next();
    if (f.field === 0) break;
    if (f.wire === 0) {
      if (f.field === 1) kind = f.value;
      else if (f.field === 2) e.id = f.value;
      continue;
    }
    switch (f.field) {
      case 3: e.method = decodeString(f.value); break;
      case 4: e.payload = f.value; break;
      case 5: e.errorCode = decodeString(f.value); break;
      case 6: e.errorMessage = decodeString(f.value); break;
      case 7: e.errorDetails = decodeString(f.value); break;
      default: break; // a newer peer's field
    }
  }
  if (kind !== Kind.request && kind !== Kind.response && kind !== Kind.notify) throw new ProtoDecodeError(`rpc envelope of unknown kind ${kind}`);
  e.kind = kind;
  return e;
}
