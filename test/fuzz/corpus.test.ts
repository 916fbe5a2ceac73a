// The fuzzer's corpus replayed (bench/fuzz.ts writes it to test/fuzz-corpus/<target>/): every input
// that once reached new code of the frame decoder, the method decoders, field tables or the
// handshake still runs to the end without a throw. A crash or hang input the fuzzer saves
// (crash-*, hang-*) fails here until the bug is fixed.

import { describe, expect, it } from 'vitest';
import { corpusOf } from '../../bench/fuzz.js';
import { fuzzTargets } from '../../bench/fuzz-targets.js';

describe('fuzz corpus replay', () => {
  for (const target of fuzzTargets) {
    it(`${target.name}: every kept input decodes without a throw`, () => {
      const inputs = [...target.seeds(), ...corpusOf(target.name)];
      expect(inputs.length).toBeGreaterThan(target.seeds().length);
      const crashes: string[] = [];
      for (const input of inputs) {
        try {
          target.run(input);
        } catch (e) {
          crashes.push(`${input.toString('hex').slice(0, 80)}: ${String(e)}`);
        }
      }
      expect(crashes).toEqual([]);
    });
  }
});
