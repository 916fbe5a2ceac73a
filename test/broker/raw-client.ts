// A raw AMQP client over a TCP socket for tests that must send what real clients never send:
// it writes bytes as given and reads the broker's frames with the wire decoder.

import { connect, type Socket } from 'node:net';
import { decodeMethod, encodeMethodFrame, FrameDecoder, isProtocolError as isFault, protocolHeader, type AmqpMethod, type Frame } from '../../src/amqp/index.js';

export class RawClient {
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  readonly closed: Promise<void>;
  bytes = Buffer.alloc(0);
  private readonly decoder = new FrameDecoder(0x7fffffff);

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.bytes = Buffer.concat([this.bytes, chunk]);
      const out: Frame[] = [];
      this.decoder.push(chunk, out);
      this.frames.push(...out);
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => {
      resolve();
      for (const w of this.waiters.splice(0)) w();
    }));
  }

  static async open(port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Handshake up to open-ok, with the given tune-ok values. */
  static async handshake(port: number, tune: { frameMax?: number; channelMax?: number; heartbeat?: number } = {}): Promise<RawClient> {
    const c = await RawClient.open(port);
    c.write(protocolHeader);
    await c.method('connection.start');
    c.send(0, {
      name: 'connection.start-ok', clientProperties: { capabilities: { tag: 'F', value: { 'connection.blocked': { tag: 't', value: true }, consumer_cancel_notify: { tag: 't', value: true } } } },
      mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US',
    });
    await c.method('connection.tune');
    c.send(0, { name: 'connection.tune-ok', channelMax: tune.channelMax ?? 2047, frameMax: tune.frameMax ?? 131072, heartbeat: tune.heartbeat ?? 0 });
    c.send(0, { name: 'connection.open', virtualHost: '/', capabilities: '', insist: false });
    await c.method('connection.open-ok');
    return c;
  }

  write(b: Buffer): void {
    this.socket.write(b);
  }

  send(channel: number, m: AmqpMethod): void {
    this.write(encodeMethodFrame(channel, m));
  }

  /** The next method frame of the given name (earlier frames are consumed), or throws on close. */
  async method<N extends AmqpMethod['name']>(name: N, ms = 5000): Promise<Extract<AmqpMethod, { name: N }>> {
    const deadline = Date.now() + ms;
    for (;;) {
      while (this.frames.length > 0) {
        const f = this.frames.shift()!;
        if (f.type !== 1) continue;
        const m = decodeMethod(f.payload);
        if (!isFault(m) && m.name === name) return m as Extract<AmqpMethod, { name: N }>;
      }
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error(`closed before ${name}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${name}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** The next connection.close or channel.close from the broker. */
  async close(kind: 'connection' | 'channel' = 'connection'): Promise<{ replyCode: number; replyText: string }> {
    return kind === 'connection' ? this.method('connection.close') : this.method('channel.close');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A raw frame with any type, channel and payload, and a chosen end octet. */
export function rawFrame(type: number, channel: number, payload: Buffer, end = 0xce): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b[0] = type;
  b.writeUInt16BE(channel, 1);
  b.writeUInt32BE(payload.length, 3);
  payload.copy(b, 7);
  b[7 + payload.length] = end;
  return b;
}
