// The fault layer's TCP proxy on loopback: bytes pass in order, a delayed link keeps order, a stall
// in one direction holds only that direction, healing a stall resets the connection that held
// bytes (they are lost, like dropped packets), and a flaky link resets connections.

import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LinkProxy, passFault } from '../../cluster/link-proxy.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server that answers every chunk with 'echo:' + chunk. */
async function echoServer(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.on('data', (d) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  cleanups.push(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return { server, port, sockets };
}

async function proxyTo(port: number, random: () => number = () => 0.5): Promise<LinkProxy> {
  const proxy = await LinkProxy.start({ targetHost: '127.0.0.1', targetPort: port, random });
  cleanups.push(() => proxy.close());
  return proxy;
}

interface Client {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
  waitFor: (text: string) => Promise<void>;
}

async function client(port: number): Promise<Client> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  let data = '';
  const waiters: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    data += d.toString('utf8');
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  cleanups.push(() => { socket.destroy(); });
  const waitFor = async (text: string): Promise<void> => {
    for (let i = 0; i < 1000 && !data.includes(text); i++) {
      await Promise.race([new Promise<void>((r) => waiters.push(r)), closed]);
      if (socket.destroyed && !data.includes(text)) throw new Error(`closed before '${text}' (got '${data}')`);
    }
  };
  return { socket, received: () => data, closed, waitFor };
}

describe('link proxy', () => {
  it('passes bytes both ways in order', async () => {
    const { port } = await echoServer();
    const proxy = await proxyTo(port);
    const c = await client(proxy.port);
    for (let i = 0; i < 20; i++) c.socket.write(`m${i};`);
    await c.waitFor('m19;');
    const echoed = c.received().replace(/echo:/g, '');
    expect(echoed).toBe(Array.from({ length: 20 }, (_, i) => `m${i};`).join(''));
    expect(proxy.stats.bytesUp).toBeGreaterThan(0);
    expect(proxy.stats.bytesDown).toBeGreaterThan(0);
  });

  it('keeps order on a delayed link', async () => {
    const { port } = await echoServer();
    const proxy = await proxyTo(port);
    proxy.setFault('up', { ...passFault, delayMs: 30 });
    proxy.setFault('down', { ...passFault, delayMs: 10 });
    const c = await client(proxy.port);
    for (let i = 0; i < 10; i++) c.socket.write(`d${i};`);
    await c.waitFor('d9;');
    expect(c.received().replace(/echo:/g, '')).toBe(Array.from({ length: 10 }, (_, i) => `d${i};`).join(''));
  });

  it('a stall holds one direction only, and healing it resets the connection that held bytes', async () => {
    const { port, sockets } = await echoServer();
    const proxy = await proxyTo(port);
    const c = await client(proxy.port);
    c.socket.write('before;');
    await c.waitFor('echo:before;');
    proxy.setFault('up', { ...passFault, stall: true });
    // The target can still talk to the dialer while the dialer's bytes are held.
    sockets[0]!.write('from-target;');
    await c.waitFor('from-target;');
    c.socket.write('held;');
    for (let i = 0; i < 10_000 && proxy.stats.chunksHeld === 0; i++) await new Promise((r) => setImmediate(r));
    expect(proxy.stats.chunksHeld).toBe(1);
    // The held bytes never reach the target: the connection is reset when the stall heals.
    proxy.setFault('up', passFault);
    await c.closed;
    expect(c.received()).not.toContain('held;');
    expect(proxy.openConnections).toBe(0);
    // A new connection after healing works.
    const c2 = await client(proxy.port);
    c2.socket.write('after;');
    await c2.waitFor('echo:after;');
  });

  it('a flaky link resets connections with the given probability', async () => {
    const { port } = await echoServer();
    const proxy = await proxyTo(port, () => 0.1);
    proxy.setFault('up', { ...passFault, resetProbability: 0.2 });
    const c = await client(proxy.port);
    c.socket.write('x');
    await c.closed;
    expect(proxy.stats.resets).toBe(1);
    proxy.setFault('up', { ...passFault, resetProbability: 0.05 });
    const c2 = await client(proxy.port);
    c2.socket.write('y;');
    await c2.waitFor('echo:y;');
  });
});
