// The generated descriptor the node loads (src/transport/generated-proto.ts) is what proto/*.proto
// produce today, and every type the code looks up by name is declared there.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { protoType } from '../../src/transport/proto-schema.js';
import { generate, generatedPath } from './proto-codegen.js';

describe('proto/*.proto and the generated descriptor', () => {
  it('has a generated-proto.ts identical to what proto/*.proto generate (npx tsx test/transport/proto-codegen.ts)', () => {
    expect(readFileSync(generatedPath, 'utf8')).toBe(generate());
  });

  it('loads the types the cold-path codecs use', () => {
    expect(protoType('espresso.cluster.v1.IdentifyAnswer').fieldsArray.map((f) => f.name)).toEqual(['nodeId']);
  });
});
