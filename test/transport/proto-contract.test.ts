// proto/cluster.proto's table of rpc methods against the methods the code serves and calls: every
// method is declared with its encoding, nothing is declared that the code has not, and every
// encoding the table names exists (a protobuf message in proto/, a layout in a proto/ comment).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AccessMethod } from '../../src/cluster/access-service.js';
import { CtlMethod } from '../../src/cluster/control-service.js';
import { managementMethods } from '../../src/http/api-cluster.js';
import { DefinitionsMethod } from '../../src/http/api-definitions.js';
import { RepairMethod } from '../../src/cluster/group-repair.js';
import { MetaMethod } from '../../src/cluster/metadata-entries.js';
import { readinessMethods } from '../../src/cluster/node-readiness.js';
import { listingMethods } from '../../src/cluster/queue-listing.js';
import { MembershipMethod } from '../../src/cluster/queue-membership.js';
import { meshMethods } from '../../src/cluster/queue-wire.js';
import { replyMethods } from '../../src/cluster/reply-relay.js';
import { TaskMethod } from '../../src/tasks/task-group.js';
import { ObserveMethod } from '../../src/observe/observe-service.js';
import { peerPingMethod } from '../../src/observe/peer-probe.js';
import { loadProtoRoot, protoDir } from './proto-codegen.js';

interface Row { method: string; lane: string; payload: string; answer: string }

const clusterProto = readFileSync(join(protoDir, 'cluster.proto'), 'utf8');
const comments = ['mesh.proto', 'queue-log.proto', 'metadata.proto', 'cluster.proto'].map((f) => readFileSync(join(protoDir, f), 'utf8')).join('\n');

/** The table's rows: `// method  lane  payload  answer`, columns two or more spaces apart. */
function table(): Row[] {
  const rows: Row[] = [];
  for (const line of clusterProto.split('\n')) {
    const m = /^\/\/ ([a-z]+(?:\.[a-z-]+)+) {2,}(forward|delivery|control) {2,}(.+?) {2,}(.+)$/.exec(line);
    if (m !== null) rows.push({ method: m[1]!, lane: m[2]!, payload: m[3]!, answer: m[4]! });
  }
  return rows;
}

const served = [AccessMethod, DefinitionsMethod, managementMethods, CtlMethod, RepairMethod, MetaMethod, readinessMethods, listingMethods, MembershipMethod, meshMethods, replyMethods, ObserveMethod, { peerPingMethod }, TaskMethod]
  .flatMap((o) => Object.values(o) as string[]);

describe('proto/cluster.proto declares every rpc method', () => {
  it('lists exactly the methods the code has, each once', () => {
    const declared = table().map((r) => r.method);
    expect([...declared].sort()).toEqual([...new Set(served)].sort());
    expect(new Set(declared).size).toBe(declared.length);
  });

  it('names an encoding for each payload and answer that proto/ declares', () => {
    const root = loadProtoRoot();
    for (const r of table()) {
      for (const side of [r.payload, r.answer]) {
        const m = /^(proto|binary|json|byte|empty|\(notification\))(?: (\S+))?/.exec(side);
        expect(m, `${r.method}: '${side}'`).not.toBeNull();
        const [, kind, name] = m!;
        if (kind === 'proto') expect(() => root.lookupType(`espresso.cluster.v1.${name!}`), `${r.method}: ${name!}`).not.toThrow();
        // A custom layout is spelled out in a proto/ comment as `Name (...):` before its fields.
        if (kind === 'binary') expect(comments, `${r.method}: the layout of ${name!}`).toMatch(new RegExp(`^// ${name!} \\(`, 'm'));
      }
    }
  });
});
