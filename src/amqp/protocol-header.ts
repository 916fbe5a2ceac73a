// The 8-byte protocol header a client sends first: accept AMQP 0-9-1 (and 0-9), otherwise say what
// to answer before closing. espresso speaks only 0-9-1, so every refusal answers with its header.

export const protocolHeader: Buffer = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);
export const protocolHeaderBytes = 8;

export type ProtocolHeaderResult =
  /** Fewer than 8 bytes so far, all consistent with an AMQP header: wait for more. */
  | { readonly kind: 'incomplete' }
  /** Go on with connection.start; `version` tells connection.start which minor version to announce. */
  | { readonly kind: 'accept'; readonly version: '0-9-1' | '0-9' }
  /** Write `reply`, then close the socket; `reason` is for the log. */
  | { readonly kind: 'refuse'; readonly reply: Buffer; readonly reason: string };

const amqp = [0x41, 0x4d, 0x51, 0x50];

function describe(bytes: Buffer): string {
  const head = bytes.subarray(0, protocolHeaderBytes);
  if (head[0] === 0x16 && head[1] === 0x03) return 'TLS handshake on a plain AMQP port';
  if (/^(GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH) /.test(head.toString('latin1'))) return 'HTTP request on the AMQP port';
  const shown = [...head].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`));
  return `not an AMQP protocol header: "${shown.join('')}"`;
}

/**
 * Looks at the first bytes a client sent. RabbitMQ answers unknown non-AMQP input with an AMQP 1.0
 * header because it also speaks 1.0; espresso answers with 0-9-1, the only version it offers.
 */
export function parseProtocolHeader(bytes: Buffer): ProtocolHeaderResult {
  const n = Math.min(bytes.length, amqp.length);
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== amqp[i]) return { kind: 'refuse', reply: protocolHeader, reason: describe(bytes) };
  }
  if (bytes.length < protocolHeaderBytes) return { kind: 'incomplete' };
  const [a, b, c, d] = [bytes[4]!, bytes[5]!, bytes[6]!, bytes[7]!];
  if (a === 0 && b === 0 && c === 9 && d === 1) return { kind: 'accept', version: '0-9-1' };
  if (a === 1 && b === 1 && c === 0 && d === 9) return { kind: 'accept', version: '0-9' };
  return { kind: 'refuse', reply: protocolHeader, reason: `unsupported AMQP version ${a}-${b}-${c}-${d}; this server speaks 0-9-1` };
}
