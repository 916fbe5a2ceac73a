// The plugin host of one node: runs each plugin's setup with its api, keeps what the plugins
// registered (exchange types, publish and deliver interceptors, auth backends, lifecycle
// listeners), and is what the broker calls at those seams. A plugin that throws in setup stops
// the node naming it; one that throws at a seam fails that one operation and is counted here.
// Placed in broker/ (rank 4): every hook it offers is a broker seam, and the model's exchange-type
// registry (rank 1) is beneath it; loading modules from files is the cli's job (cli/plugins.ts).

import type { FieldTable, FieldValue } from '../amqp/index.js';
import { fromFieldValue, isFieldValue } from '../amqp/index.js';
import type { LogFields, Logger } from '../lib/log.js';
import {
  builtinExchangeTypes, createRouter, customExchangeType, registerExchangeType, unregisterExchangeType, type BindingRecord,
  type CustomExchangeType, type ExchangeRecord, type ExchangeRouter, type RoutedMessage, type RouteSink,
} from '../model/index.js';
import type {
  AuthBackend, AuthzRequest, BuiltinExchangeType, ConnectionInfo, VhostAdmin, DeliverInterceptor, EspressoPlugin, ExchangeInfo, ExchangeTypeSpec,
  HeaderValue, Headers, LifecycleEvent, LifecycleEvents, MessageProperties, PluginApi, PluginBinding,
  PluginMessage, PublishInterceptor,
} from './plugin-api.js';
import type { StoredMessage } from './queue-backend.js';

export interface LoadedPlugin {
  readonly plugin: EspressoPlugin;
  /** Where it came from (a path or a shipped name), for messages. */
  readonly source: string;
  readonly config: { readonly [key: string]: unknown };
}

/** A plugin's setup failed: the node does not start. */
export class PluginSetupError extends Error {
  constructor(readonly plugin: string, message: string) {
    super(message);
  }
}

/** Failures at the seams, by kind (the node keeps serving). */
export interface PluginCounters {
  routeFailures: number;
  publishInterceptorFailures: number;
  deliverInterceptorFailures: number;
  authBackendFailures: number;
  listenerFailures: number;
  refusedPublishes: number;
}

interface Owned<T> { readonly plugin: string; readonly value: T }

/** The outcome of the publish interceptors: the message (maybe changed) or a refusal. */
export type PublishVerdict = StoredMessage | { readonly refuse: { readonly code: number; readonly text: string } };

/** Who admitted a login: a plugin backend (which may authorize too) or nobody (internal users decide). */
export interface Admission { readonly backend: AuthBackend; readonly plugin: string; readonly tags: readonly string[] }

const failuresLoggedMax = 20;

export class PluginHost {
  readonly counters: PluginCounters = {
    routeFailures: 0, publishInterceptorFailures: 0, deliverInterceptorFailures: 0, authBackendFailures: 0, listenerFailures: 0, refusedPublishes: 0,
  };
  private readonly loaded: Array<{ name: string; version: string; exchangeTypes: string[] }> = [];
  private readonly types: Array<{ name: string; type: CustomExchangeType }> = [];
  private readonly publishHooks: Array<Owned<PublishInterceptor>> = [];
  private readonly deliverHooks: Array<Owned<DeliverInterceptor>> = [];
  private readonly backends: Array<Owned<AuthBackend>> = [];
  private readonly listeners = new Map<LifecycleEvent, Array<Owned<(e: never) => void>>>();
  private failuresLogged = 0;
  private readonly declaredHooks = new Map<CustomExchangeType, NonNullable<ExchangeTypeSpec['declared']>>();
  private readonly deletedHooks = new Map<CustomExchangeType, NonNullable<ExchangeTypeSpec['deleted']>>();

  constructor(private readonly logger: Logger, readonly nodeId: string) {}

