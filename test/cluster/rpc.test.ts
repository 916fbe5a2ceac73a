// ClusterRpc between real transports on 127.0.0.1: answers, remote errors with their codes,
// ordering of notifications, and calls failing fast when the peer is gone or silent.
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterRpc, decodeEnvelope, encodeEnvelope } from '../../src/cluster/rpc.js';
import { OperatingError, OperatingErrorCode } from '../../src/lib/errors.js';
import { nodeId } from '../../src/lib/ids.js';
import { silentLogger } from '../../src/lib/log.js';
import { Transport } from '../../src/transport/index.js';

const open: Transport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function transport(id: string): Promise<Transport> {
  const t = await Transport.start({
    nodeId: nodeId(id), listen: { host: '127.0.0.1', port: 0 }, secret: 'rpc-test', logger: silentLogger,
    limits: { reconnectDelayMsMin: 20, reconnectDelayMsMax: 200, connectTimeoutMs: 2_000 },
  });
  open.push(t);
  return t;
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!cond()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function pair(): Promise<{ a: ClusterRpc; b: ClusterRpc; ta: Transport; tb: Transport }> {
  const ta = await transport('a');
  const tb = await transport('b');
  ta.connect(nodeId('b'), `127.0.0.1:${tb.port}`);
  await until(() => ta.isUp(nodeId('b')) && tb.isUp(nodeId('a')), 'a and b connected');
  return { a: new ClusterRpc(ta, silentLogger), b: new ClusterRpc(tb, silentLogger), ta, tb };
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('cluster rpc', () => {
  it('answers calls both ways, sync and async handlers, many in flight', async () => {
    const { a, b } = await pair();
    b.handle('echo', (from, p) => text(`${from}:${str(p)}`));
    a.handle('later', async (_from, p) => {
      await new Promise((r) => setTimeout(r, 5));
      return text(str(p).toUpperCase());
    });
    const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => b.call(nodeId('a'), 'later', text(`x${i}`))));
    expect(answers.map(str)).toEqual(Array.from({ length: 500 }, (_, i) => `X${i}`));
    expect(str(await a.call(nodeId('b'), 'echo', text('hi')))).toBe('a:hi');
  });

  it('re-creates the remote OperatingError with its code and details; other throws become Io', async () => {
    const { a, b } = await pair();
    b.handle('lead', () => {
      throw new OperatingError(OperatingErrorCode.NotLeader, 'not the leader of group q1; try c', { group: 'q1', leader: 'c' });
    });
    b.handle('boom', async () => {
      throw new TypeError('bad thing');
    });
    const e = await a.call(nodeId('b'), 'lead', text('')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OperatingError);
    expect((e as OperatingError).code).toBe(OperatingErrorCode.NotLeader);
    expect((e as OperatingError).details).toEqual({ group: 'q1', leader: 'c' });
    const boom = await a.call(nodeId('b'), 'boom', text('')).catch((x: unknown) => x);
    expect((boom as OperatingError).code).toBe(OperatingErrorCode.Io);
    expect((boom as OperatingError).message).toBe('bad thing');
    const missing = await a.call(nodeId('b'), 'nope', text('')).catch((x: unknown) => x);
    expect((missing as OperatingError).message).toMatch(/no rpc method 'nope'/);
  });

  it('delivers notifications in send order', async () => {
    const { a, b } = await pair();
    const got: number[] = [];
    b.onNotify('n', (_from, p) => got.push(new DataView(p.buffer, p.byteOffset).getUint32(0)));
    for (let i = 0; i < 2_000; i++) {
      const p = new Uint8Array(4);
      new DataView(p.buffer).setUint32(0, i);
      expect(a.notify(nodeId('b'), 'n', p)).toBe(true);
    }
    await until(() => got.length === 2_000, 'all notifications');
    expect(got).toEqual(Array.from({ length: 2_000 }, (_, i) => i));
  });

  it('fails fast: Unreachable for an unknown peer or one that goes down, Timeout for silence', async () => {
    const { a, b, tb } = await pair();
    const e1 = await a.call(nodeId('zz'), 'x', text('')).catch((x: unknown) => x);
    expect((e1 as OperatingError).code).toBe(OperatingErrorCode.Unreachable);
    b.handle('never', () => new Promise<Uint8Array>(() => undefined));
    const slow = await a.call(nodeId('b'), 'never', text(''), 100).catch((x: unknown) => x);
    expect((slow as OperatingError).code).toBe(OperatingErrorCode.Timeout);
    const waiting = a.call(nodeId('b'), 'never', text(''), 30_000).catch((x: unknown) => x);
    await tb.close();
    expect(((await waiting) as OperatingError).code).toBe(OperatingErrorCode.Unreachable);
  });

  it('round-trips the envelope and refuses an unknown kind', () => {
    const e = { kind: 2 as const, id: 2 ** 40, method: 'm', payload: text('p'), errorCode: 'E_TIMEOUT', errorMessage: 'slow', errorDetails: '{"a":1}' };
    const back = decodeEnvelope(encodeEnvelope(e));
    expect({ ...back, payload: str(back.payload) }).toEqual({ ...e, payload: 'p' });
    expect(() => decodeEnvelope(new Uint8Array([8, 9]))).toThrow(/unknown kind 9/);
  });
});
