// One AMQP connection: protocol header, start/tune/open handshake, heartbeats both ways, channel
// table, connection.blocked under the memory and disk alarms, credit flow (credit-flow.ts: not read
// while too much of its work is unfinished), close handshakes, and batched writes. Every
// protocol error of the connection becomes a close in `fail` (one place).

import type { Socket } from 'node:net';
import type { Logger } from '../lib/log.js';
import {
  checkUserChannelLimit, checkUserConnectionLimit, checkVhostAccess, checkVhostConnectionLimit, findUser,
} from '../model/index.js';
import { checkPassword, isLoopback, parseAmqPlain, parsePlain, saslMechanisms } from './auth.js';
import { authorizeVhost } from './plugin-authz.js';
import type { Admission } from './plugin-host.js';
import { Channel } from './channel.js';
import { blockedReason } from './disk-alarm.js';
import { amqpError, amqpErrorText, fromModel, type ProtocolError } from './errors.js';
import { limits } from './limits.js';
import { channelInfo, connectionName, plainProperties, type ConnectionInfo } from './connection-info.js';
import type { NodeContext } from './node-context.js';
import { CreditFlow } from './credit-flow.js';
import {
  decodeMethod, encodeMethodFrame, FrameDecoder, FrameType, heartbeatFrame,
  isProtocolError as isCodecError, methodInfo, parseProtocolHeader, toFieldTable,
  type AmqpMethod, type AmqpMethodName, type FieldTable, type Frame,
} from '../amqp/index.js';

// 'login': start-ok received, a refusal waiting out the failed-login delay (no second start-ok).
type State = 'header' | 'start-ok' | 'login' | 'tune-ok' | 'open' | 'opened' | 'closing' | 'closed';

const capabilities = ['publisher_confirms', 'exchange_exchange_bindings', 'basic.nack', 'consumer_cancel_notify',
  'connection.blocked', 'consumer_priorities', 'authentication_failure_close', 'per_consumer_qos', 'direct_reply_to'];

function serverProperties(ctx: NodeContext): FieldTable {
  const caps: Record<string, boolean> = {};
  for (const c of capabilities) caps[c] = true;
  return toFieldTable({
    capabilities: caps,
    product: 'espresso',
    version: '0.1.0',
    cluster_name: ctx.nodeId,
    platform: `Node.js ${process.version}`,
    copyright: 'espresso contributors',
    information: 'A quorum-replicated AMQP 0-9-1 broker; licensed under MIT',
  });
}

function methodIds(name: AmqpMethodName): { classId: number; methodId: number } {
  return methodInfo(name);
}

export class Connection {
  private state: State = 'header';
  private readonly decoder = new FrameDecoder(limits.frameBeforeTuneBytes);
  private header = Buffer.alloc(0);
  private readonly channels = new Map<number, Channel>();
  private outbox: Buffer[] = [];
  private flushScheduled = false;
  private backlog: Frame[] = [];
  private backlogAt = 0;
  private draining = false;
  private readonly logger: Logger;
  private timers: NodeJS.Timeout[] = [];
  private readAtMs = 0;
  private wroteSinceTick = false;
  private clientCaps: FieldTable = {};
  private clientProperties: FieldTable = {};
  private heartbeatSec = 0;
  private blockedSent = false;
  private publishedSinceAlarm = false;
  private pausedFor = new Set<string>();
  private readonly credit = new CreditFlow();
  /** Counted in ctx.openConnections (from connection.open-ok until the socket goes). */
  private counted = false;
  /** Why the connection ends, for the log line of its close (unset: the client dropped the socket). */
  private closeReason: string | undefined = undefined;
  private openedAtMs = 0;
  frameMaxBytes: number = limits.frameBeforeTuneBytes;
  channelMax = 0;
  user = '';
  vhost = '/';
  readonly remote: string;
  /** The plugin auth backend that admitted this connection (null: an internal user). */
  admission: Admission | null = null;
  /** Positive answers of that backend's authorize, by question (plugin-authz.ts). */
  readonly authzAllowed = new Set<string>();

