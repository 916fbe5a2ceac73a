// Builders for metadata commands with RabbitMQ's client defaults, so each test states only what
// it is about, and assertions on results.

import { expect } from 'vitest';
import { nodeId } from '../../src/lib/ids.js';
import {
  applyMetadata, createMetadataState, type ConnectionRef, type DeclareExchange, type DeclareQueue,
  type FieldTable, type MetadataOk, type MetadataResult, type MetadataState, type ModelError,
} from '../../src/model/index.js';

export const conn1: ConnectionRef = { connectionId: 'conn-1', nodeId: nodeId('node-a') };
export const conn2: ConnectionRef = { connectionId: 'conn-2', nodeId: nodeId('node-b') };

export function freshState(): MetadataState {
  return createMetadataState({ users: [{ name: 'guest', passwordHash: 'hash-of-guest', tags: ['administrator'] }] });
}

export function declareExchange(state: MetadataState, name: string, type = 'direct',
  opts: Partial<DeclareExchange> = {}): MetadataResult {
  return applyMetadata(state, {
    kind: 'declareExchange', vhost: '/', name, type, passive: false, durable: false,
    autoDelete: false, internal: false, arguments: {}, ...opts,
  });
}

export function declareQueue(state: MetadataState, name: string, opts: Partial<DeclareQueue> = {}):
MetadataResult {
  return applyMetadata(state, {
    kind: 'declareQueue', vhost: '/', name, passive: false, durable: false, exclusive: false,
    autoDelete: false, arguments: {}, connection: conn1, ...opts,
  });
}

export function bindQueue(state: MetadataState, queue: string, exchange: string, routingKey = '',
  args: FieldTable = {}, extra: { user?: string; connection?: ConnectionRef | null } = {}): MetadataResult {
  return applyMetadata(state, {
    kind: 'bindQueue', vhost: '/', queue, exchange, routingKey, arguments: args,
    connection: extra.connection === undefined ? conn1 : extra.connection,
    ...(extra.user !== undefined ? { user: extra.user } : {}),
  });
}

export function unbindQueue(state: MetadataState, queue: string, exchange: string, routingKey = '',
  args: FieldTable = {}): MetadataResult {
  return applyMetadata(state, {
    kind: 'unbindQueue', vhost: '/', queue, exchange, routingKey, arguments: args, connection: conn1,
  });
}

export function bindExchange(state: MetadataState, source: string, destination: string,
  routingKey = '', args: FieldTable = {}, unbind = false): MetadataResult {
  return applyMetadata(state, {
    kind: unbind ? 'unbindExchange' : 'bindExchange', vhost: '/', source, destination, routingKey,
    arguments: args,
  });
}

export function deleteQueue(state: MetadataState, name: string,
  opts: { ifUnused?: boolean; ifEmpty?: boolean; consumers?: number; messages?: number;
    connection?: ConnectionRef | null } = {}): MetadataResult {
  return applyMetadata(state, {
    kind: 'deleteQueue', vhost: '/', name, ifUnused: opts.ifUnused ?? false,
    ifEmpty: opts.ifEmpty ?? false, consumerCount: opts.consumers ?? 0,
    messageCount: opts.messages ?? 0, connection: opts.connection === undefined ? conn1 : opts.connection,
  });
}

export function expectOk(result: MetadataResult): MetadataOk {
  if (!result.ok) throw new Error(`expected ok, got ${result.replyCode} ${result.replyText}`);
  return result;
}

export function expectError(result: MetadataResult | ModelError | unknown, code: number, text?: string):
ModelError {
  const r = result as ModelError;
  expect(r.ok, `expected error ${code}, got ${JSON.stringify(result)}`).toBe(false);
  expect(r.replyCode).toBe(code);
  if (text !== undefined) expect(r.replyText).toBe(text);
  return r;
}