  /** Runs every plugin's setup in order; the first that throws stops the load, naming it. */
  async load(plugins: readonly LoadedPlugin[]): Promise<void> {
    for (const p of plugins) {
      const name = typeof p.plugin?.name === 'string' ? p.plugin.name : '';
      if (name === '' || typeof p.plugin.version !== 'string' || typeof p.plugin.setup !== 'function') {
        throw new PluginSetupError(name || p.source, `plugin '${p.source}' is not a plugin: its default export must be { name, version, setup(api) }`);
      }
      if (this.loaded.some((l) => l.name === name)) throw new PluginSetupError(name, `plugin '${name}' is loaded twice (from '${p.source}')`);
      const entry = { name, version: p.plugin.version, exchangeTypes: [] as string[] };
      this.loaded.push(entry);
      try {
        await p.plugin.setup(this.apiFor(entry, p.config));
      } catch (e) {
        throw new PluginSetupError(name, `plugin '${name}' (${p.source}) failed in setup: ${e instanceof Error ? e.message : String(e)}`);
      }
      this.logger.info('plugin loaded', { plugin: name, version: p.plugin.version, source: p.source, exchangeTypes: entry.exchangeTypes.join(',') });
    }
  }

  /** name@version of each plugin that adds exchange types: what every node of a cluster must agree on. */
  exchangePlugins(): string[] {
    return this.loaded.filter((l) => l.exchangeTypes.length > 0).map((l) => `${l.name}@${l.version}`).sort();
  }

  plugins(): ReadonlyArray<{ name: string; version: string }> {
    return this.loaded.map((l) => ({ name: l.name, version: l.version }));
  }

  get hasPublishHooks(): boolean {
    return this.publishHooks.length > 0;
  }

  get hasDeliverHooks(): boolean {
    return this.deliverHooks.length > 0;
  }

  get hasAuthBackends(): boolean {
    return this.backends.length > 0;
  }

  /** Takes the registered exchange types out of the process registry (node stopped). */
  close(): void {
    for (const t of this.types) unregisterExchangeType(t.name, t.type);
    this.types.length = 0;
  }

  private apiFor(entry: { name: string; exchangeTypes: string[] }, config: { readonly [key: string]: unknown }): PluginApi {
    const plugin = entry.name;
    const log = this.logger.child(`plugin:${plugin}`);
    return {
      config,
      nodeId: this.nodeId,
      log: {
        debug: (m, f) => log.debug(m, logFields(f)),
        info: (m, f) => log.info(m, logFields(f)),
        warn: (m, f) => log.warn(m, logFields(f)),
        error: (m, f) => log.error(m, logFields(f)),
      },
      exchangeType: (name, spec) => {
        if (typeof name !== 'string' || name === '' || typeof spec?.route !== 'function') {
          throw new Error(`exchangeType needs a name and a spec with route(message, bindings)`);
        }
        const type = this.adaptExchangeType(plugin, spec);
        registerExchangeType(name, type);
        this.types.push({ name, type });
        entry.exchangeTypes.push(name);
      },
      routeAs: (type, message, bindings) => routeAs(type, message, bindings),
      onPublish: (fn) => { this.publishHooks.push({ plugin, value: fn }); },
      onDeliver: (fn) => { this.deliverHooks.push({ plugin, value: fn }); },
      authBackend: (backend) => {
        if (typeof backend?.authenticate !== 'function') throw new Error('authBackend needs authenticate(user, password, connection)');
        this.backends.push({ plugin, value: backend });
      },
      on: (event, fn) => {
        const list = this.listeners.get(event) ?? [];
        list.push({ plugin, value: fn as (e: never) => void });
        this.listeners.set(event, list);
      },
    };
  }

  private adaptExchangeType(plugin: string, spec: ExchangeTypeSpec): CustomExchangeType {
    const infos = new WeakMap<ExchangeRecord, ExchangeInfo>();
    const info = (x: ExchangeRecord): ExchangeInfo => {
      let i = infos.get(x);
      if (i === undefined) {
        i = Object.freeze({ vhost: x.vhost, name: x.name, type: x.type, durable: x.durable, arguments: x.arguments });
        infos.set(x, i);
      }
      return i;
    };
    const type: CustomExchangeType = {
      provider: plugin,
      route: (x, routingKey, headers, message, bindings) => {
        try {
          const view = messageView(x.name, routingKey, headers as FieldTable | null, message);
          return spec.route(view, bindings as readonly PluginBinding[], info(x)) as ReadonlyArray<BindingRecord | string>;
        } catch (e) {
          this.counters.routeFailures++;
          this.failure('exchange type failed to route a message', plugin, e, { exchange: x.name });
          throw e;
        }
      },
    };
    if (spec.validateBinding !== undefined) {
      const validate = spec.validateBinding.bind(spec);
      type.validateBinding = (b, x) => validate(b as PluginBinding, info(x)) ?? null;
    }
    if (spec.declared !== undefined) this.declaredHooks.set(type, spec.declared.bind(spec));
    if (spec.deleted !== undefined) this.deletedHooks.set(type, spec.deleted.bind(spec));
    if (spec.validateExchange !== undefined) {
      const validate = spec.validateExchange.bind(spec);
      type.validateDeclare = (x) => validate(info(x)) ?? null;
    }
    return type;
  }

