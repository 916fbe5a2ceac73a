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

  it('logs users, vhosts, permissions, policies and definitions changed through ctl and the HTTP API, never a password', async () => {
    const [amqpPort, clusterPort] = await freePorts(2);
    const node = startNode({ name: 'mgmt', amqpPort: amqpPort!, clusterPort: clusterPort!, dataDir: join(tmp, 'mgmt'), secret: 'aud2' });
    await node.ready;
    const ctl = (...args: string[]): ReturnType<typeof runCtl> =>
      runCtl(['--cluster-address', `127.0.0.1:${clusterPort!}`, '--cluster-secret', 'aud2', ...args]);
    expect((await ctl('add-user', 'bob', 'hunter2-secret')).code).toBe(0);
    const api = (method: string, path: string, body?: unknown): Promise<Response> => fetch(`http://127.0.0.1:${node.httpPort()}${path}`, {
      method, headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    expect((await api('PUT', '/api/vhosts/audited')).status).toBe(201);
    expect((await api('PUT', '/api/users/carol', { password: 'carols-password', tags: 'monitoring' })).status).toBe(201);
    expect((await api('PUT', '/api/permissions/audited/carol', { configure: '.*', write: '.*', read: '.*' })).status).toBe(201);
    expect((await api('PUT', '/api/policies/audited/cap', { pattern: '^q$', definition: { 'max-length': 1 } })).status).toBe(201);
    expect((await api('DELETE', '/api/permissions/audited/nobody')).status).toBe(404);
    // One bad entry: nothing applied, and the line says why.
    expect((await api('POST', '/api/definitions', { queues: [{ name: 'q', vhost: 'missing-vhost', durable: true }] })).status).toBe(400);
    const audits = (): AuditLine[] => node.output().split('\n').filter((l) => l.includes('"event":"audit"')).map((l) => JSON.parse(l) as AuditLine);
    await eventually('six audit lines', async () => audits().length >= 6, 10_000);
    const lines = audits();
    expect(lines.map((a) => `${a.actor.startsWith('cluster-peer:') ? 'ctl' : a.actor} ${a.action}`)).toEqual([
      'ctl add-user', 'guest add-vhost', 'guest put-user', 'guest set-permissions', 'guest set-policy', 'guest import-definitions',
    ]);
    expect(lines.slice(0, 5).every((a) => a.outcome === 'ok')).toBe(true);
    expect(lines[5]!.outcome).toMatch(/^nothing applied: .*missing-vhost/);
    expect(lines[1]!.source).toMatch(/127\.0\.0\.1/);
    expect(JSON.parse(lines[3]!.details)).toEqual({ user: 'carol', vhost: 'audited', configure: '.*', write: '.*', read: '.*' });
    // The hash is hidden and the password never reaches the node's log.
    expect(JSON.parse(lines[0]!.details)).toMatchObject({ name: 'bob', passwordHash: '(hidden)' });
    expect(node.output()).not.toContain('hunter2-secret');
    expect(node.output()).not.toContain('carols-password');
  }, 60_000);
});
