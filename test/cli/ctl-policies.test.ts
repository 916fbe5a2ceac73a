// `espresso ctl set-policy / clear-policy / list-policies` as processes against a one-node server
// process: a policy set from the command line caps a running durable queue at once, is listed and
// cleared; a definition that is not JSON, an unknown key and a missing argument are refused with a
// message naming the problem and exit 1 (64 for the usage mistake).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { amqpUrl, eventually, freePorts, killAll, runCtl, startNode } from './cluster-nodes.js';

const tmp = mkdtempSync(join(tmpdir(), 'espresso-ctl-policies-'));
afterAll(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

describe('espresso ctl policies', () => {
  it('sets, lists and clears a policy that changes a running queue, and refuses bad definitions', async () => {
    const [amqpPort, clusterPort] = await freePorts(2);
    const node = startNode({ name: 'solo', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(tmp, 'solo'), secret: 'pol' });
    await node.ready;
    const ctl = (...args: string[]): ReturnType<typeof runCtl> =>
      runCtl(['--cluster-address', `127.0.0.1:${clusterPort!}`, '--cluster-secret', 'pol', ...args]);

    const conn = await amqp.connect(amqpUrl(node));
    try {
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue('jobs', { durable: true });
      for (let i = 1; i <= 10; i++) ch.sendToQueue('jobs', Buffer.from(`m${i}`), { persistent: true });
      await ch.waitForConfirms();

      const [set, badJson, unknownKey, missing, notObject] = await Promise.all([
        ctl('set-policy', 'cap', '^jobs$', '{"max-length":5}', '--priority', '2'),
        ctl('set-policy', 'x', '.*', '{max-length:5}'),
        ctl('set-policy', 'x', '.*', '{"max-lenght":5}'),
        ctl('set-policy', 'x', '.*'),
        ctl('set-policy', 'x', '.*', '[1]'),
      ]);
      expect([set.code, set.stdout, set.stderr]).toEqual([0, 'ok; queues with new settings: jobs\n', '']);
      expect(badJson.code).toBe(1);
      expect(badJson.stderr).toContain('the definition is not valid JSON');
      expect(unknownKey.code).toBe(1);
      expect(unknownKey.stderr).toContain("'max-lenght' is not a recognised policy setting");
      expect(missing.code).toBe(64);
      expect(missing.stderr).toContain('needs NAME PATTERN DEFINITION');
      expect(notObject.code).toBe(1);
      expect(notObject.stderr).toContain('must be a JSON object');

      await eventually('the queue capped at 5', async () => (await ch.checkQueue('jobs')).messageCount === 5, 10_000);
      const head = await ch.get('jobs', { noAck: true });
      expect(head !== false && head.content.toString()).toBe('m6');

      const [listed, json] = await Promise.all([ctl('list-policies'), ctl('--json', 'list-policies', '--vhost', '/')]);
      expect(listed.code).toBe(0);
      expect(listed.stdout).toMatch(/^VHOST\s+NAME\s+PATTERN\s+APPLY-TO\s+PRIORITY\s+DEFINITION\n\/\s+cap\s+\^jobs\$\s+queues\s+2\s+\{"max-length":5\}\n$/);
      expect((JSON.parse(json.stdout) as Array<{ name: string }>).map((p) => p.name)).toEqual(['cap']);

      const [cleared, unknown] = await Promise.all([ctl('clear-policy', 'cap'), ctl('clear-policy', 'nope')]);
      expect(cleared.code).toBe(0);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain("no policy 'nope' in vhost '/'");
      // Without the cap the queue grows again.
      for (let i = 11; i <= 16; i++) ch.sendToQueue('jobs', Buffer.from(`m${i}`), { persistent: true });
      await ch.waitForConfirms();
      expect((await ch.checkQueue('jobs')).messageCount).toBe(10);
      expect((await ctl('list-policies')).stdout).toContain('(no policies)');
    } finally {
      await conn.close().catch(() => undefined);
    }
  }, 60_000);
});
