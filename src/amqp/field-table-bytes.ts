// Field tables to and from standalone bytes (a table with its 32-bit size), for callers outside a frame:
// AMQPLAIN responses (the table body without the size), stored arguments, tests.

import { readFieldTable, writeFieldTable, type FieldTable } from './field-table.js';
import { frameError, type ProtocolError } from './reply-codes.js';
import { DecodeError, Reader, Writer } from './wire.js';

/** Decodes a whole buffer as one table (size prefix included); trailing bytes are an error. */
export function decodeFieldTable(bytes: Buffer): FieldTable | ProtocolError {
  const r = new Reader(bytes, 0, bytes.length);
  try {
    const t = readFieldTable(r);
    if (r.pos !== r.end) return frameError(`field table followed by ${r.end - r.pos} stray bytes`);
    return t;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return frameError(`cannot decode field table: ${e.message}`);
  }
}

const scratch = new Writer(1024);

/** A table with its 32-bit size prefix. */
export function encodeFieldTable(table: FieldTable): Buffer {
  scratch.reset();
  writeFieldTable(scratch, table);
  return scratch.take();
}
