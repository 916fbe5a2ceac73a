// Building success results: every field present, so the broker reads them without checks.

import type { ExchangeRecord, MetadataOk, QueueRecord } from './types.js';

export interface OkParts {
  created?: boolean;
  exchange?: ExchangeRecord;
  queue?: QueueRecord;
  deletedQueues?: readonly QueueRecord[];
  deletedExchanges?: readonly ExchangeRecord[];
  changedQueues?: readonly QueueRecord[];
}

const none: readonly never[] = Object.freeze([]);

export function ok(parts: OkParts): MetadataOk {
  const result: {
    ok: true; created: boolean; exchange?: ExchangeRecord; queue?: QueueRecord;
    deletedQueues: readonly QueueRecord[]; deletedExchanges: readonly ExchangeRecord[];
    changedQueues: readonly QueueRecord[];
  } = {
    ok: true,
    created: parts.created ?? false,
    deletedQueues: parts.deletedQueues ?? none,
    deletedExchanges: parts.deletedExchanges ?? none,
    changedQueues: parts.changedQueues ?? none,
  };
  if (parts.exchange !== undefined) result.exchange = parts.exchange;
  if (parts.queue !== undefined) result.queue = parts.queue;
  return result;
}
