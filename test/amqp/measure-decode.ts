// Measures the codec's cost per 1 KiB message: decoding basic.publish + header + body from 64 KiB
// socket-sized chunks, and encoding basic.deliver + header + body. Run: npx tsx test/amqp/measure-decode.ts

import { performance } from 'node:perf_hooks';
import {
  decodeContentHeader, decodeMethod, encodeBasicProperties, encodeContentFrames, FrameDecoder, isProtocolError, toFieldTable,
  type Frame,
} from '../../src/amqp/index.js';

const messages = 200_000;
const body = Buffer.alloc(1024, 0x61);
const raw = encodeBasicProperties({ contentType: 'application/octet-stream', deliveryMode: 2, headers: toFieldTable({ 'x-trace': 'abc', n: 1 }) });
const publish = { name: 'basic.publish', ticket: 0, exchange: '', routingKey: 'bench-queue', mandatory: false, immediate: false } as const;
const one = Buffer.concat(encodeContentFrames(1, publish, raw, body, 131072));
const stream = Buffer.concat(Array.from({ length: 1000 }, () => one));
const chunkBytes = 65536;

function decodeRound(): number {
  const d = new FrameDecoder(131072);
  const out: Frame[] = [];
  let decoded = 0;
  for (let at = 0; at < stream.length; at += chunkBytes) {
    out.length = 0;
    const err = d.push(stream.subarray(at, at + chunkBytes), out);
    if (err !== null) throw new Error(err.replyText);
    for (const f of out) {
      if (f.type === 1) { const m = decodeMethod(f.payload); if (isProtocolError(m)) throw new Error(m.replyText); decoded++; }
      else if (f.type === 2) { const h = decodeContentHeader(f.payload); if (isProtocolError(h)) throw new Error(h.replyText); }
    }
  }
  return decoded;
}

function measure(label: string, rounds: number, fn: () => number): void {
  fn();
  const t0 = performance.now();
  let n = 0;
  for (let i = 0; i < rounds; i++) n += fn();
  const ns = ((performance.now() - t0) * 1e6) / n;
  console.log(`${label}: ${ns.toFixed(0)} ns/message (${(1e9 / ns / 1000).toFixed(0)}k msg/s on one core), ${n} messages`);
}

measure('decode 1 KiB basic.publish + header + body', messages / 1000, decodeRound);
const deliver = { name: 'basic.deliver', consumerTag: 'amq.ctag-abc', deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'bench-queue' } as const;
measure('encode 1 KiB basic.deliver + header + body', 1, () => {
  for (let i = 1; i <= messages; i++) encodeContentFrames(1, { ...deliver, deliveryTag: i }, raw, body, 131072);
  return messages;
});
