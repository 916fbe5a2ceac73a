// The audit trail: management changes made with `espresso ctl` leave one 'audit' log line each on
// the node that took them, naming who asked (the ctl's cluster peer id), from where (its address),
// what (the command and its arguments: policies, membership, queue replicas) and how it ended (ok, or the refusal).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, freePorts, killAll, runCtl, startNode } from './cluster-nodes.js';

const tmp = mkdtempSync(join(tmpdir(), 'espresso-audit-'));
afterAll(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

interface AuditLine { event: string; actor: string; source: string; action: string; details: string; outcome: string }

describe('audit log', () => {
  it('logs who, from where, what and the outcome of each ctl change, refused ones too', async () => {
    const [amqpPort, clusterPort] = await freePorts(2);
    const node = startNode({ name: 'solo', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(tmp, 'solo'), secret: 'aud' });
    await node.ready;
    const ctl = (...args: string[]): ReturnType<typeof runCtl> =>
      runCtl(['--cluster-address', `127.0.0.1:${clusterPort!}`, '--cluster-secret', 'aud', ...args]);
    expect((await ctl('set-policy', 'cap', '^jobs$', '{"max-length":5}')).code).toBe(0);
    expect((await ctl('clear-policy', 'nope')).code).toBe(1);
    expect((await ctl('cluster-status')).code).toBe(0);
    await ctl('grow', 'solo', '--queue-pattern', '^none$');
    const audits = (): AuditLine[] => node.output().split('\n').filter((l) => l.includes('"event":"audit"')).map((l) => JSON.parse(l) as AuditLine);
    await eventually('three audit lines', async () => audits().length >= 3, 10_000);
    const [set, clear, grow] = audits();
    expect(grow).toMatchObject({ action: 'grow' });
    expect(JSON.parse(grow!.details)).toMatchObject({ node: 'solo', queuePattern: '^none$' });
    expect(set).toMatchObject({ action: 'set-policy', outcome: 'ok' });
    expect(JSON.parse(set!.details)).toMatchObject({ name: 'cap', pattern: '^jobs$', definition: { 'max-length': 5 } });
    expect(clear).toMatchObject({ action: 'clear-policy', outcome: "NOT_FOUND - no policy 'nope' in vhost '/'" });
    for (const line of [set!, clear!]) {
      expect(line.actor).toMatch(/^cluster-peer:\S+/);
      expect(line.source).toMatch(/127\.0\.0\.1:\d+/);
    }
    // Reads are not changes: status leaves no line.
    expect(audits()).toHaveLength(3);

    // Limits changed at runtime with ctl, as rabbitmqctl set_user_limits / set_vhost_limits.
    const url = `amqp://guest:guest@127.0.0.1:${amqpPort!}`;
    expect(await ctl('set-user-limits', 'guest', '{"max-connections":1}')).toMatchObject({ code: 0, stdout: 'ok: in force on every node\n' });
    const first = await amqp.connect(url);
    await expect(amqp.connect(url)).rejects.toThrow(/ConnectionClose/);
    const bad = await ctl('set-user-limits', 'guest', '{"max-conections":1}');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("'max-conections' is not a user limit; known: max-connections, max-channels");
    expect((await ctl('set-vhost-limits', '{"max-queues":-1}', '--vhost', 'nope')).stderr).toContain("no vhost 'nope'");
    expect((await ctl('set-user-limits', 'guest', '{}')).code).toBe(0);
    const second = await amqp.connect(url);
    await second.close();
    await first.close();
    expect(audits().map((a) => `${a.action} ${a.outcome}`)).toEqual([
      'set-policy ok', "clear-policy NOT_FOUND - no policy 'nope' in vhost '/'", expect.stringMatching(/^grow /) as unknown as string,
      'set-user-limits ok', "set-vhost-limits NOT_FOUND - no vhost 'nope'", 'set-user-limits ok',
    ]);
  }, 60_000);
});
