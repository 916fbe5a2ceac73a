// Two and three transports on 127.0.0.1 in one process: delivery, batching, authentication,
// bounded queues and reconnecting after a peer restarts.
import { afterEach, describe, expect, it } from 'vitest';
import { nodeId, type NodeId } from '../../src/lib/ids.js';
import { createLogger, type Logger } from '../../src/lib/log.js';
import { Lane, Transport, type TransportLimits } from '../../src/transport/index.js';

const open: Transport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ sink: (l) => lines.push(l), clock: { nowMs: () => Date.now() }, level: 'info', component: 'test' });
  return { logger, lines };
}

async function node(id: string, secret = 's3cret', port = 0, limits: Partial<TransportLimits> = {}): Promise<{ t: Transport; lines: string[] }> {
  const { logger, lines } = capture();
  const t = await Transport.start({
    nodeId: nodeId(id), listen: { host: '127.0.0.1', port }, secret, logger,
    limits: { reconnectDelayMsMin: 20, reconnectDelayMsMax: 200, connectTimeoutMs: 2_000, ...limits },
  });
  open.push(t);
  return { t, lines };
}

/** Resolves when `cond` holds; checked on every event of `t` and on a bounded poll. */
function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = (): void => {
      if (cond()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(check, 10);
    };
    check();
  });
}

function peerUp(t: Transport, peer: NodeId): Promise<void> {
  return until(() => t.isUp(peer), `${t.nodeId} sees ${peer} up`);
}

