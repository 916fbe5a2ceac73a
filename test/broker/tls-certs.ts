// Certificates for the client TLS tests, made by Debian's openssl in a temp directory (installed
// with apt-get when missing; when that is impossible, the reason, so the test says it): a CA, the
// node's certificate for 127.0.0.1, client certificates whose CN names a user, and a second CA
// nobody trusts with a client certificate of its own.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** null once openssl runs (installing Debian's package if needed), else why it cannot. */
export function ensureOpenssl(): string | null {
  if (hasOpenssl()) return null;
  if (process.getuid?.() !== 0) return 'openssl is not installed and installing it needs root (apt-get install openssl)';
  if (!existsSync('/usr/bin/apt-get')) return 'openssl is not installed and there is no apt-get on this machine';
  const apt = (args: string[]): void => {
    execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...args], { stdio: 'ignore', timeout: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  };
  try {
    apt(['install', '-y', '--no-install-recommends', 'openssl']);
  } catch {
    try {
      apt(['update']);
      apt(['install', '-y', '--no-install-recommends', 'openssl']);
    } catch (e) {
      return `apt-get install openssl failed: ${String(e).slice(0, 300)}`;
    }
  }
  return hasOpenssl() ? null : 'openssl was installed but does not run';
}

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: string;
  /** The CA no node trusts. */
  otherCa: string;
  /** Certificate of the node for 127.0.0.1 / localhost, signed by `ca`. */
  server(name?: string): CertFiles;
  /** Client certificate with CN=cn, signed by `ca` (or by `otherCa` when untrusted). */
  client(cn: string, untrusted?: boolean): CertFiles;
  read(path: string): Buffer;
}

const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'espresso-tls-'));
  const caPair = (name: string): void => openssl(['req', '-x509', ...ec, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-days', '2', '-subj', `/CN=${name}`]);
  caPair('test-ca');
  caPair('other-ca');
  let serial = 0;
  const issue = (name: string, cn: string, ca: string, ext: string): CertFiles => {
    serial++;
    const base = join(dir, `${name}-${serial}`);
    writeFileSync(`${base}.ext`, ext);
    openssl(['req', ...ec, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${cn}`]);
    openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', join(dir, `${ca}.crt`), '-CAkey', join(dir, `${ca}.key`),
      '-set_serial', String(1000 + serial), '-out', `${base}.crt`, '-days', '2', '-extfile', `${base}.ext`]);
    return { cert: `${base}.crt`, key: `${base}.key` };
  };
  return {
    dir,
    ca: join(dir, 'test-ca.crt'),
    otherCa: join(dir, 'other-ca.crt'),
    server: (name = 'espresso-node') => issue(name, name, 'test-ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'),
    client: (cn, untrusted = false) => issue(`client-${cn}`, cn, untrusted ? 'other-ca' : 'test-ca', 'extendedKeyUsage=clientAuth\n'),
    read: (path) => readFileSync(path),
  };
}

/** The fingerprint of the certificate a node presents to a new TLS connection on port. */
export function presentedFingerprint(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.once('error', reject);
  });
}
