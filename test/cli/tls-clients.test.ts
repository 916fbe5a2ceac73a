// Client TLS from the command line: `espresso server --tls-only --tls-cert --tls-key --tls-ca`
// serves amqps:// and no plain port, and HTTPS on the HTTP port with the same certificate; SIGHUP re-reads the certificate files for new connections,
// and settings that do not fit together stop the server before it starts, naming the flag.

import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureOpenssl, makePki, presentedFingerprint } from '../broker/tls-certs.js';
import { eventually, freePorts, killAll, runCtl, startNode } from './cluster-nodes.js';

const missing = ensureOpenssl();
if (missing !== null) console.warn(`client TLS process tests skipped: ${missing}`);
const dir = mkdtempSync(join(tmpdir(), 'espresso-tls-clients-'));
afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** The status of an HTTPS GET, or the TLS error's message. */
function httpsStatus(port: number, ca: Buffer, path: string, maxVersion?: 'TLSv1.1'): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpsGet({ host: '127.0.0.1', port, path, ca, ...(maxVersion !== undefined ? { maxVersion, minVersion: 'TLSv1' } : {}) }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (e) => resolve(e.message));
  });
}

/** Whether a plain HTTP request to the port gets an HTTP answer. */
function plainHttpAnswer(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/metrics', timeout: 3000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

function refusesTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe.skipIf(missing !== null)('espresso server with client TLS', () => {
  it('serves amqps only with --tls-only and hands new connections a renewed certificate on SIGHUP', async () => {
    const pki = makePki();
    const first = pki.server();
    const cert = join(pki.dir, 'node.crt');
    const key = join(pki.dir, 'node.key');
    copyFileSync(first.cert, cert);
    copyFileSync(first.key, key);
    const [amqpPort, tlsPort, clusterPort] = await freePorts(3);
    const node = startNode({
      name: 'n1', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(dir, 'n1'), secret: 's',
      extraArgs: ['--tls-port', String(tlsPort), '--tls-cert', cert, '--tls-key', key, '--tls-ca', pki.ca, '--tls-verify', 'peer', '--tls-only'],
    });
    await node.ready;
    expect(node.output()).toMatch(/"tlsPort":\d+/);
    const ca = pki.read(pki.ca);
    const conn = await amqp.connect(`amqps://guest:guest@127.0.0.1:${tlsPort!}`, { ca: [ca] });
    const ch = await conn.createChannel();
    await ch.assertQueue('tls-q', { durable: true });
    expect(await refusesTcp(amqpPort!)).toBe(true);

    // The HTTP port serves HTTPS with the same certificate, TLS 1.2 at least; plain HTTP gets no answer.
    const httpPort = node.httpPort();
    expect(await httpsStatus(httpPort, ca, '/metrics')).toBe(200);
    expect(await httpsStatus(httpPort, ca, '/metrics', 'TLSv1.1')).toMatch(/version|protocol|alert/i);
    expect(await plainHttpAnswer(httpPort)).toBe(false);
    const before = await presentedFingerprint(tlsPort!, ca);
    expect(await presentedFingerprint(httpPort, ca)).toBe(before);
    const renewed = pki.server('renewed');
    copyFileSync(renewed.cert, cert);
    copyFileSync(renewed.key, key);
    node.child.kill('SIGHUP');
    await eventually('the reload is logged', async () => node.output().includes('TLS certificate reloaded'), 10_000);
    expect(node.output()).toContain('CN=renewed');
    const afterHup = await presentedFingerprint(tlsPort!, ca);
    expect(afterHup).not.toBe(before);
    expect(await presentedFingerprint(httpPort, ca)).toBe(afterHup);
    // The connection opened before the reload carries on.
    expect((await ch.checkQueue('tls-q')).queue).toBe('tls-q');

    // `ctl reload-tls` does the same without the rest of the configuration, and is audited.
    const third = pki.server('third');
    copyFileSync(third.cert, cert);
    copyFileSync(third.key, key);
    const ctl = await runCtl(['--cluster-address', `127.0.0.1:${clusterPort!}`, '--cluster-secret', 's', 'reload-tls']);
    expect(ctl).toMatchObject({ code: 0, stdout: expect.stringMatching(/^ok: new connections get CN=third \(sha256 [0-9A-F:]+\), valid to /) as unknown });
    const afterCtl = await presentedFingerprint(tlsPort!, ca);
    expect(afterCtl).not.toBe(afterHup);
    expect(await presentedFingerprint(httpPort, ca)).toBe(afterCtl);
    copyFileSync(pki.ca, key); // not a key: refused, the certificate in use stays
    const bad = await runCtl(['--cluster-address', `127.0.0.1:${clusterPort!}`, '--cluster-secret', 's', 'reload-tls']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/is not a PEM private key.*the certificate in use stays/);
    expect(await presentedFingerprint(tlsPort!, ca)).toBe(afterCtl);
    expect(node.output()).toMatch(/"event":"audit".*"action":"reload-tls".*"outcome":"ok"/);
    await conn.close();
  }, 60_000);

  it('stops before starting when the TLS settings do not fit together, naming the flag', async () => {
    const [amqpPort, clusterPort] = await freePorts(2);
    const cases: Array<[string[], RegExp]> = [
      [['--tls-only'], /--tls-only needs a certificate/],
      [['--tls-cert', '/nonexistent/node.crt', '--tls-key', '/nonexistent/node.key'], /cannot read the TLS certificate '\/nonexistent\/node.crt'/],
      [['--tls-verify', 'maybe'], /--tls-verify must be one of none, peer, require/],
    ];
    for (const [extraArgs, message] of cases) {
      const node = startNode({ name: 'bad', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(dir, 'bad'), secret: 's', extraArgs });
      const code = await node.exited;
      expect(code === 64 || code === 66).toBe(true);
      expect(node.output()).toMatch(message);
    }
  }, 60_000);
});
