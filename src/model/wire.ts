// Commands as log entries: the metadata Raft group stores commands as JSON, but argument tables
// may hold bigints and byte buffers. serializableCommand rewrites every table value into a tagged,
// JSON-safe form ({tag: <RabbitMQ type name>, value}) that the model reads exactly as the original:
// same validation, same equivalence, same type names in error texts.

import type { ArgTable, FieldTable } from './field-values.js';
import { normalize, typeNameOf } from './field-values.js';
import type { MetadataCommand } from './types.js';

function taggedTable(table: FieldTable): ArgTable {
  const out: Record<string, ArgTable> = {};
  for (const key of Object.keys(table)) {
    const v = table[key];
    if (v === undefined) continue;
    out[key] = { tag: typeNameOf(v), value: normalize(v) };
  }
  return out;
}

/** The command with its tables JSON-safe; applying either gives the same result. */
export function serializableCommand(command: MetadataCommand): MetadataCommand {
  switch (command.kind) {
    case 'declareExchange': case 'declareQueue': case 'bindExchange': case 'unbindExchange':
    case 'bindQueue': case 'unbindQueue':
      return { ...command, arguments: taggedTable(command.arguments) };
    case 'setPolicy':
      return { ...command, definition: taggedTable(command.definition) };
    default:
      return command;
  }
}
