// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven slice-by-8, as used by
// every WAL record. Written here rather than taken as a dependency: it is small and hot.

const poly = 0x82f63b78;

function makeTables(): Uint32Array[] {
  const tables: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t0[n] = c >>> 0;
  }
  tables.push(t0);
  for (let t = 1; t < 8; t++) {
    const prev = tables[t - 1]!;
    const next = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      const p = prev[n]!;
      next[n] = (p >>> 8) ^ t0[p & 0xff]!;
    }
    tables.push(next);
  }
  return tables;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = makeTables() as [
  Uint32Array, Uint32Array, Uint32Array, Uint32Array,
  Uint32Array, Uint32Array, Uint32Array, Uint32Array,
];

/** Continues a CRC32C over bytes[start, end); pass the previous result as `crc` (0 to begin). */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  let c = ~crc >>> 0;
  let i = start;
  // Eight bytes per step: two 32-bit lanes looked up in eight tables.
  const fast = end - ((end - i) & 7);
  while (i < fast) {
    const a = (c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
    const b = bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24);
    c =
      T7[a & 0xff]! ^ T6[(a >>> 8) & 0xff]! ^ T5[(a >>> 16) & 0xff]! ^ T4[a >>> 24]! ^
      T3[b & 0xff]! ^ T2[(b >>> 8) & 0xff]! ^ T1[(b >>> 16) & 0xff]! ^ T0[b >>> 24]!;
    i += 8;
  }
  while (i < end) {
    c = T0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}
