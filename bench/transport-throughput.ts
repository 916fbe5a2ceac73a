// Transport throughput between two processes on loopback: 1 KiB items on the raft lane, the
// receiver acks progress on the control lane once per turn, the sender keeps a bounded window.
// Prints entries/s and CPU microseconds per entry for each side.
// With --latency: one 64-byte item every 2 ms, echoed back; prints round-trip p50/p99/max.
// Usage: npx tsx bench/transport-throughput.ts [--items-window 4096] [--seconds 5] [--sender-dials-only] [--latency]
import { spawn } from 'node:child_process';
import { freePort } from '../cluster/ports.js';
import { nodeId } from '../src/lib/ids.js';
import { silentLogger } from '../src/lib/log.js';
import { Lane, Transport } from '../src/transport/index.js';

const args = process.argv.slice(2);
const flag = (name: string, def: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const windowItems = flag('--items-window', 4096);
const seconds = flag('--seconds', 5);
const warmupMs = 1_500;
const itemBytes = 1024;
const senderDialsOnly = args.includes('--sender-dials-only');
const latencyMode = args.includes('--latency');

interface Report { role: string; items: number; cpuUs: number; wallMs: number; frames: number; bytes: number; rttUs?: number[] }

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function receiver(port: number, senderPort: number): Promise<void> {
  const t = await Transport.start({ nodeId: nodeId('rx'), listen: { host: '127.0.0.1', port }, secret: 'bench', logger: silentLogger });
  if (!senderDialsOnly) t.connect(nodeId('tx'), `127.0.0.1:${senderPort}`);
  let received = 0;
  let ackScheduled = false;
  let mark: { items: number; cpu: number; at: number; frames: number; bytes: number } | undefined;
  const ack = new Uint8Array(8);
  const stats = (): { frames: number; bytes: number } => {
    const s = t.stats().get(nodeId('tx'));
    return { frames: s?.framesReceived ?? 0, bytes: s?.bytesReceived ?? 0 };
  };
  t.onMessage((_from, lane, payload) => {
    if (lane === Lane.delivery) {
      t.send(nodeId('tx'), Lane.delivery, payload.slice());
      return;
    }
    if (lane === Lane.raft) {
      received++;
      if (!ackScheduled) {
        ackScheduled = true;
        setImmediate(() => {
          ackScheduled = false;
          new DataView(ack.buffer).setFloat64(0, received);
          t.send(nodeId('tx'), Lane.control, ack.slice());
        });
      }
      return;
    }
    if (lane === Lane.control && payload[0] === 1) {
      mark = { items: received, cpu: cpuUs(), at: Date.now(), ...stats() };
    } else if (lane === Lane.control && payload[0] === 2 && mark !== undefined) {
      const s = stats();
      const r: Report = { role: 'receiver', items: received - mark.items, cpuUs: cpuUs() - mark.cpu, wallMs: Date.now() - mark.at, frames: s.frames - mark.frames, bytes: s.bytes - mark.bytes };
      process.stdout.write(JSON.stringify(r) + '\n');
      void t.close().then(() => process.exit(0));
    }
  });
}

async function sender(port: number, receiverPort: number): Promise<void> {
  const t = await Transport.start({ nodeId: nodeId('tx'), listen: { host: '127.0.0.1', port }, secret: 'bench', logger: silentLogger });
  const rx = nodeId('rx');
  t.connect(rx, `127.0.0.1:${receiverPort}`);
  let sent = 0;
  let acked = 0;
  t.onMessage((_f, lane, payload) => {
    if (lane === Lane.control) acked = new DataView(payload.buffer, payload.byteOffset).getFloat64(0);
  });
  await new Promise<void>((resolve) => t.onPeerState((p, s) => { if (p === rx && s === 'up') resolve(); }));
  if (!senderDialsOnly) await new Promise((r) => setTimeout(r, 300)); // let rx's own stream come up
  if (latencyMode) return latency(t, rx);
  const payload = new Uint8Array(itemBytes).fill(7);
  let running = true;
  const pump = (): void => {
    if (!running) return;
    while (sent - acked < windowItems) {
      if (!t.send(rx, Lane.raft, payload)) break;
      sent++;
    }
    setImmediate(pump);
  };
  pump();
  await new Promise((r) => setTimeout(r, warmupMs));
  t.send(rx, Lane.control, new Uint8Array([1]));
  const start = { cpu: cpuUs(), at: Date.now(), acked, ...t.stats().get(rx)! };
  await new Promise((r) => setTimeout(r, seconds * 1000));
  t.send(rx, Lane.control, new Uint8Array([2]));
  const end = t.stats().get(rx)!;
  const r: Report = { role: 'sender', items: acked - start.acked, cpuUs: cpuUs() - start.cpu, wallMs: Date.now() - start.at, frames: end.framesSent - start.framesSent, bytes: end.bytesSent - start.bytesSent };
  process.stdout.write(JSON.stringify(r) + '\n');
  running = false;
  setTimeout(() => void t.close().then(() => process.exit(0)), 300);
}

/** Round trips of small items at a low rate: what one Raft append ack costs in wall time. */
async function latency(t: Transport, rx: ReturnType<typeof nodeId>): Promise<void> {
  const rtts: number[] = [];
  const sentAt = new Map<number, bigint>();
  t.onMessage((_f, lane, payload) => {
    if (lane !== Lane.delivery) return;
    const seq = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
    const at = sentAt.get(seq);
    if (at !== undefined) rtts.push(Number(process.hrtime.bigint() - at) / 1000);
    sentAt.delete(seq);
  });
  const total = Math.floor((seconds * 1000) / 2);
  for (let seq = 0; seq < total; seq++) {
    const p = new Uint8Array(64);
    new DataView(p.buffer).setUint32(0, seq);
    sentAt.set(seq, process.hrtime.bigint());
    t.send(rx, Lane.delivery, p);
    await new Promise((r) => setTimeout(r, 2));
  }
  await new Promise((r) => setTimeout(r, 300));
  t.send(rx, Lane.control, new Uint8Array([1]));
  t.send(rx, Lane.control, new Uint8Array([2]));
  const r: Report = { role: 'sender', items: rtts.length, cpuUs: 0, wallMs: 0, frames: 0, bytes: 0, rttUs: rtts };
  process.stdout.write(JSON.stringify(r) + '\n');
  setTimeout(() => void t.close().then(() => process.exit(0)), 300);
}

async function main(): Promise<void> {
  const role = args[0];
  if (role === 'receiver') return receiver(Number(args[1]), Number(args[2]));
  if (role === 'sender') return sender(Number(args[1]), Number(args[2]));
  const [rxPort, txPort] = [await freePort(), await freePort()];
  const self = new URL(import.meta.url).pathname;
  const extra = args.filter((a) => a.startsWith('--') || /^\d+$/.test(a));
  const run = (r: string, a: number, b: number): Promise<Report> => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', self, r, String(a), String(b), ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', () => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line === undefined) reject(new Error(`${r} printed no report`)); else resolve(JSON.parse(line) as Report);
    });
  });
  const [rx, tx] = await Promise.all([run('receiver', rxPort, txPort), run('sender', txPort, rxPort)]);
  if (tx.rttUs !== undefined) {
    const sorted = [...tx.rttUs].sort((a, b) => a - b);
    const pct = (q: number): string => (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! / 1000).toFixed(2);
    console.log(`transport round trip, 64-byte items every 2 ms, ${sorted.length} samples: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${pct(1)} ms`);
    return;
  }
  const rate = (rx.items / rx.wallMs) * 1000;
  console.log(`transport, 1 KiB items, window ${windowItems}, ${senderDialsOnly ? 'client->server (sender dials only)' : 'server->client (both dial)'}`);
  console.log(`  entries/s            ${Math.round(rate).toLocaleString('en-US')}`);
  console.log(`  MB/s                 ${((rx.bytes / rx.wallMs) / 1000).toFixed(1)}`);
  console.log(`  items per frame      ${(rx.items / Math.max(1, rx.frames)).toFixed(1)}`);
  console.log(`  CPU us/entry sender  ${(tx.cpuUs / Math.max(1, tx.items)).toFixed(2)}  (${((tx.cpuUs / 1000 / tx.wallMs) * 100).toFixed(0)}% of a core)`);
  console.log(`  CPU us/entry receiver ${(rx.cpuUs / Math.max(1, rx.items)).toFixed(2)}  (${((rx.cpuUs / 1000 / rx.wallMs) * 100).toFixed(0)}% of a core)`);
}

await main();
