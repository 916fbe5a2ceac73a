// Client TLS from the command line: `espresso server --tls-only --tls-cert --tls-key --tls-ca`
// serves amqps:// and no plain port, SIGHUP re-reads the certificate files for new connections,
// and settings that do not fit together stop the server before it starts, naming the flag.

import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
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

    const before = await presentedFingerprint(tlsPort!, ca);
    const renewed = pki.server('renewed');
    copyFileSync(renewed.cert, cert);
    copyFileSync(renewed.key, key);
    node.child.kill('SIGHUP');
    await eventually('the reload is logged', async () => node.output().includes('TLS certificate reloaded'), 10_000);
    expect(node.output()).toContain('CN=renewed');
    const afterHup = await presentedFingerprint(tlsPort!, ca);
    expect(afterHup).not.toBe(before);
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
