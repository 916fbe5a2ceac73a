// The errors an RPC call can end with, one class per way it can fail, each with a stable `code`
// a program switches on. A handler's own error arrives as RpcRemoteError, never as a timeout.

export type RpcErrorCode =
  | 'REMOTE' | 'TIMEOUT' | 'NO_SERVER' | 'SERVER_LOST' | 'CONNECTION_LOST' | 'REFUSED'
  | 'CLOSED' | 'TOO_MANY_CALLS' | 'CONNECT_FAILED';

export class RpcError extends Error {
  constructor(readonly code: RpcErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The handler threw. `name` is the remote error's name (e.g. 'ValidationError'), `message` its
 * message, `details` whatever JSON it attached. A handler may throw one of these to choose all three.
 */
export class RpcRemoteError extends RpcError {
  readonly details: unknown;
  constructor(name: string, message: string, details?: unknown) {
    super('REMOTE', message);
    this.name = name;
    this.details = details;
  }
}

/** No reply before the call's deadline (the server may still run it; see `idempotent`). */
export class RpcTimeoutError extends RpcError {
  /** `unsent`: the request never left, no connection to any broker came up in time. */
  constructor(readonly method: string, readonly timeoutMs: number, unsent = false) {
    super('TIMEOUT', unsent
      ? `RPC '${method}' could not be sent within ${timeoutMs} ms: no connection to any broker`
      : `RPC '${method}' got no reply within ${timeoutMs} ms`);
  }
}

/** The method's request queue does not exist: no server ever served it (unroutable, returned by the broker). */
export class RpcNoServerError extends RpcError {
  constructor(readonly method: string, queue: string) {
    super('NO_SERVER', `no server for RPC '${method}': its request queue '${queue}' does not exist`);
  }
}

/** The server running a non-idempotent call was lost mid-call; the call may or may not have run. */
export class RpcServerLostError extends RpcError {
  constructor(readonly method: string, detail: string) {
    super('SERVER_LOST', `RPC '${method}': ${detail}`);
  }
}

/** The caller's own connection dropped with a non-idempotent call in flight; it may or may not have run. */
export class RpcConnectionLostError extends RpcError {
  constructor(readonly method: string, url: string) {
    super('CONNECTION_LOST', `RPC '${method}': the connection to ${url} was lost with the call in flight; it may or may not have run (not retried: the call is not idempotent)`);
  }
}

/** The broker refused the request (a negative publisher confirm, e.g. the queue's overflow limit). */
export class RpcRefusedError extends RpcError {
  constructor(readonly method: string) {
    super('REFUSED', `RPC '${method}': the broker refused the request (basic.nack)`);
  }
}

export class RpcClosedError extends RpcError {
  constructor(what: string) {
    super('CLOSED', `${what}: the RPC client is closed`);
  }
}

export class RpcTooManyCallsError extends RpcError {
  constructor(limit: number) {
    super('TOO_MANY_CALLS', `too many RPC calls in flight (limit ${limit}); wait for some to finish`);
  }
}

/** None of the URLs accepted a connection; `failures` says why for each. */
export class RpcConnectError extends RpcError {
  constructor(readonly failures: ReadonlyArray<{ url: string; reason: string }>) {
    super('CONNECT_FAILED', `could not connect to any broker: ${failures.map((f) => `${f.url}: ${f.reason}`).join('; ')}`);
  }
}
