// Free TCP ports for the nodes that tests, benches and the fault suite start on loopback.
//
// A port the OS hands out for listen(0) comes from the ephemeral range (32768-60999 on Linux),
// the same range every outgoing connection takes its local port from: between asking and the
// node binding it, a client socket of this or a parallel test could take it ("cluster port ...
// already in use"). So ports are drawn at random below that range, checked by binding them, and
// never handed out twice by one process.

import { createServer } from 'node:net';

/** Below Linux's default ephemeral range, above the well-known and common service ports. */
const rangeLow = 20_000;
const rangeHigh = 32_767;
const attemptsMax = 500;
const handedOut = new Set<number>();

function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** One port that is free on 127.0.0.1 now and that this process has not handed out before. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < attemptsMax; i++) {
    const port = rangeLow + Math.floor(Math.random() * (rangeHigh - rangeLow + 1));
    if (handedOut.has(port) || !(await canBind(port, host))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port found in ${rangeLow}-${rangeHigh} after ${attemptsMax} tries`);
}

export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort(host));
  return ports;
}
