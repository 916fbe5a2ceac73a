// Mutual TLS on the cluster port: nodes with certificates from the cluster CA talk; a node whose
// certificate another CA signed is refused at the TLS layer. Certificates are made with openssl.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeId } from '../../src/lib/ids.js';
import { createLogger, silentLogger, type Logger } from '../../src/lib/log.js';
import { Lane, Transport, type TlsFiles } from '../../src/transport/index.js';

let dir = '';
const open: Transport[] = [];

function ca(name: string): void {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-days', '2', '-subj', `/CN=${name}`], { stdio: 'ignore' });
}

function cert(name: string, caName: string): TlsFiles {
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', `/CN=${name}`], { stdio: 'ignore' });
  execFileSync('openssl', ['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, `${caName}.crt`),
    '-CAkey', join(dir, `${caName}.key`), '-CAcreateserial', '-out', join(dir, `${name}.crt`), '-days', '2', '-extfile', ext], { stdio: 'ignore' });
  return { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`), caFile: join(dir, `${caName}.crt`) };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'espresso-tls-'));
  ca('cluster-ca');
  ca('other-ca');
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function node(id: string, tls: TlsFiles, logger: Logger = silentLogger): Promise<Transport> {
  const t = await Transport.start({
    nodeId: nodeId(id), listen: { host: '127.0.0.1', port: 0 }, secret: 'shared', tls, logger,
    limits: { reconnectDelayMsMin: 20, reconnectDelayMsMax: 200 },
  });
  open.push(t);
  return t;
}

async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const started = Date.now();
  while (!cond() && Date.now() - started < timeoutMs) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

describe('transport over mutual TLS', () => {
  it('carries items between nodes whose certificates the cluster CA signed', async () => {
    const a = await node('a', cert('a', 'cluster-ca'));
    const b = await node('b', cert('b', 'cluster-ca'));
    a.connect(nodeId('b'), `127.0.0.1:${b.port}`);
    expect(await until(() => b.isUp(nodeId('a')), 10_000)).toBe(true);
    const got: string[] = [];
    b.onMessage((_f, _l, p) => got.push(Buffer.from(p).toString()));
    a.send(nodeId('b'), Lane.forward, Buffer.from('over tls'));
    expect(await until(() => got.length === 1, 10_000)).toBe(true);
    expect(got).toEqual(['over tls']);
  });

  it('does not let in a node whose certificate another CA signed, even with the right secret', async () => {
    const a = await node('a2', cert('a2', 'cluster-ca'));
    const lines: string[] = [];
    const logger = createLogger({ sink: (l) => lines.push(l), clock: { nowMs: () => Date.now() }, level: 'debug', component: 't' });
    const stranger = await node('x', { ...cert('x', 'other-ca'), caFile: join(dir, 'cluster-ca.crt') }, logger);
    stranger.connect(nodeId('a2'), `127.0.0.1:${a.port}`);
    const failures = (): number => lines.filter((l) => l.includes('peer stream failed')).length;
    expect(await until(() => failures() >= 2, 10_000)).toBe(true); // it tried, failed, and redialed
    expect(a.isUp(nodeId('x'))).toBe(false);
    expect(stranger.isUp(nodeId('a2'))).toBe(false);
  });
});
