// The RPC client a program holds: `connectRpc(urls)` connects (failing over between the URLs),
// `call` sends requests, `serve` answers a method, `close` ends it all. It composes the failover
// connection, the caller and one server per method; the wire format is in rpc-wire.ts.

import { defaultRpcLimits, type RpcLimits } from './limits.js';
import { RpcCaller, type CallOptions, type CallerStats } from './rpc-caller.js';
import { FailoverConnection, type RpcEvent } from './rpc-connection.js';
import { RpcClosedError } from './rpc-errors.js';
import { MethodServer, type Handler, type ServeOptions, type ServerStats } from './rpc-server.js';
import type { Payload } from './rpc-wire.js';

export interface RpcOptions {
  /** connection_name the broker shows for this client. */
  name?: string;
  /** Called for connects, disconnects, skipped and refused requests, dropped replies (for logs). */
  onEvent?: (e: RpcEvent) => void;
  limits?: Partial<RpcLimits>;
}

export interface RpcServing {
  readonly method: string;
  stats(): ServerStats;
  /** Stops consuming; running handlers finish and answer first. */
  stop(): Promise<void>;
}

export interface RpcStats {
  caller: CallerStats;
  servers: Record<string, ServerStats>;
}

export class Rpc {
  private readonly caller: RpcCaller;
  private readonly servers = new Map<string, MethodServer>();
  private closing: Promise<void> | undefined;

  /** Use connectRpc. */
  constructor(
    private readonly connection: FailoverConnection,
    private readonly limits: RpcLimits,
    private readonly emit: (e: RpcEvent) => void,
  ) {
    this.caller = new RpcCaller(connection, limits, emit);
    void connection.attach(this.caller);
  }

  /**
   * Calls `method` with `payload` (JSON, or a Buffer sent as raw bytes) and resolves with the
   * server's result (a Buffer when the server answered raw bytes). Rejects with an RpcError:
   * RpcRemoteError (the handler threw), RpcTimeoutError, RpcNoServerError, RpcServerLostError,
   * RpcConnectionLostError, RpcRefusedError, RpcClosedError, RpcTooManyCallsError.
   */
  call<T = unknown>(method: string, payload?: Payload, opts: CallOptions = {}): Promise<T> {
    if (this.closing !== undefined) return Promise.reject(new RpcClosedError(`call '${method}'`));
    return this.caller.call(method, payload, opts) as Promise<T>;
  }

  /**
   * Serves `method`: declares its request queue (durable, replicated) and consumes it; every server
   * of a method competes for its requests. Resolves once consuming. One server per method per client.
   */
  async serve(method: string, handler: Handler, opts: ServeOptions = {}): Promise<RpcServing> {
    if (this.closing !== undefined) throw new RpcClosedError(`serve '${method}'`);
    if (typeof handler !== 'function') throw new TypeError(`serve '${method}': the handler must be a function`);
    if (this.servers.has(method)) throw new TypeError(`method '${method}' is already served by this client`);
    const server = new MethodServer(method, handler, opts.concurrency ?? this.limits.defaultConcurrency, this.connection, this.limits, this.emit);
    this.servers.set(method, server);
    try {
      await this.connection.attach(server);
    } catch (e) {
      this.servers.delete(method);
      this.connection.detach(server);
      throw e;
    }
    return {
      method,
      stats: () => server.stats(),
      stop: async () => {
        if (this.servers.get(method) === server) this.servers.delete(method);
        await server.stop();
      },
    };
  }

  stats(): RpcStats {
    const servers: Record<string, ServerStats> = {};
    for (const [m, s] of this.servers) servers[m] = s.stats();
    return { caller: this.caller.stats(), servers };
  }

  /** The URL (password hidden) of the node this client is connected to now; undefined while reconnecting. */
  connectedUrl(): string | undefined {
    return this.connection.current()?.url;
  }

  /** Stops serving (running handlers finish, up to 10 s), fails calls in flight with RpcClosedError, disconnects. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.servers.values()].map((s) => s.stop()));
      this.servers.clear();
      this.caller.close();
      await this.connection.close();
    })();
    return this.closing;
  }
}

/**
 * Connects to the first of `urls` that accepts (amqp://user:pass@host:port[/vhost][?heartbeat=s]).
 * When that connection drops, the client reconnects to the others in turn (the lost one last),
 * sets its servers up again, and sends idempotent calls that were in flight again.
 * Rejects with RpcConnectError when none of the URLs accepts at first.
 */
export async function connectRpc(urls: string | readonly string[], opts: RpcOptions = {}): Promise<Rpc> {
  const list = typeof urls === 'string' ? [urls] : [...urls];
  const limits: RpcLimits = { ...defaultRpcLimits, ...opts.limits };
  const onEvent = opts.onEvent;
  const emit = (e: RpcEvent): void => {
    try {
      onEvent?.(e);
    } catch {
      // a listener's failure is not the RPC's
    }
  };
  const connection = new FailoverConnection(list, limits, emit, opts.name ?? 'espresso-rpc');
  await connection.start();
  return new Rpc(connection, limits, emit);
}
