// The plugin API: what a plugin module's default export looks like and what its setup(api) is
// given. Types only; the host (plugin-host.ts) implements them. Exported from the package
// ('espresso') so a plugin written in TypeScript is checked against it.

/** A header value as plugins see it: strings for AMQP strings and bytes, numbers, tables, arrays. */
export type HeaderValue = null | boolean | number | bigint | string | Buffer | Date | readonly HeaderValue[] | { readonly [key: string]: HeaderValue };
export type Headers = { readonly [key: string]: HeaderValue };

/** The basic properties other than headers, named as amqplib names them. */
export interface MessageProperties {
  readonly contentType?: string;
  readonly contentEncoding?: string;
  readonly deliveryMode?: number;
  readonly priority?: number;
  readonly correlationId?: string;
  readonly replyTo?: string;
  readonly expiration?: string;
  readonly messageId?: string;
  /** Seconds since the epoch, as AMQP carries it. */
  readonly timestamp?: number;
  readonly type?: string;
  readonly userId?: string;
  readonly appId?: string;
  readonly clusterId?: string;
}

/** One message on its way through the broker. `headers` is read lazily (no cost when unread). */
export interface PluginMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: MessageProperties;
  readonly headers: Headers;
  /** One header's value without building the whole `headers` view (cheap on a hot path). */
  header(name: string): HeaderValue | undefined;
  readonly body: Buffer;
}

/** A binding whose source is an exchange of a plugin's type. `arguments` are plain values. */
export interface PluginBinding {
  readonly destination: string;
  readonly destinationKind: 'queue' | 'exchange';
  /** For a consistent-hash exchange, the weight. */
  readonly routingKey: string;
  readonly arguments: { readonly [key: string]: unknown };
}

export interface ExchangeInfo {
  readonly vhost: string;
  readonly name: string;
  readonly type: string;
  readonly durable: boolean;
  readonly arguments: { readonly [key: string]: unknown };
}

/**
 * An exchange type. route runs on the node the publisher is connected to, for every message, and
 * must be deterministic and synchronous: it returns bindings taken from `bindings` (their
 * destinations get the message) and/or names of queues of the vhost (need not be bound; a name
 * that is no queue is skipped). `bindings` is the same array object until the exchange's bindings
 * change, so a type may cache what it derives from it (e.g. in a WeakMap). A validator returns a
 * text for a 406 PRECONDITION_FAILED, or null/undefined to accept; validators run while every
 * node applies the replicated metadata log, so they must be deterministic too.
 */
export interface ExchangeTypeSpec {
  route(message: PluginMessage, bindings: readonly PluginBinding[], exchange: ExchangeInfo): ReadonlyArray<PluginBinding | string>;
  validateBinding?(binding: PluginBinding, exchange: ExchangeInfo): string | null | undefined;
  validateExchange?(exchange: ExchangeInfo): string | null | undefined;
  /**
   * After a client's (non-passive) exchange.declare of this type succeeded, on the node it came
   * to, before declare-ok: a type that needs queues of its own creates them here (idempotently: it
   * runs on every declare). A failure closes the channel with 541 INTERNAL_ERROR.
   */
  declared?(exchange: ExchangeInfo, admin: VhostAdmin): Promise<void> | void;
  /** After a client's exchange.delete (or an auto-delete it caused) removed an exchange of this type, before the -ok. */
  deleted?(exchange: ExchangeInfo, admin: VhostAdmin): Promise<void> | void;
}

/** Trusted operations on one vhost's metadata, for exchange types that keep queues of their own. */
export interface VhostAdmin {
  hasQueue(name: string): boolean;
  /** Declares a queue (durable: replicated) unless it exists; no permission checks. */
  declareQueue(name: string, options: { readonly durable: boolean; readonly arguments: { readonly [key: string]: string | number | boolean } }): Promise<void>;
  /** Deletes a queue and its messages if it exists. */
  deleteQueue(name: string): Promise<void>;
}

/** The built-in exchange types, for plugin types that route like one of them (e.g. x-delayed-type). */
export type BuiltinExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';