describe('transport', () => {
  it('delivers every item in order on each lane, many items per frame', async () => {
    const a = await node('a');
    const b = await node('b');
    a.t.connect(nodeId('b'), `127.0.0.1:${b.t.port}`);
    b.t.connect(nodeId('a'), `127.0.0.1:${a.t.port}`);
    await peerUp(a.t, nodeId('b'));
    await peerUp(b.t, nodeId('a'));
    // Both dialed: each side ends up with the stream it dialed and the one the other dialed.
    await until(() => a.t.stats().get(nodeId('b'))!.streamsOpened === 2 && b.t.stats().get(nodeId('a'))!.streamsOpened === 2, 'two streams');
    const got: Array<[string, number, number]> = [];
    b.t.onMessage((from, lane, payload) => got.push([from, lane, new DataView(payload.buffer, payload.byteOffset).getUint32(0)]));
    const n = 5_000;
    for (let i = 0; i < n; i++) {
      const p = new Uint8Array(1024);
      new DataView(p.buffer).setUint32(0, i);
      expect(a.t.send(nodeId('b'), i % 2 === 0 ? Lane.raft : Lane.delivery, p)).toBe(true);
    }
    await until(() => got.length === n, 'all items');
    expect(got.filter((g) => g[1] === Lane.raft).map((g) => g[2])).toEqual([...Array(n / 2).keys()].map((i) => i * 2));
    expect(got.every((g) => g[0] === 'a')).toBe(true);
    const stats = a.t.stats().get(nodeId('b'))!;
    expect(stats.itemsSent).toBe(n);
    expect(stats.framesSent).toBeLessThan(n / 100);
    expect(b.t.stats().get(nodeId('a'))!.itemsReceived).toBe(n);
    expect(stats.streamsOpened).toBe(2); // no stream was lost and redialed under load
  });

  it('carries both directions when only one side dialed', async () => {
    const a = await node('a');
    const b = await node('b');
    a.t.connect(nodeId('b'), `127.0.0.1:${b.t.port}`);
    await peerUp(b.t, nodeId('a'));
    const atA: string[] = [];
    a.t.onMessage((_f, _l, p) => atA.push(Buffer.from(p).toString()));
    expect(b.t.send(nodeId('a'), Lane.gossip, Buffer.from('hello from b'))).toBe(true);
    await until(() => atA.length === 1, 'reply');
    expect(atA).toEqual(['hello from b']);
  });

  it('refuses a node with the wrong cluster secret, and both sides log why', async () => {
    const a = await node('a', 'right');
    const c = await node('c', 'wrong');
    const states: string[] = [];
    a.t.onPeerState((p, s) => states.push(`${p}:${s}`));
    c.t.connect(nodeId('a'), `127.0.0.1:${a.t.port}`);
    a.t.connect(nodeId('c'), `127.0.0.1:${c.t.port}`);
    await until(() => a.lines.some((l) => l.includes('wrong cluster secret')) &&
      c.lines.some((l) => l.includes('wrong cluster secret')), 'refusal logged on both sides');
    expect(a.t.isUp(nodeId('c'))).toBe(false);
    expect(c.t.isUp(nodeId('a'))).toBe(false);
    expect(states).toEqual([]);
    expect(c.t.send(nodeId('a'), Lane.raft, new Uint8Array(1))).toBe(false);
    const refusal = JSON.parse(a.lines.find((l) => l.includes('refused cluster peer'))!) as Record<string, unknown>;
    expect(refusal['peer']).toBe('c');
    expect(a.lines.join('')).not.toContain('wrong"'); // the secret itself never appears in a log line
  });

  it('tells a holder of the secret its node id without logging anything, and refuses a wrong secret', async () => {
    const a = await node('a', 'right');
    const asker = await node('ctl-1', 'right');
    const before = a.lines.length;
    expect(await asker.t.identify(`127.0.0.1:${a.t.port}`, 5_000)).toBe('a');
    expect(a.lines.slice(before)).toEqual([]);
    const stranger = await node('ctl-2', 'wrong');
    await expect(stranger.t.identify(`127.0.0.1:${a.t.port}`, 5_000)).rejects.toThrow(/refused our cluster secret/);
    expect(a.lines.slice(before).join('')).toContain('refused an identify call: wrong cluster secret');
    const nobody = await node('ctl-3', 'right');
    const port = stranger.t.port;
    await stranger.t.close();
    await expect(nobody.t.identify(`127.0.0.1:${port}`, 2_000)).rejects.toThrow(/nothing answers at/);
  });

  it('reconnects by itself after the peer restarts on the same port', async () => {
    const a = await node('a');
    let b = await node('b');
    const port = b.t.port;
    const states: string[] = [];
    a.t.onPeerState((p, s) => states.push(`${p}:${s}`));
    a.t.connect(nodeId('b'), `127.0.0.1:${port}`);
    await peerUp(a.t, nodeId('b'));
    await b.t.close();
    await until(() => !a.t.isUp(nodeId('b')), 'b down at a');
    expect(a.t.send(nodeId('b'), Lane.raft, new Uint8Array(8))).toBe(false);
    b = await node('b', 's3cret', port);
    await peerUp(a.t, nodeId('b'));
    const got: number[] = [];
    b.t.onMessage((_f, _l, p) => got.push(p.length));
    a.t.send(nodeId('b'), Lane.control, new Uint8Array(3));
    await until(() => got.length === 1, 'item after reconnect');
    expect(states).toEqual(['b:up', 'b:down', 'b:up']);
  });

  it('refuses sends beyond the per-peer queue bound within one turn and counts them', async () => {
    const a = await node('a', 's3cret', 0, { peerQueueItemsMax: 10 });
    const b = await node('b');
    a.t.connect(nodeId('b'), `127.0.0.1:${b.t.port}`);
    await peerUp(a.t, nodeId('b'));
    const results = Array.from({ length: 15 }, () => a.t.send(nodeId('b'), Lane.forward, new Uint8Array(4)));
    expect(results.filter((r) => r)).toHaveLength(10);
    expect(a.t.stats().get(nodeId('b'))!.itemsDropped).toBe(5);
    let got = 0;
    b.t.onMessage(() => got++);
    await until(() => got === 10, 'the ten accepted items');
  });
});
