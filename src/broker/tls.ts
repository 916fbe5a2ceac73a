// AMQP over TLS (amqps): the listener's settings (TLS 1.2 at least, forward-secret AEAD ciphers
// only, optional client-certificate verification), the PEM files read at start and again on a
// reload (new connections get the new certificate, open ones keep theirs), and the user a verified
// client certificate names for SASL EXTERNAL (its subject CN, as rabbitmq_auth_mechanism_ssl with
// ssl_cert_login_from = common_name).

import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { SecureContextOptions, TLSSocket, TlsOptions } from 'node:tls';

/**
 * How client certificates are treated (RabbitMQ's ssl_options.verify and fail_if_no_peer_cert):
 * none: not asked for; peer: asked for, and one that does not verify against the CA is refused,
 * but a client without one may log in with a password; require: a verified certificate is needed.
 */
export type TlsVerify = 'none' | 'peer' | 'require';
export const tlsVerifyModes: readonly TlsVerify[] = ['none', 'peer', 'require'];

export interface TlsSettings {
  /** PEM certificate (chain) of the node; '' = no TLS listener. */
  tlsCert: string;
  /** PEM private key of that certificate. */
  tlsKey: string;
  /** PEM CA bundle client certificates are verified against ('' = the system's, only with verify none). */
  tlsCa: string;
  tlsVerify: string;
}

/** RabbitMQ's default AMQPS port, used when a certificate is given without --tls-port. */
export const defaultTlsPort = 5671;

/**
 * TLS 1.3 suites, then TLS 1.2 with ECDHE key exchange and AEAD ciphers: no CBC, no RSA key
 * exchange, no SHA-1 MACs (Mozilla's "intermediate" profile). TLS 1.0/1.1 are refused by minVersion.
 */
export const tlsCiphers = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** What is wrong with the TLS settings, in words naming the flag to fix; null when they are usable. */
export function tlsSettingsProblem(s: TlsSettings & { tlsOnly: boolean }): string | null {
  if (!tlsVerifyModes.includes(s.tlsVerify as TlsVerify)) {
    return `--tls-verify must be one of ${tlsVerifyModes.join(', ')}; got '${s.tlsVerify}'`;
  }
  if (s.tlsCert === '') {
    if (s.tlsKey !== '' || s.tlsCa !== '') return 'TLS for clients needs --tls-cert with --tls-key and --tls-ca';
    if (s.tlsOnly) return '--tls-only needs a certificate: give --tls-cert and --tls-key';
    if (s.tlsVerify !== 'none') return `--tls-verify ${s.tlsVerify} needs --tls-cert, --tls-key and --tls-ca`;
    return null;
  }
  if (s.tlsKey === '') return '--tls-cert needs its private key: give --tls-key';
  if (s.tlsVerify !== 'none' && s.tlsCa === '') return `--tls-verify ${s.tlsVerify} needs --tls-ca, the CA that signs client certificates`;
  return null;
}

/** The PEM files read now; an unreadable or invalid one throws an Error naming the file. */
export function readTlsFiles(s: TlsSettings): SecureContextOptions {
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`cannot read the TLS ${what} '${path}' (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
  };
  const cert = read('certificate', s.tlsCert);
  const key = read('key', s.tlsKey);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new Error(`the TLS certificate '${s.tlsCert}' is not a PEM certificate (${(e as Error).message})`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new Error(`the TLS key '${s.tlsKey}' is not a PEM private key (${(e as Error).message})`);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new Error(`the TLS key '${s.tlsKey}' is not the private key of the certificate '${s.tlsCert}'`);
  }
  return {
    cert, key, ...(s.tlsCa !== '' ? { ca: read('CA', s.tlsCa) } : {}),
    minVersion: 'TLSv1.2', ciphers: tlsCiphers, honorCipherOrder: true,
  };
}

/** Options of the TLS server: the files' context plus client-certificate verification. */
export function tlsServerOptions(s: TlsSettings, handshakeTimeoutMs: number): TlsOptions {
  const verify = s.tlsVerify as TlsVerify;
  return {
    ...readTlsFiles(s),
    requestCert: verify !== 'none',
    // 'require': Node fails the handshake without a verified certificate. 'peer' must let a
    // client without one through, so a presented one that does not verify is refused by
    // refusedPeer once the handshake is done.
    rejectUnauthorized: verify === 'require',
    handshakeTimeout: handshakeTimeoutMs,
  };
}

/** Subject, fingerprint and expiry of the certificate file's first certificate, for log lines. */
export function describeCertificate(pem: Buffer | string): { subject: string; fingerprint256: string; validTo: string } {
  const c = new X509Certificate(pem);
  return { subject: c.subject.replaceAll('\n', ', '), fingerprint256: c.fingerprint256, validTo: c.validTo };
}

/**
 * Why a TLS client is refused after its handshake, or null: in 'peer' mode a certificate that was
 * presented but does not verify against the CA.
 */
export function refusedPeer(socket: TLSSocket, verify: string): string | null {
  if (verify !== 'peer' || socket.authorized) return null;
  const presented = Object.keys(socket.getPeerCertificate()).length > 0;
  return presented ? `client certificate refused: ${String(socket.authorizationError)}` : null;
}

/**
 * The user a client certificate names for SASL EXTERNAL: the CN of a certificate that verified
 * against the CA; undefined without one (EXTERNAL is then not offered).
 */
export function verifiedPeerUser(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  const cn = cert.subject?.CN;
  if (typeof cn === 'string' && cn !== '') return cn;
  // A subject with several CNs comes as an array: RabbitMQ takes the first.
  return Array.isArray(cn) && typeof cn[0] === 'string' && cn[0] !== '' ? cn[0] : undefined;
}
