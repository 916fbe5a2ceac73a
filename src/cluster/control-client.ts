// Reaching a node from outside its cluster (ctl) or before joining it: a transient transport peer
// with the cluster secret that learns the node's id from its cluster port (transport identify: an
// authenticated question of its own, which the node answers without a log line), then calls one of
// its rpc methods on the control lane. Only a holder of the secret learns the id.

import { randomBytes } from 'node:crypto';
import { OperatingError, OperatingErrorCode } from '../lib/errors.js';
import { nodeId, type NodeId } from '../lib/ids.js';
import { silentLogger, type LogFields, type Logger } from '../lib/log.js';
import { Lane, Transport, transientPeerPrefix, type TlsFiles } from '../transport/index.js';
import { ClusterRpc } from './rpc.js';

export interface RemoteNodeOptions {
  /** host:port of the node's cluster port. */
  address: string;
  secret: string;
  /** Mutual TLS, when the cluster port uses it. */
  tls?: TlsFiles;
  /** The node's id when known (id@host:port): no need to ask its cluster port. */
  nodeId?: NodeId;
  /** For reaching the node and for each call. */
  timeoutMs?: number;
  logger?: Logger;
}

export const remoteNodeDefaults = { timeoutMs: 5_000, pollMs: 20 } as const;

/** Resolves once `peer` has an authenticated stream; Unreachable after `timeoutMs`; `check` may throw sooner. */
export async function waitPeerUp(transport: Transport, peer: NodeId, timeoutMs: number, check?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!transport.isUp(peer)) {
    check?.();
    if (Date.now() >= deadline) throw new OperatingError(OperatingErrorCode.Unreachable, `node ${peer} did not accept a stream within ${timeoutMs} ms`, { peer });
    await pause(remoteNodeDefaults.pollMs);
  }
}

/**
 * Runs `f` with an rpc client connected to the node at `address` (its id learned first), then
 * closes the transient transport. Errors: Unreachable (nothing answers), PermissionDenied (the
 * node refused our secret), Timeout, or the remote handler's error.
 */
export async function withRemoteNode<T>(o: RemoteNodeOptions, f: (call: RemoteCall, node: NodeId) => Promise<T>): Promise<T> {
  const timeoutMs = o.timeoutMs ?? remoteNodeDefaults.timeoutMs;
  const refusals = new RefusalLog(o.logger ?? silentLogger);
  const self = nodeId(`${transientPeerPrefix}${randomBytes(6).toString('hex')}`);
  const transport = await Transport.start({
    nodeId: self, listen: { host: '127.0.0.1', port: 0 }, secret: o.secret, logger: refusals, ...(o.tls !== undefined ? { tls: o.tls } : {}),
  });
  const rpc = new ClusterRpc(transport, refusals);
  try {
    const node = o.nodeId ?? await transport.identify(o.address, timeoutMs);
    refusals.clear();
    transport.connect(node, o.address);
    // A refusal (wrong secret) ends the wait at once and says more than "not up in time".
    await waitPeerUp(transport, node, timeoutMs, () => refusals.answer(o.address));
    const call: RemoteCall = (method, payload) => rpc.call(node, method, payload, timeoutMs, Lane.control);
    return await f(call, node);
  } finally {
    rpc.close();
    await transport.close();
  }
}

export type RemoteCall = (method: string, payload: Uint8Array) => Promise<Uint8Array>;

/** One call to a node's rpc method from outside the cluster (ctl), e.g. 'ctl.list-queues'. */
export function callNode(o: RemoteNodeOptions, method: string, payload: Uint8Array): Promise<Uint8Array> {
  return withRemoteNode(o, (call) => call(method, payload));
}

/** A logger for the transient transport that remembers why the node refused or failed a dial. */
export class RefusalLog implements Logger {
  private lines: Array<{ event: string; fields: LogFields }> = [];
  /** Lines kept between clears (a redialing probe adds one per attempt). */
  private static readonly linesMax = 100;

  constructor(private readonly inner: Logger) {}

  clear(): void {
    this.lines = [];
  }

  /** Throws for a refusal that is final: a wrong id (given as id@host:port), a wrong secret, nothing listening. */
  answer(address: string): void {
    for (const { event, fields } of this.lines) {
      const details = typeof fields['details'] === 'string' ? fields['details'] : '';
      const named = /dialed node id (\S+) but this is (\S+)$/.exec(details);
      if (named !== null) {
        throw new OperatingError(OperatingErrorCode.Unreachable, `the node at ${address} is ${named[2]!}, not ${named[1]!}`, { address });
      }
      if (/wrong cluster secret|did not prove the cluster secret/.test(details + event)) {
        throw new OperatingError(OperatingErrorCode.PermissionDenied, `the node at ${address} refused our cluster secret (wrong --cluster-secret?)`, { address });
      }
      if (fields['code'] === 14) throw new OperatingError(OperatingErrorCode.Unreachable, `nothing answers at ${address} (is the node running, and is that its cluster port?)`, { address });
    }
  }

  debug(event: string, fields?: LogFields): void {
    this.keep(event, fields);
    this.inner.debug(event, fields);
  }

  info(event: string, fields?: LogFields): void {
    this.inner.info(event, fields);
  }

  warn(event: string, fields?: LogFields): void {
    this.keep(event, fields);
    this.inner.warn(event, fields);
  }

  error(event: string, fields?: LogFields): void {
    this.keep(event, fields);
    this.inner.error(event, fields);
  }

  private keep(event: string, fields: LogFields | undefined): void {
    if (this.lines.length < RefusalLog.linesMax) this.lines.push({ event, fields: fields ?? {} });
  }

  child(): Logger {
    return this;
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