  /**
   * `secure`: the socket is TLS; peerUser is the CN of a verified client certificate (tls.ts),
   * the user SASL EXTERNAL logs in as (offered only then).
   */
  constructor(private readonly socket: Socket, readonly id: string, readonly ctx: NodeContext, private readonly onGone: () => void,
    private readonly secure?: { readonly peerUser: string | undefined }) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.logger = ctx.logger.child('connection');
    this.readAtMs = ctx.clock.nowMs();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.logger.debug('socket error', { connection: id, error: e.message }));
    socket.on('close', () => this.teardown());
    this.timers.push(setTimeout(() => {
      if (this.state !== 'opened' && this.state !== 'closed') {
        this.logger.warn('handshake timeout', { connection: id, remote: this.remote });
        socket.destroy();
      }
    }, limits.handshakeTimeoutMs));
    this.logger.debug('accepted', { connection: id, remote: this.remote });
  }

  get ownerNode(): string {
    return this.ctx.nodeId;
  }

  /** Past connection.open-ok and not closing: what the management API lists. */
  get opened(): boolean {
    return this.state === 'opened';
  }

  /** This connection and its channels as the management API lists them. */
  describe(): ConnectionInfo {
    const s = this.socket;
    return {
      name: connectionName(s.remoteAddress ?? '?', s.remotePort ?? 0, s.localAddress ?? '?', s.localPort ?? 0),
      id: this.id, node: this.ctx.nodeId, user: this.user, vhost: this.vhost, host: s.localAddress ?? '', port: s.localPort ?? 0,
      peerHost: s.remoteAddress ?? '', peerPort: s.remotePort ?? 0, state: this.flowState, connectedAtMs: this.openedAtMs,
      frameMax: this.frameMaxBytes, channelMax: this.channelMax, heartbeatSec: this.heartbeatSec,
      clientProperties: plainProperties(this.clientProperties), channels: [...this.channels.values()].map(channelInfo),
    };
  }

  hasCapability(name: string): boolean {
    const v = this.clientCaps[name];
    return v !== undefined && v.tag === 't' && v.value;
  }

  /** Consumers on this connection's channels (for the node's consumers gauge). */
  consumerCount(): number {
    let n = 0;
    for (const ch of this.channels.values()) n += ch.consumers.size;
    return n;
  }

  // ---- input ---------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.readAtMs = this.ctx.clock.nowMs();
    if (this.state === 'closed') return;
    if (this.state === 'header') {
      this.header = Buffer.concat([this.header, chunk]);
      const answer = parseProtocolHeader(this.header);
      if (answer.kind === 'incomplete') return;
      if (answer.kind === 'refuse') {
        this.logger.info('protocol header refused', { connection: this.id, reason: answer.reason });
        this.socket.end(answer.reply);
        this.state = 'closed';
        return;
      }
      chunk = this.header.subarray(8);
      this.header = Buffer.alloc(0);
      this.state = 'start-ok';
      this.sendMethod(0, {
        name: 'connection.start', versionMajor: 0, versionMinor: 9, serverProperties: serverProperties(this.ctx),
        mechanisms: Buffer.from(this.mechanisms()), locales: Buffer.from('en_US'),
      });
      if (chunk.length === 0) return;
    }
    const frames: Frame[] = [];
    const fault = this.decoder.push(chunk, frames);
    for (const f of frames) this.backlog.push(f);
    this.drain();
    if (fault !== null) this.fail(amqpErrorText(fault.replyCode, fault.replyText, 'connection'), fault.classId, fault.methodId);
  }

  /** Handles queued frames, at most framesPerTurnMax per turn, then yields to the event loop. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    let handled = 0;
    while (this.backlogAt < this.backlog.length && handled < limits.framesPerTurnMax && this.state !== 'closed') {
      const frame = this.backlog[this.backlogAt++]!;
      handled++;
      this.handleFrame(frame);
    }
    if (this.backlogAt >= this.backlog.length) {
      this.backlog = [];
      this.backlogAt = 0;
      this.draining = false;
      return;
    }
    this.pause('turn');
    setImmediate(() => {
      this.draining = false;
      this.resume('turn');
      this.drain();
    });
  }

  pause(reason: string): void {
    this.pausedFor.add(reason);
    this.socket.pause();
  }

  resume(reason: string): void {
    this.pausedFor.delete(reason);
    if (this.pausedFor.size === 0 && this.state !== 'closed') this.socket.resume();
  }

  private handleFrame(frame: Frame): void {
    if (frame.type === FrameType.heartbeat) {
      if (frame.channel !== 0) this.fail(amqpError(505, 'heartbeat frame on non-zero channel ' + frame.channel), 0, 0);
      return;
    }
    if (this.state === 'closing') {
      if (frame.channel === 0 && frame.type === FrameType.method) this.handleWhileClosing(frame);
      return;
    }
    if (frame.channel === 0) {
      if (frame.type !== FrameType.method) {
        this.fail(amqpError(505, `${frame.type === FrameType.header ? 'content header' : 'content body'} frame on channel 0`), 0, 0);
        return;
      }
      const method = decodeMethod(frame.payload);
      if (isCodecError(method)) return this.fail(amqpErrorText(method.replyCode, method.replyText, 'connection'), method.classId, method.methodId);
      this.handleConnectionMethod(method);
      return;
    }
    if (this.state !== 'opened') {
      this.fail(amqpError(504, `frame on channel ${frame.channel} before connection.open completed`), 0, 0);
      return;
    }
    this.handleChannelFrame(frame);
  }

  private handleChannelFrame(frame: Frame): void {
    const existing = this.channels.get(frame.channel);
    if (existing !== undefined) {
      existing.handleFrame(frame);
      return;
    }
    if (frame.type !== FrameType.method) {
      this.fail(amqpError(504, `expected 'channel.open' on channel ${frame.channel}, got a content frame`), 0, 0);
      return;
    }
    const method = decodeMethod(frame.payload);
    if (isCodecError(method)) return this.fail(amqpErrorText(method.replyCode, method.replyText, 'connection'), method.classId, method.methodId);
    if (method.name !== 'channel.open') {
      const ids = methodIds(method.name);
      this.fail(amqpError(504, `expected 'channel.open' on channel ${frame.channel}, got '${method.name}'`), ids.classId, ids.methodId);
      return;
    }
    if (frame.channel > this.channelMax) {
      this.fail(amqpError(530, `number of channels opened (${this.channels.size}) has reached the negotiated channel_max (${this.channelMax})`), 20, 10);
      return;
    }
    const overUser = checkUserChannelLimit(this.ctx.metadata.state, this.user, this.ctx.tracking.channelsOf(this.user));
    if (overUser !== null) return this.fail(fromModel(overUser), 0, 0);
    const channel = new Channel(this, frame.channel);
    this.channels.set(frame.channel, channel);
    this.ctx.tracking.channelOpened(this.user);
    this.sendMethod(frame.channel, { name: 'channel.open-ok', channelId: Buffer.alloc(0) });
  }

  /** Called by a channel once its close handshake finished: the id may be reused. */
  channelClosed(number: number): void {
    if (this.channels.delete(number)) this.ctx.tracking.channelClosed(this.user);
  }

  private handleWhileClosing(frame: Frame): void {
    const method = decodeMethod(frame.payload);
    if (isCodecError(method)) return;
    if (method.name === 'connection.close-ok') this.finish();
    else if (method.name === 'connection.close') {
      this.sendMethod(0, { name: 'connection.close-ok' });
      this.flush();
      this.finish();
    }
  }

  // ---- connection methods --------------------------------------------------------------------

  private expect(method: AmqpMethod, name: AmqpMethodName, state: State): boolean {
    if (method.name === name && this.state === state) return true;
    const ids = methodIds(method.name);
    this.fail(amqpError(503, `expected '${name}' but got '${method.name}' in connection state ${this.state}`), ids.classId, ids.methodId);
    return false;
  }

  private handleConnectionMethod(method: AmqpMethod): void {
    switch (method.name) {
      case 'connection.start-ok':
        if (this.expect(method, 'connection.start-ok', 'start-ok')) this.onStartOk(method);
        return;
      case 'connection.tune-ok':
        if (this.expect(method, 'connection.tune-ok', 'tune-ok')) this.onTuneOk(method);
        return;
      case 'connection.open':
        if (this.expect(method, 'connection.open', 'open')) this.onOpen(method.virtualHost);
        return;
      case 'connection.close':
        this.closeReason ??= `client closed the connection (${method.replyCode} ${method.replyText})`;
        this.sendMethod(0, { name: 'connection.close-ok' });
        this.flush();
        this.finish();
        return;
      case 'connection.close-ok':
        this.finish();
        return;
      case 'connection.update-secret':
        // Tokens are not used for authentication here: accept the refresh as a no-op.
        if (this.state !== 'opened') return void this.expect(method, 'connection.open', 'open');
        this.sendMethod(0, { name: 'connection.update-secret-ok' });
        return;
      case 'connection.blocked':
      case 'connection.unblocked':
        return; // a client may tell us it is blocked; nothing to do
      default: {
        const ids = methodIds(method.name);
        this.fail(amqpError(this.state === 'opened' ? 504 : 503, `unexpected method '${method.name}' on channel 0`), ids.classId, ids.methodId);
      }
    }
  }

  /** PLAIN and AMQPLAIN; EXTERNAL too on TLS with a verified client certificate (never on plain TCP: py-amqp would pick it). */
  private mechanisms(): string {
    return this.secure?.peerUser !== undefined ? `${saslMechanisms} EXTERNAL` : saslMechanisms;
  }

  private onStartOk(m: Extract<AmqpMethod, { name: 'connection.start-ok' }>): void {
    this.clientProperties = m.clientProperties;
    const caps = m.clientProperties['capabilities'];
    if (caps !== undefined && caps.tag === 'F') this.clientCaps = caps.value;
    if (!this.mechanisms().split(' ').includes(m.mechanism)) {
      this.fail(amqpError(503, `unknown authentication mechanism '${m.mechanism}'; offered: ${this.mechanisms()}`), 10, 11);
      return;
    }
    if (m.mechanism !== 'EXTERNAL' && this.ctx.plugins?.hasAuthBackends === true) return void this.loginThroughPlugins(m.mechanism, m.response);
    const login = this.authenticate(m.mechanism, m.response);
    if (login !== null) this.loggedIn(login);
  }

  /** The plugins' auth backends first (plugin-host.ts), then the internal users (authenticate). */
  private async loginThroughPlugins(mechanism: string, response: Buffer): Promise<void> {
    const creds = mechanism === 'PLAIN' ? parsePlain(response) : parseAmqPlain(response);
    const info = { remoteAddress: this.socket.remoteAddress ?? '', remotePort: this.socket.remotePort ?? 0, mechanism, node: this.ctx.nodeId };
    const admitted = creds === null ? null : await this.ctx.plugins!.authenticate(creds.user, creds.pass, info);
    if (this.state !== 'start-ok') return;
    if (admitted === null || creds === null) {
      const login = this.authenticate(mechanism, response);
      if (login !== null) this.loggedIn(login);
      return;
    }
    this.admission = admitted;
    this.loggedIn(creds.user);
  }

  private loggedIn(login: string): void {
    if (this.ctx.config.loopbackUsers.includes(login) && !isLoopback(this.socket.remoteAddress)) {
      this.refuseLogin(`User '${login}' can only connect via localhost`);
      return;
    }
    this.user = login;
    this.state = 'tune-ok';
    this.sendMethod(0, { name: 'connection.tune', channelMax: this.ctx.config.channelMax, frameMax: this.ctx.config.frameMaxBytes, heartbeat: this.ctx.config.heartbeatSec });
  }

  /**
   * The user the SASL response proves, or null after refusing it. EXTERNAL: the verified client
   * certificate's CN names an existing user, no password (RabbitMQ ignores the response).
   */
  private authenticate(mechanism: string, response: Buffer): string | null {
    const refused = `Login was refused using authentication mechanism ${mechanism}. For details see the broker logfile.`;
    if (mechanism === 'EXTERNAL') {
      const name = this.secure?.peerUser ?? '';
      if (findUser(this.ctx.metadata.state, name) !== undefined) return name;
      this.logger.warn('login refused: no user named by the client certificate', { connection: this.id, user: name, remote: this.remote });
      this.refuseLogin(refused);
      return null;
    }
    const creds = mechanism === 'PLAIN' ? parsePlain(response) : parseAmqPlain(response);
    if (creds === null) {
      this.fail(amqpError(502, `malformed ${mechanism} response`), 10, 11);
      return null;
    }
    const address = this.socket.remoteAddress ?? '?';
    const throttle = this.ctx.loginThrottle;
    const nowMs = this.ctx.clock.nowMs();
    if (throttle.check(address, creds.user, nowMs).kind === 'locked') {
      // Logged once when the lockout began; each refused try only at debug.
      this.logger.debug('login refused: locked out after failed logins', { connection: this.id, user: creds.user, remote: this.remote });
      this.refuseLoginLater(refused);
      return null;
    }
    const user = findUser(this.ctx.metadata.state, creds.user);
    if (user === undefined || !checkPassword(creds.pass, user.passwordHash)) {
      this.logger.warn('login refused', { connection: this.id, user: creds.user, remote: this.remote });
      const lockedUntilMs = throttle.failed(address, creds.user, nowMs);
      if (lockedUntilMs !== null) {
        this.logger.warn('login locked out: too many failed logins of this user from this address; every login of it from there is refused for a while', {
          user: creds.user, address, failures: this.ctx.config.loginFailuresMax, lockoutMs: lockedUntilMs - nowMs,
        });
      }
      this.refuseLoginLater(refused);
      return null;
    }
    throttle.succeeded(address, creds.user);
    return creds.user;
  }

  /** A refused password login is answered after the failed-login delay: a guessing client waits per try. */
  private refuseLoginLater(text: string): void {
    this.state = 'login';
    this.pause('login');
    this.timers.push(setTimeout(() => this.refuseLogin(text), this.ctx.config.loginFailureDelayMs));
  }

  private refuseLogin(text: string): void {
    if (this.hasCapability('authentication_failure_close')) this.fail(amqpError(403, text), 10, 11);
    else {
      this.state = 'closed';
      this.socket.destroy();
    }
  }

  private onTuneOk(m: Extract<AmqpMethod, { name: 'connection.tune-ok' }>): void {
    const { frameMaxBytes, channelMax } = this.ctx.config;
    if (m.frameMax === 0 || m.frameMax > frameMaxBytes) {
      return this.fail(amqpError(530, `negotiated frame_max = ${m.frameMax}${m.frameMax === 0 ? ' (no limit)' : ''} is higher than the maximum allowed value (${frameMaxBytes})`), 10, 31);
    }
    if (m.frameMax < limits.frameMinBytes) {
      return this.fail(amqpError(530, `frame_max=${m.frameMax} < ${limits.frameMinBytes} min size`), 10, 31);
    }
    if (m.channelMax === 0 || m.channelMax > channelMax) {
      return this.fail(amqpError(530, `negotiated channel_max = ${m.channelMax}${m.channelMax === 0 ? ' (no limit)' : ''} is higher than the maximum allowed value (${channelMax})`), 10, 31);
    }
    this.frameMaxBytes = m.frameMax;
    this.decoder.setFrameMax(m.frameMax);
    this.channelMax = m.channelMax;
    this.heartbeatSec = m.heartbeat;
    if (m.heartbeat > 0) this.startHeartbeats(m.heartbeat);
    this.state = 'open';
  }

  /** connection.open: RabbitMQ's order of checks: node limits, vhost and user limits, vhost access. */
  private onOpen(vhost: string): void {
    const { state } = this.ctx.metadata;
    const { tracking, config } = this.ctx;
    // Only opened connections count: sockets still in their handshake are not connections yet,
    // so a burst of N above the limit accepts exactly the limit.
    if (this.ctx.openConnections >= config.maxConnections) {
      return this.fail(amqpError(530, `connection refused: node connection limit (${config.maxConnections}) is reached`), 10, 40);
    }
    if (!tracking.admitOpen(this.ctx.clock.nowMs(), config.maxConnectionRate)) {
      return this.fail(amqpError(530, `connection refused: node connection rate limit (${config.maxConnectionRate} per second) is reached`), 10, 40);
    }
    const denied = checkVhostConnectionLimit(state, this.user, vhost, tracking.connectionsIn(vhost))
      ?? checkUserConnectionLimit(state, this.user, tracking.connectionsOf(this.user))
      ?? (this.admission?.backend.authorize !== undefined ? null : checkVhostAccess(state, this.user, vhost));
    if (denied !== null) return this.fail(fromModel(denied), 10, 40);
    // A plugin auth backend that authorizes decides vhost access (plugin-authz.ts).
    if (this.admission?.backend.authorize !== undefined) {
      void authorizeVhost(this, vhost).then((refused) => {
        if (this.state !== 'open') return;
        if (refused !== null) return this.fail(refused, 10, 40);
        this.open(vhost);
      });
      return;
    }
    this.open(vhost);
  }

  private open(vhost: string): void {
    const { tracking } = this.ctx;
    this.vhost = vhost;
    this.state = 'opened';
    this.ctx.openConnections++;
    tracking.connectionOpened(vhost, this.user);
    this.counted = true;
    this.openedAtMs = this.ctx.clock.nowMs();
    this.sendMethod(0, { name: 'connection.open-ok', knownHosts: '' });
    if (this.ctx.memoryAlarm || this.ctx.diskAlarm) this.alarmsChanged();
    this.logger.info('connection opened', { connection: this.id, user: this.user, vhost, remote: this.remote });
    this.ctx.plugins?.emit('connection.opened', { id: this.id, user: this.user, vhost, remote: this.remote });
  }

  private startHeartbeats(sec: number): void {
    const intervalMs = (sec * 1000) / 2;
    const t = setInterval(() => {
      if (this.state === 'closed') return;
      if (!this.wroteSinceTick) this.send(heartbeatFrame);
      this.wroteSinceTick = false;
      // While we are not reading (flow, alarm) the client's heartbeats wait unread in the socket.
      if (this.pausedFor.size > 0) this.readAtMs = this.ctx.clock.nowMs();
      if (this.ctx.clock.nowMs() - this.readAtMs > sec * 2000) {
        this.logger.warn('missed heartbeats from client', { connection: this.id, timeoutSec: sec });
        this.closeReason ??= `missed heartbeats from client, timeout: ${sec}s`;
        this.state = 'closed';
        this.socket.destroy();
      }
    }, intervalMs);
    t.unref();
    this.timers.push(t);
  }

  // ---- resource alarms (memory, disk) --------------------------------------------------------

  /** The node's memory or disk alarm changed (ctx.memoryAlarm, ctx.diskAlarm): block or unblock. */
  alarmsChanged(): void {
    if (this.state !== 'opened') return;
    const raised = this.ctx.memoryAlarm || this.ctx.diskAlarm;
    if (raised && !this.blockedSent && this.hasCapability('connection.blocked')) {
      this.blockedSent = true;
      // As RabbitMQ: sent once per blocked period, naming the alarms up at that moment.
      this.sendMethod(0, { name: 'connection.blocked', reason: blockedReason(this.ctx.memoryAlarm, this.ctx.diskAlarm) });
    } else if (!raised && this.blockedSent) {
      this.blockedSent = false;
      this.sendMethod(0, { name: 'connection.unblocked' });
    }
    if (!raised) {
      this.publishedSinceAlarm = false;
      this.resume('alarm');
    } else if (this.publishedSinceAlarm) this.pause('alarm');
  }

  /** A channel saw a publish: under the alarm, stop reading this connection (TCP back-pressure). */
  notePublish(): void {
    if (!this.ctx.memoryAlarm && !this.ctx.diskAlarm) return;
    this.publishedSinceAlarm = true;
    this.pause('alarm');
  }

  // ---- credit flow -------------------------------------------------------------------------

  /** 'flow' while not read because too much of its work is unfinished (credit-flow.ts). */
  get flowState(): 'running' | 'flow' | 'blocked' {
    if (this.pausedFor.has('alarm')) return 'blocked';
    return this.credit.holding ? 'flow' : 'running';
  }

  /** Times this connection was held by credit flow, and its unfinished enqueues now. */
  get creditStats(): { holds: number; inFlight: number; inFlightBytes: number } {
    return { holds: this.credit.holds, inFlight: this.credit.inFlight, inFlightBytes: this.credit.inFlightBytes };
  }

  /**
   * Counts an enqueue of this connection until `work` settles; past the bound the connection is
   * not read until enough of its work finished. `work` always settles (committed, refused, or
   * failed by the queue's own timeouts), so a held connection is always read again.
   */
  track<T>(work: Promise<T>, bytes: number): Promise<T> {
    if (this.credit.started(bytes)) this.pause('credit');
    const done = (): void => {
      if (this.credit.finished(bytes)) this.resume('credit');
    };
    work.then(done, done);
    return work;
  }

  // ---- output --------------------------------------------------------------------------------

  sendMethod(channel: number, method: AmqpMethod): void {
    this.send(encodeMethodFrame(channel, method));
  }

  /** Bytes waiting to reach the client: this turn's outbox plus the socket's own buffer. */
  bufferedBytes(): number {
    let n = this.socket.writableLength;
    for (const b of this.outbox) n += b.length;
    return n;
  }

  /** Runs `fn` once the socket has drained (dropped if the connection goes first). */
  whenDrained(fn: () => void): void {
    this.socket.once('drain', fn);
  }

  /** Asks for a flush at the end of this turn (confirms resolved without other output). */
  requestFlush(): void {
    if (this.flushScheduled || this.state === 'closed') return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  send(buf: Buffer): void {
    if (this.state === 'closed') return;
    this.outbox.push(buf);
    this.wroteSinceTick = true;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes everything queued this turn with one corked write batch. */
  flush(): void {
    this.flushScheduled = false;
    for (const ch of this.channels.values()) ch.flushConfirms();
    if (this.outbox.length === 0 || this.socket.destroyed) {
      this.outbox = [];
      return;
    }
    const out = this.outbox;
    this.outbox = [];
    if (out.length === 1) {
      this.socket.write(out[0]!);
      return;
    }
    // Corked writes leave as one writev: no copy of large bodies, one syscall per turn.
    this.socket.cork();
    for (const b of out) this.socket.write(b);
    this.socket.uncork();
  }

  // ---- errors and closing --------------------------------------------------------------------

  /** The one place a connection-level protocol error turns into connection.close. */
  fail(error: ProtocolError, classId: number, methodId: number): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.logger.warn('connection error', { connection: this.id, replyCode: error.replyCode, replyText: error.replyText });
    this.closeReason ??= `closed by the node (${error.replyCode} ${error.replyText})`;
    const beforeStart = this.state === 'header';
    this.state = 'closing';
    if (beforeStart) return this.finish();
    this.sendMethod(0, { name: 'connection.close', replyCode: error.replyCode, replyText: error.replyText, classId, methodId });
    this.flush();
    this.pausedFor.clear();
    this.socket.resume();
    this.timers.push(setTimeout(() => this.finish(), limits.closeOkTimeoutMs));
  }

  /** Broker shutdown: 320 to the client, then the socket goes. */
  forceClose(text: string): void {
    if (this.state === 'opened') this.fail(amqpErrorText(320, text, 'connection'), 0, 0);
    else this.finish();
    setTimeout(() => this.finish(), 200).unref();
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.flush();
    this.state = 'closed';
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private teardown(): void {
    this.state = 'closed';
    if (this.counted) {
      this.ctx.openConnections--;
      this.ctx.tracking.connectionClosed(this.vhost, this.user);
    }
    this.counted = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    const channels = [...this.channels.values()];
    for (let i = 0; i < this.channels.size; i++) this.ctx.tracking.channelClosed(this.user);
    this.channels.clear();
    for (const ch of channels) ch.teardown();
    this.onGone();
    void this.ctx.metadata.apply({ kind: 'deleteExclusiveQueues', connection: { connectionId: this.id, nodeId: this.ctx.nodeId as never } })
      .then((r) => {
        if (r.ok) this.ctx.queues.dropDeleted(r.deletedQueues);
      });
    // As opens: at info for connections that were opened, at debug for sockets that never were.
    const fields = {
      connection: this.id, user: this.user, vhost: this.vhost, remote: this.remote,
      reason: this.closeReason ?? 'client closed the TCP connection without connection.close',
      ...(this.openedAtMs > 0 ? { openMs: this.ctx.clock.nowMs() - this.openedAtMs } : {}),
    };
    if (this.openedAtMs > 0) this.ctx.plugins?.emit('connection.closed', { id: this.id, user: this.user, vhost: this.vhost, remote: this.remote });
    if (this.openedAtMs > 0) this.logger.info('connection closed', fields);
    else this.logger.debug('connection closed', fields);
  }
}
