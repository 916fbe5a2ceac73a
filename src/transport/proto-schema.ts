// The messages of proto/*.proto as protobufjs types, loaded from the descriptor generated from
// those files (generated-proto.ts): codecs for cold paths, where a loaded codec's cost does not
// matter (the hot paths are written by hand for speed: see README "The wire"), and the schema
// tests hold the hand-written codecs to.

import protobuf from 'protobufjs';
import { protoDescriptor } from './generated-proto.js';
import { ProtoDecodeError } from './proto-wire.js';

let root: protobuf.Root | undefined;

/** A message type of proto/*.proto by its full name (e.g. 'espresso.cluster.v1.IdentifyAnswer'). */
export function protoType(fullName: string): protobuf.Type {
  root ??= protobuf.Root.fromJSON(protoDescriptor as unknown as protobuf.INamespace);
  return root.lookupType(fullName);
}

/** Encodes and decodes one message type as the plain object `T` (field names in lowerCamelCase). */
export interface ProtoCodec<T> {
  encode(value: T): Uint8Array;
  /** Absent fields take their defaults; malformed input throws ProtoDecodeError. */
  decode(bytes: Uint8Array): T;
}

/** 64-bit integers become numbers (our values stay below 2^53), enums their names. */
const toPlain: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true, objects: true };

export function protoCodec<T extends object>(fullName: string): ProtoCodec<T> {
  const type = protoType(fullName);
  return {
    encode: (value) => type.encode(type.fromObject(value as Record<string, unknown>)).finish(),
    decode: (bytes) => {
      try {
        return type.toObject(type.decode(bytes), toPlain) as T;
      } catch (e) {
        throw new ProtoDecodeError(`${fullName}: ${(e as Error).message}`);
      }
    },
  };
}