/** What an interceptor may answer: nothing (pass), changed headers/properties, or a refusal. */
export type InterceptResult =
  | undefined
  | void
  | { readonly headers?: Headers; readonly properties?: MessageProperties; readonly refuse?: undefined }
  | { readonly refuse: { readonly code: number; readonly text: string } };

/**
 * Runs synchronously on every publish before routing (on the publisher's node). Returned headers
 * replace the message's headers; returned properties are merged over its properties. A refusal is
 * a basic.nack under publisher confirms, else a channel error with that code and text.
 */
export type PublishInterceptor = (message: PluginMessage) => InterceptResult;
/** Runs synchronously on every delivery to a consumer (on the consumer's node); no refusal. */
export type DeliverInterceptor = (message: PluginMessage & { readonly redelivered: boolean; readonly queue: string }) =>
  undefined | void | { readonly headers?: Headers; readonly properties?: MessageProperties };

export interface ConnectionInfo {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly mechanism: string;
  /** The node the client is connected to. */
  readonly node: string;
}

/** null/undefined: not this backend's user, the next one is asked. */
export type AuthDecision =
  | { readonly allow: true; readonly tags?: readonly string[] }
  | { readonly allow: false; readonly reason?: string }
  | null | undefined;

export type AuthzRequest = { readonly user: string; readonly tags: readonly string[]; readonly vhost: string; readonly ip: string } & (
  | { readonly kind: 'vhost' }
  | { readonly kind: 'resource'; readonly resource: 'exchange' | 'queue'; readonly name: string; readonly permission: 'configure' | 'write' | 'read' }
  | { readonly kind: 'topic'; readonly resource: 'topic'; readonly name: string; readonly permission: 'write' | 'read'; readonly routingKey: string }
);

/**
 * Authentication (and optionally authorization) of AMQP users. Backends are asked in the order
 * they were registered (plugins in the order loaded), then the node's internal users; the first
 * that allows admits the connection. When that backend has `authorize`, it decides vhost access
 * and every resource and topic check of the connection (positive answers are cached per
 * connection); without it the internal permissions of a user of that name apply.
 */
export interface AuthBackend {
  readonly name?: string;
  authenticate(user: string, password: string, connection: ConnectionInfo): AuthDecision | Promise<AuthDecision>;
  authorize?(request: AuthzRequest): boolean | Promise<boolean>;
}

export interface LifecycleEvents {
  'node.up': { readonly node: string };
  'node.down': { readonly node: string };
  'queue.declared': { readonly vhost: string; readonly name: string; readonly durable: boolean; readonly arguments: { readonly [key: string]: unknown } };
  'queue.deleted': { readonly vhost: string; readonly name: string };
  'connection.opened': { readonly id: string; readonly user: string; readonly vhost: string; readonly remote: string };
  'connection.closed': { readonly id: string; readonly user: string; readonly vhost: string; readonly remote: string };
  /** A Raft group of this node (the metadata group is 'meta'; each replicated queue has its own) has a new leader. */
  'leader.changed': { readonly group: string; readonly leader: string | null };
}
export type LifecycleEvent = keyof LifecycleEvents;

export interface PluginLog {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface PluginApi {
  /** This plugin's settings (config file `pluginConfig.<name>`), {} when none. */
  readonly config: { readonly [key: string]: unknown };
  readonly log: PluginLog;
  /** The id of the node the plugin runs in. */
  readonly nodeId: string;
  exchangeType(name: string, spec: ExchangeTypeSpec): void;
  /** The bindings a built-in type would pick for the message (for types that delegate routing). */
  routeAs(type: BuiltinExchangeType, message: PluginMessage, bindings: readonly PluginBinding[]): PluginBinding[];
  onPublish(fn: PublishInterceptor): void;
  onDeliver(fn: DeliverInterceptor): void;
  authBackend(backend: AuthBackend): void;
  /** Lifecycle events, delivered after the fact and never waited for; a throwing listener is counted and logged. */
  on<E extends LifecycleEvent>(event: E, fn: (e: LifecycleEvents[E]) => void): void;
}

/** A plugin module's default export. */
export interface EspressoPlugin {
  readonly name: string;
  readonly version: string;
  setup(api: PluginApi): void | Promise<void>;
}
