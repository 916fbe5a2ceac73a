// RabbitMQ definitions against the metadata state, pure: the export leaves out what RabbitMQ's
// leaves out; a plan lists creates and changes in import order, deletes only as desired state
// (never in merge mode, never for sections the file leaves out), and names every bad entry.

import { describe, expect, it } from 'vitest';
import { nodeId } from '../../src/lib/ids.js';
import {
  applyMetadata, createMetadataState, exportDefinitions, planDefinitions, type Definitions, type MetadataCommand, type MetadataState,
} from '../../src/model/index.js';

const connection = { connectionId: 'c1', nodeId: nodeId('n1') };
const hash = 'kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR';

function state(): MetadataState {
  const s = createMetadataState({ users: [{ name: 'guest', passwordHash: hash, tags: ['administrator'] }] });
  const run = (c: MetadataCommand): void => {
    const r = applyMetadata(s, c);
    if (!r.ok) throw new Error(r.replyText);
  };
  run({ kind: 'declareQueue', vhost: '/', name: 'keep', passive: false, durable: true, exclusive: false, autoDelete: false, arguments: {}, connection });
  run({ kind: 'declareQueue', vhost: '/', name: 'old', passive: false, durable: true, exclusive: false, autoDelete: false, arguments: {}, connection });
  run({ kind: 'declareQueue', vhost: '/', name: 'mine', passive: false, durable: false, exclusive: true, autoDelete: false, arguments: {}, connection });
  run({ kind: 'declareExchange', vhost: '/', name: 'x', type: 'fanout', passive: false, durable: true, autoDelete: false, internal: false, arguments: {} });
  run({ kind: 'bindQueue', vhost: '/', queue: 'keep', exchange: 'x', routingKey: '', arguments: {}, connection: null });
  return s;
}

const lines = (defs: Definitions, mode: 'merge' | 'exact', s = state()): string[] =>
  planDefinitions(s, defs, { mode, connection }).steps.map((p) => `${p.action} ${p.what}`);

describe('definitions', () => {
  it('exports as RabbitMQ does: no default or amq.* exchanges, no exclusive queues, hashes with their algorithm', () => {
    const d = exportDefinitions(state(), '0.1.0');
    expect((d['queues'] as Array<{ name: string }>).map((q) => q.name)).toEqual(['keep', 'old']);
    expect(d['exchanges']).toEqual([{ name: 'x', vhost: '/', type: 'fanout', durable: true, auto_delete: false, internal: false, arguments: {} }]);
    expect(d['users']).toEqual([{ name: 'guest', password_hash: hash, hashing_algorithm: 'rabbit_password_hashing_sha256', tags: ['administrator'], limits: {} }]);
    expect(d['bindings']).toEqual([{ source: 'x', vhost: '/', destination: 'keep', destination_type: 'queue', routing_key: '', arguments: {} }]);
    // Its own export plans nothing.
    expect(planDefinitions(state(), d, { mode: 'exact', connection }).steps).toEqual([]);
  });

  it('deletes only as desired state, and only in the sections the file has', () => {
    const defs = { queues: [{ name: 'keep', vhost: '/', durable: true, auto_delete: false, arguments: {} }, { name: 'new', vhost: '/', durable: true }] };
    expect(lines(defs, 'merge')).toEqual(["create queue 'new' in vhost '/'"]);
    // The exclusive queue belongs to its connection; exchanges, bindings and users are not in the file.
    expect(lines(defs, 'exact')).toEqual(["create queue 'new' in vhost '/'", "delete queue 'old' in vhost '/'"]);
    expect(lines({ ...defs, bindings: [], exchanges: [] }, 'exact')).toEqual([
      "create queue 'new' in vhost '/'", "delete binding of exchange 'x' to queue 'keep' with key '' in vhost '/'",
      "delete queue 'old' in vhost '/'", "delete exchange 'x' in vhost '/'",
    ]);
  });

  it('changes users and permissions in place; tags as a string or a list', () => {
    const defs = {
      users: [{ name: 'guest', password_hash: hash, tags: 'administrator,monitoring' }, { name: 'ann', password_hash: '', tags: [] }],
      permissions: [{ user: 'guest', vhost: '/', configure: '', write: '.*', read: '.*' }, { user: 'ann', vhost: '/', configure: '.*', write: '.*', read: '.*' }],
    };
    expect(lines(defs, 'merge')).toEqual([
      "change user 'guest'", "create user 'ann'", "change permissions of 'guest' in vhost '/'", "create permissions of 'ann' in vhost '/'",
    ]);
  });

  it('names every bad entry and plans nothing applicable', () => {
    const plan = planDefinitions(state(), {
      users: [{ name: 'u1', password_hash: 'x', tags: [] }, { name: 'u2', password_hash: hash, hashing_algorithm: 'rabbit_password_hashing_md5', tags: [] }],
      queues: [{ name: 'keep', vhost: '/', durable: true, arguments: { 'x-max-length': 5 } }, { name: 'q', vhost: 'nowhere', durable: 'yes' }],
      policies: [{ name: 'p', vhost: '/', pattern: '.*', 'apply-to': 'streams', definition: {} }],
      parameters: [{ vhost: '/', component: 'federation-upstream', name: 'up', value: {} }],
      bindings: 'none',
    }, { mode: 'merge', connection });
    expect(plan.errors).toEqual([
      "parameter 'up' (component 'federation-upstream') in vhost '/': runtime parameters (federation, shovels) are not supported",
      "user 'u1': password_hash is not a base64 rabbit_password_hashing_sha256 hash",
      "user 'u2': hashing_algorithm 'rabbit_password_hashing_md5' is not supported (only rabbit_password_hashing_sha256)",
      "policy 'p' in vhost '/': apply-to 'streams' is not supported (all, queues or exchanges)",
      "queue 'keep' in vhost '/': exists with other properties (durable true, arguments {}); a queue cannot change in place: delete it first",
      "queue 'q' in vhost 'nowhere': 'durable' must be true or false, got \"yes\"",
      "queue 'q' in vhost 'nowhere': no vhost 'nowhere'",
      "'bindings' must be a list of objects",
    ]);
  });
});
