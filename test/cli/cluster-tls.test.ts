// Mutual TLS on the cluster port from the command line: two nodes whose certificates one CA signed
// form a cluster, ctl with a certificate reads its status, and ctl without TLS cannot reach it.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts, killAll, runCtl, startNode } from './cluster-nodes.js';

const dir = mkdtempSync(join(tmpdir(), 'espresso-cluster-tls-'));
afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A certificate for `name` signed by the test CA, usable as client and server on 127.0.0.1. */
function certFlags(name: string): string[] {
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl(['req', ...ec, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', `/CN=${name}`]);
  openssl(['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'),
    '-CAcreateserial', '-out', join(dir, `${name}.crt`), '-days', '2', '-extfile', ext]);
  return ['--cluster-tls-cert', join(dir, `${name}.crt`), '--cluster-tls-key', join(dir, `${name}.key`), '--cluster-tls-ca', join(dir, 'ca.crt')];
}

describe('a cluster over mutual TLS', () => {
  it('forms with certificates from one CA; ctl needs a certificate too', async () => {
    openssl(['req', '-x509', ...ec, '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', '2', '-subj', '/CN=espresso-test-ca']);
    const ports = await freePorts(4);
    const seeds = `n1@127.0.0.1:${ports[2]!},n2@127.0.0.1:${ports[3]!}`;
    const nodes = ['n1', 'n2'].map((name, i) => startNode({
      name, amqpPort: ports[i]!, clusterPort: ports[2 + i]!, dataDir: join(dir, name), secret: 's', seeds, extraArgs: certFlags(name),
    }));
    await Promise.all(nodes.map((n) => n.ready));
    const ctlTls = certFlags('ctl');
    const status = await runCtl(['--cluster-address', `127.0.0.1:${ports[3]!}`, '--cluster-secret', 's', ...ctlTls, '--json', 'cluster-status']);
    expect(status.code).toBe(0);
    const s = JSON.parse(status.stdout) as { voters: string[]; nodes: Array<{ id: string; status: string }> };
    expect(s.voters).toEqual(['n1', 'n2']);
    const plain = await runCtl(['--cluster-address', `127.0.0.1:${ports[3]!}`, '--cluster-secret', 's', '--timeout', '2000', 'cluster-status']);
    expect(plain.code).toBe(69);
  }, 60_000);
});
