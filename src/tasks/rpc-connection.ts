// One AMQP connection that fails over: it connects to the first of several URLs that accepts, and
// when that connection drops it tries the others (the lost one last), pausing with backoff after a
// round in which none accepted, until closed. Its users set up their channels on every new link.

import * as amqp from 'amqplib';
import { RpcConnectError } from './rpc-errors.js';
import type { RpcLimits } from './limits.js';

/** What the SDK reports as it goes (for logs; nothing depends on a listener). */
export type RpcEvent =
  | { type: 'connected'; url: string }
  | { type: 'disconnected'; url: string; reason: string }
  | { type: 'connect-failed'; url: string; reason: string }
  | { type: 'channel-failed'; what: string; reason: string }
  | { type: 'skipped-expired'; method: string; callId: string }
  | { type: 'refused-redelivered'; method: string; callId: string }
  | { type: 'reply-dropped'; method: string; callId: string; reason: string };

/** One live connection; `generation` grows with every new one. */
export interface Link {
  readonly conn: amqp.ChannelModel;
  readonly url: string;
  readonly generation: number;
}

export interface LinkUser {
  /** For events: 'caller', 'serve <method>'. */
  readonly name: string;
  /** Sets up this user's channels on a new link; a failure is reported and leaves the link up. */
  up(link: Link): Promise<void>;
  /** The link is gone: its channels are dead. */
  down(link: Link): void;
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^(amqps?:\/\/[^:/@]*:)[^@/]*@/, '$1***@');
}

function withDefaults(url: string, heartbeatSec: number): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}heartbeat=${heartbeatSec}`;
}

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class FailoverConnection {
  private link: Link | undefined;
  /** Index of the URL the next round starts with. */
  private next = 0;
  private generation = 0;
  private closed = false;
  private reconnecting: Promise<void> | undefined;
  private wakeSleep: (() => void) | undefined;
  private readonly users: LinkUser[] = [];

  constructor(
    private readonly urls: readonly string[],
    private readonly limits: RpcLimits,
    private readonly emit: (e: RpcEvent) => void,
    private readonly connectionName: string,
  ) {
    if (urls.length === 0) throw new TypeError('connectRpc needs at least one AMQP URL');
    for (const u of urls) if (!/^amqps?:\/\//.test(u)) throw new TypeError(`not an AMQP URL: '${redactUrl(u)}' (expected amqp://user:pass@host:port)`);
  }

  /** The first connection: one round over the URLs; throws RpcConnectError when none accepts. */
  async start(): Promise<void> {
    const failures = await this.round();
    if (failures !== undefined) throw new RpcConnectError(failures);
  }

  current(): Link | undefined {
    return this.link;
  }

  /** Adds a user; it is set up on the current link at once (awaited), and on every later one. */
  async attach(user: LinkUser): Promise<void> {
    this.users.push(user);
    const link = this.link;
    if (link !== undefined) await user.up(link);
  }

  detach(user: LinkUser): void {
    const i = this.users.indexOf(user);
    if (i >= 0) this.users.splice(i, 1);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wakeSleep?.();
    const link = this.link;
    this.link = undefined;
    if (link !== undefined) {
      for (const u of [...this.users]) u.down(link);
      await link.conn.close().catch(() => undefined);
    }
    await this.reconnecting;
  }

  /** Tries each URL once from `next`; undefined when one accepted, else why each failed. */
  private async round(): Promise<Array<{ url: string; reason: string }> | undefined> {
    const failures: Array<{ url: string; reason: string }> = [];
    for (let i = 0; i < this.urls.length && !this.closed; i++) {
      const index = (this.next + i) % this.urls.length;
      const url = this.urls[index]!;
      try {
        const conn = await this.open(url);
        if (this.closed) {
          await conn.close().catch(() => undefined);
          return undefined;
        }
        this.next = index;
        await this.adopt(conn, url);
        return undefined;
      } catch (e) {
        failures.push({ url: redactUrl(url), reason: reasonOf(e) });
        this.emit({ type: 'connect-failed', url: redactUrl(url), reason: reasonOf(e) });
      }
    }
    return failures;
  }

  private async open(url: string): Promise<amqp.ChannelModel> {
    const conn = await amqp.connect(withDefaults(url, this.limits.heartbeatSec), {
      timeout: this.limits.connectTimeoutMs, noDelay: true, clientProperties: { connection_name: this.connectionName },
    });
    // Errors always come with a close; the listener keeps an 'error' event from throwing.
    conn.on('error', () => undefined);
    return conn;
  }

  private async adopt(conn: amqp.ChannelModel, url: string): Promise<void> {
    const link: Link = { conn, url: redactUrl(url), generation: ++this.generation };
    this.link = link;
    conn.once('close', (err?: Error) => this.lost(link, err === undefined ? 'closed by the broker' : reasonOf(err)));
    this.emit({ type: 'connected', url: link.url });
    for (const u of [...this.users]) {
      if (this.link !== link) return;
      // One user failing (e.g. a 406 on its queue's declare) never keeps the others down.
      await u.up(link).catch((e: unknown) => this.emit({ type: 'channel-failed', what: u.name, reason: reasonOf(e) }));
    }
  }

  private lost(link: Link, reason: string): void {
    if (this.link !== link) return;
    this.link = undefined;
    this.emit({ type: 'disconnected', url: link.url, reason });
    for (const u of [...this.users]) u.down(link);
    if (this.closed) return;
    this.next = (this.next + 1) % this.urls.length;
    this.reconnecting ??= this.reconnect().finally(() => (this.reconnecting = undefined));
  }

  private async reconnect(): Promise<void> {
    let delayMs = this.limits.reconnectDelayMinMs;
    for (;;) {
      if (this.closed || this.link !== undefined) return;
      const failures = await this.round();
      // A link that came up and dropped again during its setup also lands here: pause all the same.
      if (this.closed || this.link !== undefined) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delayMs);
        this.wakeSleep = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wakeSleep = undefined;
      delayMs = failures === undefined ? this.limits.reconnectDelayMinMs : Math.min(delayMs * 2, this.limits.reconnectDelayMaxMs);
    }
  }
}
