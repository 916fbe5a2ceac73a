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

/** The zero value of a field in proto3: what a proto3 encoder never writes (protobufjs writes what it is given). */
function isDefault(field: protobuf.Field, v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (field.repeated || field.map) return Array.isArray(v) ? v.length === 0 : Object.keys(v as object).length === 0;
  if (field.resolvedType instanceof protobuf.Enum) return v === 0 || v === Object.keys(field.resolvedType.values)[0];
  if (field.resolvedType instanceof protobuf.Type) return false; // a set message field is written, even empty
  if (v instanceof Uint8Array || Array.isArray(v)) return v.length === 0;
  return v === 0 || v === '' || v === false;
}

/** `obj` (a plain message of `type`) without the fields at their default, in nested messages too. */
export function withoutDefaults(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const v = obj[field.name];
    if (isDefault(field, v)) continue;
    const sub = field.resolvedType;
    if (sub instanceof protobuf.Type && !field.map) {
      out[field.name] = field.repeated
        ? (v as Array<Record<string, unknown>>).map((x) => withoutDefaults(sub, x))
        : withoutDefaults(sub, v as Record<string, unknown>);
    } else {
      out[field.name] = v;
    }
  }
  return out;
}

export function protoCodec<T extends object>(fullName: string): ProtoCodec<T> {
  const type = protoType(fullName);
  return {
    // Defaults left out, as proto3 encoders do: the same bytes as any other encoder of the schema.
    encode: (value) => type.encode(type.fromObject(withoutDefaults(type, value as Record<string, unknown>))).finish(),
    decode: (bytes) => {
      try {
        return type.toObject(type.decode(bytes), toPlain) as T;
      } catch (e) {
        throw new ProtoDecodeError(`${fullName}: ${(e as Error).message}`);
      }
    },
  };
}
