// A tiny authoritative DNS server for tests and the fault suite (UDP, A and AAAA only): the names it
// knows and their addresses can change while it runs, so a test controls what peer discovery finds.

import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';

const typeA = 1;
const typeAAAA = 28;

export class TestDnsServer {
  /** name (lower case, no trailing dot) -> addresses. */
  readonly records = new Map<string, string[]>();
  queries = 0;

  private constructor(private readonly socket: Socket, readonly host: string, readonly port: number) {}

  static async start(host = '127.0.0.1'): Promise<TestDnsServer> {
    const socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => resolve());
    });
    const server = new TestDnsServer(socket, host, socket.address().port);
    socket.on('message', (msg, from) => {
      const answer = server.answer(msg);
      if (answer !== undefined) socket.send(answer, from.port, from.address);
    });
    return server;
  }

  /** host:port for --dns-server. */
  get address(): string {
    return isIP(this.host) === 6 ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private answer(msg: Buffer): Buffer | undefined {
    if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined;
    this.queries++;
    let at = 12;
    const labels: string[] = [];
    while (at < msg.length && msg[at]! !== 0) {
      const len = msg[at]!;
      labels.push(msg.subarray(at + 1, at + 1 + len).toString('ascii'));
      at += 1 + len;
    }
    const questionEnd = at + 5;
    if (questionEnd > msg.length) return undefined;
    const qtype = msg.readUInt16BE(at + 1);
    const name = labels.join('.').toLowerCase();
    const known = this.records.get(name);
    const family = qtype === typeA ? 4 : qtype === typeAAAA ? 6 : 0;
    const addresses = (known ?? []).filter((a) => isIP(a) === family);
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0);
    // QR, AA, RD copied; rcode 3 (NXDOMAIN) for a name we do not know.
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | (known === undefined ? 3 : 0), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(addresses.length, 6);
    const answers = addresses.map((a) => {
      const rdata = family === 4 ? Buffer.from(a.split('.').map(Number)) : ipv6Bytes(a);
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0);
      rr.writeUInt16BE(qtype, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(1, 6);
      rr.writeUInt16BE(rdata.length, 10);
      return Buffer.concat([rr, rdata]);
    });
    return Buffer.concat([header, msg.subarray(12, questionEnd), ...answers]);
  }
}

function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
