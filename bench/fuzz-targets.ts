// What the fuzzer (bench/fuzz.ts) feeds and what the corpus replay test (test/fuzz/corpus.test.ts)
// replays: the input-facing decoders of the AMQP codec and the login. A target returns normally
// for any input (malformed input is a ProtocolError value or null); a throw is a crash, a bug.

import { checkPassword, parseAmqPlain, parsePlain } from '../src/broker/auth.js';
import {
  CommandAssembler, decodeContentHeader, decodeFieldTable, decodeMethod, encodeBasicProperties, encodeContentFrames, encodeFieldTable,
  encodeMethodFrame, FrameDecoder, FrameType, isProtocolError, parseProtocolHeader, protocolHeader, toFieldTable,
  type AmqpMethod, type Frame,
} from '../src/amqp/index.js';

export interface FuzzTarget {
  readonly name: string;
  /** Runs one input; throws only on a bug. */
  run(input: Buffer): void;
  /** Valid inputs the search starts from. */
  seeds(): Buffer[];
}

const frameMaxBytes = 131072;
const messageMaxBytes = 16 * 1024 * 1024;

/** Every frame of `bytes` through the decoder (in two chunks, split where the input says), each decoded as its type says. */
function decodeFrames(bytes: Buffer, frameMax: number): Frame[] {
  const decoder = new FrameDecoder(frameMax);
  const frames: Frame[] = [];
  const split = bytes.length === 0 ? 0 : bytes[0]! % (bytes.length + 1);
  if (decoder.push(bytes.subarray(0, split), frames) === null) decoder.push(bytes.subarray(split), frames);
  const assembler = new CommandAssembler(messageMaxBytes);
  for (const f of frames) {
    if (f.type === FrameType.method) decodeMethod(f.payload);
    else if (f.type === FrameType.header) decodeContentHeader(f.payload);
    if (isProtocolError(assembler.push(f))) break;
  }
  return frames;
}

const sampleTable = toFieldTable({
  'x-max-length': 10, 'x-match': 'any', nested: { a: true, list: [1, 'two', 3] }, big: 2 ** 40, neg: -5,
});

const sampleMethods: AmqpMethod[] = [
  { name: 'connection.start-ok', clientProperties: sampleTable, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US' },
  { name: 'connection.tune-ok', channelMax: 2047, frameMax: 131072, heartbeat: 60 },
  { name: 'connection.open', virtualHost: '/', capabilities: '', insist: false },
  { name: 'channel.open', outOfBand: '' },
  { name: 'queue.declare', ticket: 0, queue: 'q', passive: false, durable: true, exclusive: false, autoDelete: false, nowait: false, arguments: sampleTable },
  { name: 'exchange.bind', ticket: 0, destination: 'd', source: 's', routingKey: 'k.#', nowait: false, arguments: {} },
  { name: 'basic.publish', ticket: 0, exchange: 'amq.topic', routingKey: 'a.b', mandatory: true, immediate: false },
  { name: 'basic.consume', ticket: 0, queue: 'q', consumerTag: '', noLocal: false, noAck: false, exclusive: false, nowait: false, arguments: sampleTable },
  { name: 'basic.ack', deliveryTag: 7, multiple: true },
];

function methodFrames(): Buffer[] {
  return sampleMethods.map((m, i) => encodeMethodFrame(i === 0 ? 0 : 1, m));
}

function publishFrames(): Buffer {
  const properties = encodeBasicProperties({ headers: sampleTable, deliveryMode: 2, contentType: 'text/plain', expiration: '1000' });
  return Buffer.concat(encodeContentFrames(1, sampleMethods[6]!, properties, Buffer.from('hello world'), frameMaxBytes));
}

export const fuzzTargets: readonly FuzzTarget[] = [
  {
    name: 'frames',
    run: (input) => void decodeFrames(input, frameMaxBytes),
    seeds: () => [...methodFrames(), publishFrames(), Buffer.concat(methodFrames())],
  },
  {
    name: 'methods',
    run: (input) => void decodeMethod(input),
    // A method frame's payload: what follows the 7-byte frame header, before the end octet.
    seeds: () => methodFrames().map((f) => f.subarray(7, f.length - 1)),
  },
  {
    name: 'field-table',
    run: (input) => {
      const table = decodeFieldTable(input);
      // What decodes must encode again (a relayed table is re-encoded).
      if (!isProtocolError(table)) encodeFieldTable(table);
    },
    seeds: () => [encodeFieldTable(sampleTable), encodeFieldTable({})],
  },
  {
    name: 'handshake',
    run: (input) => {
      const header = parseProtocolHeader(input.subarray(0, 8));
      if (header.kind !== 'accept') return;
      // Before tune-ok the frame limit is 8192; a start-ok's SASL response is parsed as the login does.
      for (const f of decodeFrames(input.subarray(8), 8192)) {
        if (f.type !== FrameType.method) continue;
        const m = decodeMethod(f.payload);
        if (isProtocolError(m) || m.name !== 'connection.start-ok') continue;
        const creds = m.mechanism === 'PLAIN' ? parsePlain(m.response) : parseAmqPlain(m.response);
        if (creds !== null) checkPassword(creds.pass, 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
      }
    },
    seeds: () => [Buffer.concat([protocolHeader, ...methodFrames().slice(0, 3)])],
  },
];
