// SIGHUP (systemctl reload) on a running server: the config file is read again; log level, max
// connections and the other live settings change at once, a changed node name is reported as
// needing a restart and kept, and a broken file changes nothing while the node keeps serving.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AMQPClient } from '@cloudamqp/amqp-client';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { planReload } from '../../src/cli/reload.js';
import { buildServerConfig } from '../../src/cli/server-command.js';
import type { ServerConfig } from '../../src/cli/options.js';
import { amqpUrl, eventually, freePorts, killAll, startNode } from './cluster-nodes.js';

const tmp = mkdtempSync(join(tmpdir(), 'espresso-reload-'));
afterAll(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

function config(file: string): ServerConfig {
  const c = buildServerConfig(['--config', file], {});
  if (c === 'help') throw new Error('help');
  return c;
}

describe('reload on SIGHUP', () => {
  it('plans what changes now and what needs a restart', () => {
    const a = join(tmp, 'a.json');
    const b = join(tmp, 'b.json');
    writeFileSync(a, JSON.stringify({ logLevel: 'info', maxConnections: 10, port: 5800 }));
    writeFileSync(b, JSON.stringify({ logLevel: 'debug', maxConnections: 1, port: 5801, loopbackUsers: [] }));
    expect(planReload(config(a), config(b))).toEqual({ apply: { logLevel: 'debug', maxConnections: 1, loopbackUsers: [] }, needRestart: ['port'] });
    expect(planReload(config(a), config(a))).toEqual({ apply: {}, needRestart: [] });
  });

  it('applies log level and max connections to the running node, keeps the node name, and survives a broken file', async () => {
    const [amqpPort, clusterPort] = await freePorts(2);
    const file = join(tmp, 'espresso.json');
    writeFileSync(file, JSON.stringify({ logLevel: 'info', maxConnections: 10 }));
    const node = startNode({ name: 'r1', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(tmp, 'r1'), secret: 's', extraArgs: ['--config', file] });
    await node.ready;
    const first = await amqp.connect(amqpUrl(node));
    writeFileSync(file, JSON.stringify({ logLevel: 'debug', maxConnections: 1, nodeName: 'renamed' }));
    node.child.kill('SIGHUP');
    await eventually('the node logs the reload', async () => node.output().includes('"configuration reloaded"'), 10_000);
    const reloaded = node.output().split('\n').find((l) => l.includes('"configuration reloaded"'))!;
    expect(JSON.parse(reloaded).changed).toBe('logLevel,maxConnections');
    const warned = node.output().split('\n').find((l) => l.includes('reload: these settings only change on a restart'));
    expect(warned !== undefined && JSON.parse(warned).settings).toBe('nodeName');
    // One connection is open: a second is refused at the new limit, on the port it had.
    let refused: unknown;
    try {
      await new AMQPClient(amqpUrl(node)).connect();
    } catch (e) {
      refused = e;
    }
    expect(String(refused)).toMatch(/connection limit \(1\)/);
    // Debug lines show up from now on (a connection's close is logged at debug level).
    const before = node.output().split('\n').filter((l) => l.includes('"level":"debug"')).length;
    await first.close();
    await eventually('debug lines appear', async () => node.output().split('\n').filter((l) => l.includes('"level":"debug"')).length > before, 5_000);
    writeFileSync(file, '{ not json');
    node.child.kill('SIGHUP');
    await eventually('the node logs the failed reload', async () => node.output().includes('reload failed: the configuration did not load'), 10_000);
    const again = await amqp.connect(amqpUrl(node));
    await again.close();
    expect(node.child.exitCode).toBeNull();
  }, 60_000);
});