  /** After a declare of an exchange of a plugin type: its `declared` hook; null or the failure text. */
  exchangeDeclared(x: ExchangeRecord, admin: VhostAdmin): Promise<string | null> {
    return this.exchangeHook(this.declaredHooks, 'prepare', x, admin);
  }

  /** After exchanges were deleted: the `deleted` hooks of their types; null or the first failure text. */
  async exchangesDeleted(xs: readonly ExchangeRecord[], admin: VhostAdmin): Promise<string | null> {
    let failed: string | null = null;
    for (const x of xs) failed ??= await this.exchangeHook(this.deletedHooks, 'clean up after', x, admin);
    return failed;
  }

  private async exchangeHook(hooks: Map<CustomExchangeType, (x: ExchangeInfo, admin: VhostAdmin) => Promise<void> | void>, what: string,
    x: ExchangeRecord, admin: VhostAdmin): Promise<string | null> {
    const type = customExchangeType(x.type);
    const hook = type === undefined ? undefined : hooks.get(type);
    if (hook === undefined || type === undefined) return null;
    try {
      await hook(Object.freeze({ vhost: x.vhost, name: x.name, type: x.type, durable: x.durable, arguments: x.arguments }), admin);
      return null;
    } catch (e) {
      this.failure(`exchange type failed to ${what} an exchange`, type.provider, e, { exchange: x.name });
      return `plugin '${type.provider}' failed to ${what} exchange '${x.name}': ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  /** Runs the publish interceptors in order over the message about to be routed. */
  interceptPublish(message: StoredMessage): PublishVerdict {
    let current = message;
    for (const hook of this.publishHooks) {
      let r: ReturnType<PublishInterceptor>;
      try {
        r = hook.value(messageView(current.exchange, current.routingKey, null, current));
      } catch (e) {
        this.counters.publishInterceptorFailures++;
        this.failure('publish interceptor failed', hook.plugin, e, { exchange: current.exchange });
        return { refuse: { code: 541, text: `plugin '${hook.plugin}' failed while intercepting a publish: ${e instanceof Error ? e.message : String(e)}` } };
      }
      if (r === undefined || r === null) continue;
      if (r.refuse !== undefined) {
        this.counters.refusedPublishes++;
        return { refuse: { code: validRefusalCode(r.refuse.code), text: String(r.refuse.text) } };
      }
      current = changed(current, r.headers, r.properties);
    }
    return current;
  }

  /** Runs the deliver interceptors; one that throws is counted and the message goes out as it was. */
  interceptDeliver(message: StoredMessage, queue: string, redelivered: boolean): StoredMessage {
    let current = message;
    for (const hook of this.deliverHooks) {
      try {
        const r = hook.value(new DeliveryView(current.exchange, current.routingKey, null, current, queue, redelivered));
        if (r !== undefined && r !== null) current = changed(current, r.headers, r.properties);
      } catch (e) {
        this.counters.deliverInterceptorFailures++;
        this.failure('deliver interceptor failed', hook.plugin, e, { queue });
      }
    }
    return current;
  }

  /**
   * Asks the backends in order; the first that allows admits. null: none did (the internal users
   * decide next). A backend that throws or rejects is counted and counts as not admitting.
   */
  async authenticate(user: string, password: string, connection: ConnectionInfo): Promise<Admission | null> {
    for (const b of this.backends) {
      try {
        const d = await b.value.authenticate(user, password, connection);
        if (d !== null && d !== undefined && d.allow === true) return { backend: b.value, plugin: b.plugin, tags: [...(d.tags ?? [])] };
        if (d !== null && d !== undefined && typeof d.reason === 'string') this.logger.info('auth backend refused a login', { plugin: b.plugin, user, reason: d.reason });
      } catch (e) {
        this.counters.authBackendFailures++;
        this.failure('auth backend failed', b.plugin, e, { user });
      }
    }
    return null;
  }

  /** An authorization question to the backend that admitted the connection; a failure is a no. */
  async authorize(a: Admission, request: AuthzRequest): Promise<boolean> {
    try {
      return (await a.backend.authorize!(request)) === true;
    } catch (e) {
      this.counters.authBackendFailures++;
      this.failure('auth backend failed to authorize', a.plugin, e, { user: request.user, kind: request.kind });
      return false;
    }
  }

  /** Tells the listeners of `event`, after the current turn; never waits for them. */
  emit<E extends LifecycleEvent>(event: E, payload: LifecycleEvents[E]): void {
    const list = this.listeners.get(event);
    if (list === undefined) return;
    setImmediate(() => {
      for (const l of list) {
        try {
          const r = (l.value as (e: LifecycleEvents[E]) => unknown)(payload);
          if (r instanceof Promise) r.catch((e: unknown) => this.listenerFailed(l.plugin, event, e));
        } catch (e) {
          this.listenerFailed(l.plugin, event, e);
        }
      }
    });
  }

  private listenerFailed(plugin: string, event: string, e: unknown): void {
    this.counters.listenerFailures++;
    this.failure('lifecycle listener failed', plugin, e, { event });
  }

  /** Logged with the counters; after the first few, only every 1000th (a hot path can fail a lot). */
  private failure(what: string, plugin: string, e: unknown, fields: Record<string, unknown>): void {
    this.failuresLogged++;
    if (this.failuresLogged > failuresLoggedMax && this.failuresLogged % 1000 !== 0) return;
    this.logger.warn(what, { plugin, error: e instanceof Error ? e.message : String(e), ...fields, ...this.counters });
  }
}

/** A plugin's log fields as the logger takes them: scalars kept, anything else as JSON. */
function logFields(f: Record<string, unknown> | undefined): LogFields {
  const out: Record<string, string | number | boolean | null> = {};
  for (const [k, v] of Object.entries(f ?? {})) {
    out[k] = v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : v === undefined ? null : safeJson(v);
  }
  return out;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

const builtinRouters = new Map<string, WeakMap<readonly PluginBinding[], ExchangeRouter>>();

/** The bindings a built-in type picks for the message; its index is kept per bindings array. */
function routeAs(type: BuiltinExchangeType, message: PluginMessage, bindings: readonly PluginBinding[]): PluginBinding[] {
  if (!builtinExchangeTypes.includes(type)) throw new Error(`routeAs: '${type}' is not a built-in exchange type`);
  let byList = builtinRouters.get(type);
  if (byList === undefined) builtinRouters.set(type, byList = new WeakMap());
  let router = byList.get(bindings);
  if (router === undefined) {
    router = createRouter({ vhost: '', name: '', type, durable: false, autoDelete: false, internal: false, arguments: {} });
    for (const b of bindings) router.add(b as BindingRecord);
    byList.set(bindings, router);
  }
  const hits: PluginBinding[] = [];
  const sink: RouteSink = { hit: (b) => { if (!hits.includes(b)) hits.push(b); }, queue: () => undefined };
  router.route(message.routingKey, type === 'headers' ? message.headers : null, sink);
  return hits;
}

function validRefusalCode(code: unknown): number {
  return typeof code === 'number' && Number.isInteger(code) && code >= 300 && code < 600 ? code : 406;
}

// ---- message views -------------------------------------------------------------------------------

const propertyNames = ['contentType', 'contentEncoding', 'deliveryMode', 'priority', 'correlationId', 'replyTo', 'expiration', 'messageId', 'timestamp', 'type', 'userId', 'appId', 'clusterId'] as const;

/**
 * A plugin's view of a message: properties and headers built on first read only. A class with
 * prototype getters: an object literal with getters per publish cost 1.5 us of CPU (measured,
 * bench/plugin-interceptor.ts), this costs tens of ns.
 */
class MessageView implements PluginMessage {
  private props: MessageProperties | undefined = undefined;
  private plain: Headers | undefined = undefined;

  constructor(readonly exchange: string, readonly routingKey: string, private readonly table: FieldTable | null,
    private readonly message: RoutedMessage | StoredMessage | null) {}

  get properties(): MessageProperties {
    if (this.props === undefined) {
      const p = this.message?.properties ?? {};
      const out: Record<string, unknown> = {};
      for (const k of propertyNames) if (p[k] !== undefined) out[k] = p[k];
      this.props = Object.freeze(out) as MessageProperties;
    }
    return this.props;
  }

  get headers(): Headers {
    this.plain ??= plainHeaders(this.table ?? (this.message?.properties['headers'] as FieldTable | undefined) ?? null);
    return this.plain;
  }

  header(name: string): HeaderValue | undefined {
    if (this.plain !== undefined) return Object.prototype.hasOwnProperty.call(this.plain, name) ? this.plain[name] : undefined;
    const table = this.table ?? (this.message?.properties['headers'] as FieldTable | undefined) ?? null;
    if (table === null || !Object.prototype.hasOwnProperty.call(table, name)) return undefined;
    const v = table[name] as unknown;
    return (isFieldValue(v) ? fromFieldValue(v) : v) as HeaderValue;
  }

  get body(): Buffer {
    const b = this.message?.body;
    return b === undefined ? Buffer.alloc(0) : Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }
}

class DeliveryView extends MessageView {
  constructor(exchange: string, routingKey: string, table: FieldTable | null, message: StoredMessage,
    readonly queue: string, readonly redelivered: boolean) {
    super(exchange, routingKey, table, message);
  }
}

/** The view a plugin gets (see MessageView). */
function messageView(exchange: string, routingKey: string, headers: FieldTable | null, message: RoutedMessage | StoredMessage | null): PluginMessage {
  return new MessageView(exchange, routingKey, headers, message);
}

function plainHeaders(table: FieldTable | null): Headers {
  const out: Record<string, unknown> = {};
  if (table !== null) {
    for (const key of Object.keys(table)) {
      const v = table[key] as unknown;
      out[key] = isFieldValue(v) ? fromFieldValue(v) : v;
    }
  }
  return Object.freeze(out) as Headers;
}

/** The message with an interceptor's changes: headers replace, properties merge; re-encoded on send. */
function changed(m: StoredMessage, headers: Headers | undefined, properties: MessageProperties | undefined): StoredMessage {
  if (headers === undefined && properties === undefined) return m;
  let props: Record<string, unknown> = { ...m.properties };
  if (properties !== undefined) {
    for (const k of propertyNames) if (k in properties) props[k] = (properties as Record<string, unknown>)[k];
  }
  if (headers !== undefined) props = { ...props, headers: taggedHeaders(headers, (m.properties.headers ?? null) as FieldTable | null) };
  return { ...m, properties: props, rawProperties: undefined };
}

/** Plain header values back to tagged ones; values the plugin left as they were keep their original tag. */
function taggedHeaders(headers: Headers, original: FieldTable | null): FieldTable {
  const out: Record<string, FieldValue> = {};
  for (const key of Object.keys(headers)) {
    const v = headers[key] as HeaderValue;
    const had = original?.[key];
    out[key] = had !== undefined && isFieldValue(had) && samePlain(fromFieldValue(had), v) ? had : tagged(v);
  }
  return out;
}

function samePlain(a: unknown, b: unknown): boolean {
  return a === b || (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && JSON.stringify(a) === JSON.stringify(b));
}

function tagged(v: HeaderValue): FieldValue {
  if (v === null || v === undefined) return { tag: 'V', value: null };
  if (isFieldValue(v)) return v;
  if (typeof v === 'boolean') return { tag: 't', value: v };
  if (typeof v === 'string') return { tag: 'S', value: Buffer.from(v, 'utf8') };
  if (typeof v === 'bigint') return { tag: 'l', value: v };
  if (typeof v === 'number') return Number.isSafeInteger(v) ? { tag: 'l', value: v } : { tag: 'd', value: v };
  if (Buffer.isBuffer(v)) return { tag: 'x', value: v };
  if (v instanceof Date) return { tag: 'T', value: Math.floor(v.getTime() / 1000) };
  if (Array.isArray(v)) return { tag: 'A', value: (v as readonly HeaderValue[]).map(tagged) };
  const table: Record<string, FieldValue> = {};
  for (const key of Object.keys(v)) table[key] = tagged((v as Headers)[key] as HeaderValue);
  return { tag: 'F', value: table };
}
